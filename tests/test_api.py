"""The REST API through a real ``lakehouse serve`` process and a real HTTP client: every
endpoint, roles and grants, PII masking in every format, errors, pipeline runs, audit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from lakehouse import Lakehouse
from tests.helpers.server import Server, start_server

PIPELINE = {
    "pipeline.yml": "name: shop\nvars:\n  landing: ${warehouse}/landing\n",
    "bronze/orders.yml": "kind: files\npath: ${landing}/orders\n",
    "silver/orders.sql": (
        "-- kind: append\n-- keys: [order_id]\n-- column_tags: {email: [pii]}\n"
        "SELECT order_id, email, CAST(amount AS DOUBLE) AS amount, country\n"
        "FROM bronze.orders\n"
    ),
    "gold/revenue.sql": (
        "-- keys: [country]\n"
        "SELECT country, sum(amount) AS revenue, count(*) AS orders\n"
        "FROM silver.orders GROUP BY country\n"
    ),
}


def _cli(warehouse: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), *args],
        capture_output=True, text=True, timeout=120, cwd=warehouse.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("api")
    warehouse = root / "warehouse"
    lh = Lakehouse(warehouse)
    lh.write(
        "silver.users",
        pa.table(
            {
                "user_id": [1, 2, 3, 4],
                "email": ["ann@example.com", "bob@example.com", None, "ann@example.com"],
                "country": ["fr", "de", "fr", "es"],
            }
        ),
        column_tags={"email": ["pii"]},
    )
    lh.write("gold.countries", lh.sql("SELECT country, count(*) AS users FROM silver.users "
                                      "GROUP BY country ORDER BY country").to_arrow())
    lh.write("bronze.raw_users", pa.table({"line": ["a", "b"]}))
    pipelines = root / "pipelines"
    for rel, text in PIPELINE.items():
        path = pipelines / "shop" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    landing = warehouse / "landing" / "orders"
    landing.mkdir(parents=True)
    orders = [
        {"order_id": i, "email": f"u{i % 3}@example.com", "amount": 10 * i,
         "country": ["fr", "de"][i % 2]}
        for i in range(1, 21)
    ]
    (landing / "orders-1.jsonl").write_text("\n".join(json.dumps(o) for o in orders) + "\n")
    tokens = {}
    for role in ("engineer", "analyst", "viewer"):
        out = _cli(warehouse, "token", "create", "--name", f"{role}1", "--role", role)
        tokens[role] = next(w for w in out.split() if w.startswith("lh_"))
    server = start_server(
        warehouse, pipelines=pipelines, env={"LAKEHOUSE_QUERY_TIMEOUT": "3"}
    )
    tokens["admin"] = server.login_token
    try:
        yield {"server": server, "tokens": tokens, "warehouse": warehouse}
    finally:
        server.stop()


def client(site: dict, role: str | None):
    server: Server = site["server"]
    return server.client(site["tokens"][role] if role else None)


def error_of(answer) -> dict:
    body = answer.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == answer.status_code
    assert body["error"]["message"]
    assert "Traceback" not in answer.text
    return body["error"]


def test_health_needs_no_token(site: dict) -> None:
    with client(site, None) as c:
        answer = c.get("/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["tables"] >= 3


@pytest.mark.parametrize(
    "headers, why",
    [
        ({}, "no token"),
        ({"Authorization": "Bearer lh_not-a-real-token"}, "unknown token"),
        ({"Authorization": "Basic abc"}, "wrong scheme"),
    ],
)
def test_calls_without_a_valid_token_get_401(site: dict, headers: dict, why: str) -> None:
    with site["server"].client() as c:
        answer = c.get("/tables", headers=headers)
    assert answer.status_code == 401, why
    err = error_of(answer)
    assert err["hint"]
    assert answer.headers["www-authenticate"] == "Bearer"


def test_login_url_sets_a_cookie_that_logs_the_browser_in(site: dict) -> None:
    server: Server = site["server"]
    with server.client() as c:
        answer = c.get(f"/?token={server.login_token}", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        assert "httponly" in answer.headers["set-cookie"].lower()
        me = c.get("/me")  # the cookie now travels with every call
        assert me.status_code == 200
        assert me.json()["role"] == "admin"
        page = c.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        bad = c.get("/?token=lh_wrong", follow_redirects=False)
        assert bad.status_code == 303 and "login=failed" in bad.headers["location"]


@pytest.mark.parametrize(
    "role, layers",
    [
        ("admin", {"bronze", "silver", "gold"}),
        ("engineer", {"bronze", "silver", "gold"}),
        ("analyst", {"silver", "gold"}),
        ("viewer", {"gold"}),
    ],
)
def test_tables_lists_what_the_role_may_read(site: dict, role: str, layers: set) -> None:
    with client(site, role) as c:
        answer = c.get("/tables")
    assert answer.status_code == 200
    names = {t["name"] for t in answer.json()["tables"]}
    assert {n.split(".")[0] for n in names} - {"system"} == layers
    if role in ("analyst", "viewer"):
        assert not any(n.startswith("system.") for n in names)


def test_tables_filters(site: dict) -> None:
    with client(site, "admin") as c:
        gold = c.get("/tables", params={"layer": "gold"}).json()["tables"]
        assert {t["name"] for t in gold} == {"gold.countries"}
        found = c.get("/tables", params={"q": "email"}).json()["tables"]
        assert "silver.users" in {t["name"] for t in found}


def test_table_details_mark_masked_columns(site: dict) -> None:
    with client(site, "analyst") as c:
        answer = c.get("/tables/silver.users")
    assert answer.status_code == 200
    columns = {col["name"]: col for col in answer.json()["columns"]}
    assert columns["email"]["masked"] is True and columns["email"]["tags"] == ["pii"]
    assert columns["country"]["masked"] is False
    with client(site, "engineer") as c:
        columns = {col["name"]: col for col in c.get("/tables/silver.users").json()["columns"]}
    assert columns["email"]["masked"] is False


def test_unknown_and_forbidden_tables(site: dict) -> None:
    with client(site, "viewer") as c:
        # A table the viewer may not read answers exactly like one that does not exist,
        # and "did you mean" names only tables the viewer may read.
        missing = c.get("/tables/silver.userz")
        assert missing.status_code == 404
        assert "silver." not in (error_of(missing)["hint"] or "")
        forbidden = c.get("/tables/silver.users/preview")
        assert forbidden.status_code == 404
        assert error_of(forbidden) == {
            "status": 404,
            "message": "table silver.users does not exist",
            "hint": error_of(c.get("/tables/silver.nothing_here"))["hint"],
        }
        for path in ("/tables/silver.users", "/tables/silver.users/history",
                     "/tables/silver.users/quality", "/quality?table=silver.users",
                     "/catalog/lineage/silver.users?columns=true"):
            assert c.get(path).json() == forbidden.json(), path
        near = c.get("/tables/gold.countrie")
        assert "gold.countries" in error_of(near)["hint"]
    with client(site, "admin") as c:
        helped = c.get("/tables/silver.userz")
        assert "silver.users" in (error_of(helped)["hint"] or "")
    with client(site, "viewer") as c:
        bad_name = c.get("/tables/not-a-name")
        assert bad_name.status_code == 400
        error_of(bad_name)


def test_preview_masks_pii_for_analysts_only(site: dict) -> None:
    with client(site, "analyst") as c:
        body = c.get("/tables/silver.users/preview", params={"limit": 10}).json()
    emails = [row[body["columns"].index("email")] for row in body["rows"]]
    assert all(e is None or e.startswith("pii:") for e in emails)
    assert None in emails and emails[0] == emails[3]  # NULL stays NULL; stable pseudonym
    assert "ann@example.com" not in json.dumps(body)
    with client(site, "engineer") as c:
        body = c.get("/tables/silver.users/preview").json()
    assert "ann@example.com" in json.dumps(body)


def test_preview_limit_is_bounded(site: dict) -> None:
    with client(site, "admin") as c:
        assert c.get("/tables/silver.users/preview", params={"limit": 2}).json()["truncated"]
        for bad in (0, 5000, "x"):
            answer = c.get("/tables/silver.users/preview", params={"limit": bad})
            assert answer.status_code == 422
            assert "limit" in error_of(answer)["message"]


def test_history(site: dict) -> None:
    with client(site, "admin") as c:
        versions = c.get("/tables/silver.users/history").json()["versions"]
    assert [v["version"] for v in versions][-1] == 0
    assert versions[0]["operation"]


def test_query_json(site: dict) -> None:
    sql = "SELECT country, count(*) AS n FROM silver.users GROUP BY 1 ORDER BY 1"
    with client(site, "analyst") as c:
        body = c.post("/query", json={"sql": sql}).json()
        assert body["columns"] == ["country", "n"]
        assert body["rows"] == [["de", 1], ["es", 1], ["fr", 2]]
        assert body["truncated"] is False and body["tables"] == ["silver.users"]
        # Each server process has its own cache: a repeat is served from one soon.
        repeats = [c.post("/query", json={"sql": sql}).json() for _ in range(6)]
        assert any(r["cached"] for r in repeats)
        assert all(r["rows"] == body["rows"] for r in repeats)
        limited = c.post("/query", json={"sql": sql, "limit": 1}).json()
        assert limited["row_count"] == 1 and limited["truncated"] is True


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_query_exports_are_masked_too(site: dict, fmt: str) -> None:
    sql = "SELECT user_id, email FROM silver.users ORDER BY user_id"
    with client(site, "analyst") as c:
        answer = c.post("/query", json={"sql": sql, "format": fmt})
    assert answer.status_code == 200
    assert "attachment" in answer.headers["content-disposition"]
    data = answer.content
    if fmt == "csv":
        table = pacsv.read_csv(io.BytesIO(data))
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(data))
    else:
        table = pa.ipc.open_stream(data).read_all()
    assert table.num_rows == 4
    assert b"ann@example.com" not in data
    assert table.column("email")[0].as_py().startswith("pii:")


def test_query_refusals_and_errors(site: dict) -> None:
    with client(site, "admin") as c:
        for sql, word in [
            ("DROP TABLE silver.users", "DROP"),
            ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
            ("COPY silver.users TO 'out.csv'", "COPY"),
            ("SELECT 1; SELECT 2", "statement"),
        ]:
            answer = c.post("/query", json={"sql": sql})
            assert answer.status_code == 400, sql
            assert word.lower() in error_of(answer)["message"].lower(), sql
        typo = c.post("/query", json={"sql": "SELEC 1"})
        assert typo.status_code == 400 and "syntax" in error_of(typo)["message"].lower()
        unknown = c.post("/query", json={"sql": "SELECT * FROM gold.nope"})
        assert unknown.status_code == 404
        slow = c.post("/query", json={"sql": "SELECT count(*) FROM range(100000000000) a"})
        assert slow.status_code == 408
        assert "3" in error_of(slow)["message"]
        assert c.post("/query", json={"sql": "SELECT 42 AS x"}).json()["rows"] == [[42]]
        for body in ({}, {"sql": ""}, {"sql": "SELECT 1", "format": "xml"},
                     {"sql": "SELECT 1", "limit": 0}):
            answer = c.post("/query", json=body)
            assert answer.status_code == 422, body
            error_of(answer)
        raw = c.post("/query", content=b"{not json", headers={"content-type": "application/json"})
        assert raw.status_code == 422


def test_query_respects_grants(site: dict) -> None:
    with client(site, "viewer") as c:
        answer = c.post("/query", json={"sql": "SELECT * FROM silver.users"})
        missing = c.post("/query", json={"sql": "SELECT * FROM silver.nothing_here"})
    assert answer.status_code == 404
    assert error_of(answer)["message"] == "table silver.users does not exist"
    assert error_of(answer)["hint"] == error_of(missing)["hint"]
    _cli(site["warehouse"], "grant", "read", "silver.users", "--to", "viewer1")
    deadline = time.time() + 10
    while time.time() < deadline:
        with client(site, "viewer") as c:
            answer = c.post("/query", json={"sql": "SELECT email FROM silver.users"})
        if answer.status_code == 200:
            break
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    assert all(r[0] is None or r[0].startswith("pii:") for r in answer.json()["rows"])
    _cli(site["warehouse"], "revoke", "read", "silver.users", "--to", "viewer1")


def test_catalog_statistics(site: dict) -> None:
    # A grant revoked by the test before is seen by each worker at its next reload.
    deadline = time.time() + 10
    while True:
        with client(site, "viewer") as c:
            body = c.get("/catalog").json()
        if set(body["layers"]) == {"gold"} or time.time() > deadline:
            break
        time.sleep(0.2)
    assert set(body["layers"]) == {"gold"}
    assert body["layers"]["gold"]["tables"] == 1 and body["rows"] == 3


def test_unknown_routes_and_methods(site: dict) -> None:
    with client(site, "admin") as c:
        assert c.get("/nope").status_code == 404
        error_of(c.get("/nope"))
        assert c.delete("/tables").status_code == 405
        assert c.get("/openapi.json").json()["info"]["title"] == "Lakehouse"
        assert c.get("/docs").status_code == 200


def test_pipeline_run_through_the_api(site: dict) -> None:
    with client(site, "analyst") as c:
        assert c.get("/pipelines").status_code == 403  # operations data: the system layer
        assert c.get("/runs").status_code == 403
        denied = c.post("/pipelines/shop/runs", json={})
        assert denied.status_code == 403
        assert "run pipelines" in error_of(denied)["message"]
    with client(site, "engineer") as c:
        listed = c.get("/pipelines").json()["pipelines"]
        assert [p["name"] for p in listed] == ["shop"]
        assert {d["name"] for d in listed[0]["datasets"]} == {
            "bronze.orders", "silver.orders", "gold.revenue"
        }
        missing = c.post("/pipelines/nope/runs", json={})
        assert missing.status_code == 404 and "shop" in error_of(missing)["hint"]
        started = c.post("/pipelines/shop/runs", json={})
        assert started.status_code == 202
        run_id = started.json()["run_id"]
        deadline = time.time() + 120
        while time.time() < deadline:
            run = c.get(f"/runs/{run_id}").json()
            if run["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.5)
        assert run["status"] == "succeeded", run
        assert {d["dataset"]: d["rows_written"] for d in run["datasets"]}["silver.orders"] == 20
        assert run["kind"] == "run"
        for figures in run["datasets"]:  # every row read is accounted for
            assert figures["rows_read"] == figures["rows_written"] + figures["rows_dropped"] + (
                figures["rows_quarantined"] + figures["rows_deduplicated"]
            ) or figures["dataset"] == "gold.revenue", figures
        assert run_id in [r["run_id"] for r in c.get("/runs").json()["runs"]]
        assert c.get("/runs/nope").status_code == 404
        revenue = c.post("/query", json={"sql": "SELECT * FROM gold.revenue ORDER BY 1"})
        assert revenue.json()["rows"] == [["de", 1000.0, 10], ["fr", 1100.0, 10]]
        lineage = c.get("/catalog/lineage/gold.revenue").json()
        names = {n["name"]: n["depth"] for n in lineage["nodes"]}
        assert names["silver.orders"] == -1 and names["bronze.orders"] == -2
        assert {"source": "silver.orders", "target": "gold.revenue"}.items() <= next(
            e for e in lineage["edges"] if e["target"] == "gold.revenue"
        ).items()
        pipelines = c.get("/pipelines").json()["pipelines"]
        assert pipelines[0]["last_run"]["run_id"] == run_id


def test_audit_log_records_calls_and_is_admin_only(site: dict) -> None:
    with client(site, "viewer") as c:
        c.get("/tables/silver.users")  # denied: recorded as such
    with client(site, "analyst") as c:
        denied = c.post("/query", json={"sql": "SELECT * FROM system.audit_log"})
        assert denied.status_code == 404  # as if it did not exist
    # Each server process writes its records at least once a second.
    deadline = time.time() + 10
    while True:
        with client(site, "admin") as c:
            body = c.post(
                "/query",
                json={
                    "sql": "SELECT principal, role, action, target, outcome, status, duration_ms "
                    "FROM system.audit_log ORDER BY event_time",
                    "limit": 100_000,
                },
            ).json()
        rows = [dict(zip(body["columns"], r, strict=True)) for r in body["rows"]]
        if any(r["principal"] == "viewer1" and r["outcome"] == "denied" for r in rows):
            break
        assert time.time() < deadline, rows
        time.sleep(0.5)
    assert any(
        r["principal"] == "viewer1" and r["outcome"] == "denied" and r["status"] == 404
        and r["target"] == "silver.users" for r in rows
    )
    assert any(r["outcome"] == "unauthenticated" and r["status"] == 401 for r in rows)
    assert any(r["action"] == "POST /query" and r["principal"] == "analyst1" for r in rows)
    assert all(r["duration_ms"] >= 0 for r in rows)
