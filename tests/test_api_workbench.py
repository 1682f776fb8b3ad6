"""The SQL workbench's JSON API through a real `lakehouse serve` over the demo
warehouse: statements a page at a time with bound parameters, sorting and filtering,
error positions, completion schema, history, saved queries, and table profiles and
facets (pii masked for a caller without the right, the figures those of plain SQL)."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lakehouse import Lakehouse
from lakehouse.service.sql_text import engine_text, error_position, parameter_names
from tests.helpers.server import Server, start_server

ROOT = Path(__file__).resolve().parents[1]
PSEUDONYM = re.compile(r"^pii:[0-9a-f]{12}$")


@dataclass
class Site:
    server: Server
    warehouse: Path
    admin: httpx.Client
    viewer: httpx.Client
    analyst: httpx.Client
    dashboards: Path


def _token(warehouse: Path, name: str, role: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse.cli",
            "--warehouse",
            str(warehouse),
            "token",
            "create",
            "--name",
            name,
            "--role",
            role,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"\blh_[A-Za-z0-9_-]+", done.stdout)
    assert found, done.stdout
    return found.group(0)


@pytest.fixture(scope="module")
def site(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    viewer = _token(demo_warehouse, "wb-api-viewer", "viewer")
    analyst = _token(demo_warehouse, "wb-api-analyst", "analyst")
    dashboards = tmp_path_factory.mktemp("wb-api-dashboards")
    shutil.copy(ROOT / "dashboards" / "platform.yaml", dashboards / "platform.yaml")
    srv = start_server(
        demo_warehouse, args=["--workers", "1", "--dashboards", str(dashboards)], cwd=ROOT
    )
    clients = [srv.client(srv.login_token), srv.client(viewer), srv.client(analyst)]
    try:
        yield Site(srv, demo_warehouse, *clients, dashboards)
    finally:
        for c in clients:
            c.close()
        srv.stop()


def test_parameters_are_found_outside_strings_casts_and_comments():
    sql = "SELECT a::int, ':no' FROM t -- :nor\nWHERE b = :seg AND c > $n AND d = :seg"
    assert parameter_names(sql) == ["seg", "n"]
    assert engine_text(sql).endswith("WHERE b = $seg AND c > $n AND d = $seg")
    assert engine_text("SELECT x::text FROM t") == "SELECT x::text FROM t"


def test_error_positions_point_into_the_text():
    caret = (
        'Parser Error: syntax error at or near "gold"\n\nLINE 1: SELECT * FRM gold.t\n'
        + " " * 21
        + "^"
    )
    assert error_position(caret, "SELECT * FRM gold.t") == {"line": 1, "column": 14}
    binder = 'Binder Error: Referenced column "nope" not found in FROM clause!'
    assert error_position(binder, "SELECT *\nFROM gold.t\nWHERE nope = 1") == {
        "line": 3,
        "column": 7,
    }
    assert error_position("something else", "SELECT 1") is None


def test_a_page_binds_parameters_sorts_and_filters(site: Site):
    lh = Lakehouse(site.warehouse)
    sql = (
        "SELECT segment, count(*) AS users FROM gold.user_segments "
        "WHERE events >= :least GROUP BY segment"
    )
    expected = lh.sql(sql.replace(":least", "3")).to_dicts()
    answer = site.viewer.post(
        "/query/page",
        json={
            "sql": sql,
            "params": {"least": "3"},
            "sort": [{"column": "users", "direction": "desc"}],
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["columns"] == ["segment", "users"]
    assert body["types"] == ["string", "int64"]
    assert body["total"] == len(expected)
    assert [r[1] for r in body["rows"]] == sorted((r["users"] for r in expected), reverse=True)
    # A value typed in a parameter never becomes SQL text.
    hostile = site.viewer.post(
        "/query/page",
        json={
            "sql": "SELECT count(*) AS n FROM gold.user_segments WHERE segment = :s",
            "params": {"s": "x' OR '1'='1"},
        },
    )
    assert hostile.status_code == 200 and hostile.json()["rows"] == [[0]]
    first = expected[0]["segment"]
    filtered = site.viewer.post(
        "/query/page",
        json={"sql": sql, "params": {"least": "3"}, "filters": {"segment": f"={first}"}},
    ).json()
    assert filtered["total"] == 1 and filtered["rows"][0][0] == first
    contains = site.viewer.post(
        "/query/page", json={"sql": sql, "params": {"least": 3}, "filters": {"users": ">0"}}
    ).json()
    assert contains["total"] == len([r for r in expected if r["users"] > 0])


def test_a_page_of_a_million_rows_is_quick(site: Site):
    sql = "SELECT range AS n, range % 7 AS weekday FROM range(1000000) ORDER BY n DESC"
    times = []
    for offset in (0, 100, 500_000, 999_900, 250_000):
        started = time.perf_counter()
        page = site.admin.post("/query/page", json={"sql": sql, "offset": offset, "size": 100})
        times.append(time.perf_counter() - started)
        body = page.json()
        assert body["total"] == 1_000_000
        assert body["rows"][0][0] == 999_999 - offset and len(body["rows"]) == 100
    # The first page reads the result once; the others are slices of it: 100 ms at most
    # (the median, on a test machine shared with other work).
    assert statistics.median(times[1:]) < 0.1, times


def test_errors_say_where_they_are(site: Site):
    answer = site.viewer.post(
        "/query/page", json={"sql": "SELECT segment\nFROM gold.user_segments\nWHERE nope = 1"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["position"] == {"line": 3, "column": 7}


def test_completion_schema_holds_only_what_the_caller_reads(site: Site):
    started = time.perf_counter()
    schema = site.viewer.get("/query/schema").json()
    assert time.perf_counter() - started < 1.0
    names = {t["name"] for t in schema["tables"]}
    assert "gold.user_segments" in names
    assert not any(n.startswith(("silver.", "bronze.", "system.")) for n in names)
    assert set(schema["layers"]) <= {"gold", "realtime"}
    segments = next(t for t in schema["tables"] if t["name"] == "gold.user_segments")
    user_id = next(c for c in segments["columns"] if c["name"] == "user_id")
    assert user_id["masked"] is True
    assert {"count", "date_trunc", "sum"} <= set(schema["functions"])
    assert "read_csv" not in schema["functions"]  # the sandbox refuses it
    admin = site.admin.get("/query/schema").json()
    assert any(t["name"] == "silver.users" for t in admin["tables"])


def test_history_is_per_caller(site: Site):
    mine = "SELECT count(*) AS analyst_history FROM gold.user_segments"
    assert site.analyst.post("/query/page", json={"sql": mine}).status_code == 200
    site.analyst.post("/query/page", json={"sql": "SELECT nope FROM gold.user_segments"})
    history = site.analyst.get("/query/history").json()["history"]
    assert history[0]["sql"] == "SELECT nope FROM gold.user_segments"
    assert history[0]["error"] and history[0]["row_count"] is None
    assert history[1]["sql"] == mine and history[1]["row_count"] == 1
    # The pages, sorts and filters of a result are views of the run, not runs.
    viewed = {"sql": mine, "offset": 0, "record": False, "filters": {"analyst_history": ">0"}}
    assert site.analyst.post("/query/page", json=viewed).status_code == 200
    assert site.analyst.get("/query/history").json()["history"] == history
    others = site.viewer.get("/query/history").json()["history"]
    assert all(h["sql"] != mine for h in others)


def test_saved_queries_are_seen_by_whoever_reads_their_tables(site: Site):
    gold = site.admin.post(
        "/queries",
        json={
            "name": "Users of a segment",
            "description": "by segment",
            "params": {"s": "VIP"},
            "sql": "SELECT * FROM gold.user_segments WHERE segment = :s",
        },
    )
    assert gold.status_code == 201, gold.text
    silver = site.admin.post(
        "/queries", json={"name": "All users", "sql": "SELECT * FROM silver.users"}
    ).json()
    saved = gold.json()
    assert saved["tables"] == ["gold.user_segments"] and saved["params"] == {"s": "VIP"}
    seen = {q["id"] for q in site.viewer.get("/queries").json()["queries"]}
    assert saved["id"] in seen and silver["id"] not in seen
    assert site.viewer.get(f"/queries/{saved['id']}").json()["description"] == "by segment"
    assert site.viewer.get(f"/queries/{silver['id']}").status_code == 404
    # Nobody saves a query over a table they may not read.
    refused = site.viewer.post("/queries", json={"name": "x", "sql": "SELECT * FROM silver.users"})
    assert refused.status_code == 404
    # Only its owner (or whoever manages access) changes or deletes a saved query.
    mine = site.viewer.post(
        "/queries", json={"name": "Viewer's", "sql": "SELECT 1 AS one FROM gold.user_segments"}
    ).json()
    assert site.viewer.delete(f"/queries/{saved['id']}").status_code == 403
    assert (
        site.viewer.put(
            f"/queries/{saved['id']}", json={"name": "taken", "sql": saved["sql"]}
        ).status_code
        == 403
    )
    assert site.viewer.delete(f"/queries/{mine['id']}").status_code == 200
    changed = site.admin.put(
        f"/queries/{saved['id']}",
        json={"name": "Segment users", "sql": saved["sql"], "params": {"s": "Active"}},
    ).json()
    assert changed["name"] == "Segment users" and changed["params"] == {"s": "Active"}
    assert site.admin.delete(f"/queries/{silver['id']}").status_code == 200
    assert site.admin.get(f"/queries/{silver['id']}").status_code == 404


def test_profile_figures_are_those_of_plain_sql(site: Site):
    lh = Lakehouse(site.warehouse)
    first = site.admin.get("/tables/gold.user_segments/profile").json()
    again = site.admin.get("/tables/gold.user_segments/profile").json()
    assert again["cached"] is True and again["version"] == first["version"]
    columns = {c["name"]: c for c in first["columns"]}
    plain = lh.sql(
        "SELECT count(*) AS n, count(DISTINCT engagement_score) AS d, min(engagement_score) AS lo, "
        "max(engagement_score) AS hi, count(*) - count(last_seen) AS nulls "
        "FROM gold.user_segments"
    ).to_dicts()[0]
    assert first["rows"] == plain["n"]
    score = columns["engagement_score"]
    assert (score["distinct"], score["min"], score["max"]) == (plain["d"], plain["lo"], plain["hi"])
    assert sum(b["count"] for b in score["histogram"]) == plain["n"] - score["nulls"]
    assert columns["last_seen"]["nulls"] == plain["nulls"]
    top = lh.sql(
        "SELECT segment, count(*) AS n FROM gold.user_segments GROUP BY 1 ORDER BY 2 DESC, 1"
    ).to_dicts()
    assert [(t["value"], t["count"]) for t in columns["segment"]["top_values"]] == [
        (r["segment"], r["n"]) for r in top
    ][:10]
    assert "segment" in first["suggested_facets"]


def test_profiles_and_facets_mask_pii(site: Site):
    admin = site.admin.get("/tables/gold.user_segments/profile").json()
    viewer = site.viewer.get("/tables/gold.user_segments/profile").json()
    raw = next(c for c in admin["columns"] if c["name"] == "user_id")
    masked = next(c for c in viewer["columns"] if c["name"] == "user_id")
    assert masked["masked"] is True and raw["masked"] is False
    assert masked["top_values"] and all(PSEUDONYM.match(t["value"]) for t in masked["top_values"])
    assert PSEUDONYM.match(masked["min"]) and PSEUDONYM.match(masked["max"])
    assert not any(PSEUDONYM.match(str(t["value"])) for t in raw["top_values"])
    assert masked["distinct"] == raw["distinct"]  # a key stays a key
    facets = site.viewer.get(
        "/tables/gold.user_segments/facets", params={"column": ["user_id", "segment"]}
    ).json()
    users = next(f for f in facets["facets"] if f["column"] == "user_id")
    assert all(PSEUDONYM.match(v["value"]) for v in users["values"])
    chosen = users["values"][0]["value"]
    narrowed = site.viewer.get(
        "/tables/gold.user_segments/facets",
        params={"column": ["segment"], "where": [f"user_id={chosen}"]},
    ).json()
    assert narrowed["count"] == users["values"][0]["count"]
    at = narrowed["columns"].index("user_id")
    assert all(r[at] == chosen for r in narrowed["rows"])
    lh = Lakehouse(site.warehouse)
    segment = lh.sql("SELECT segment FROM gold.user_segments GROUP BY 1 ORDER BY 1").to_dicts()[0]
    by_segment = site.viewer.get(
        "/tables/gold.user_segments/facets",
        params={"column": ["churn_risk_level"], "where": [f"segment={segment['segment']}"]},
    ).json()
    expected = lh.sql(
        "SELECT count(*) AS n FROM gold.user_segments WHERE segment = "
        + "'"
        + segment["segment"].replace("'", "''")
        + "'"
    ).to_dicts()[0]["n"]
    assert by_segment["count"] == expected
    assert sum(v["count"] for v in by_segment["facets"][0]["values"]) <= expected
    assert site.viewer.get("/tables/silver.users/profile").status_code == 404


def test_who_may_read_a_table(site: Site):
    viewer = site.viewer.get("/tables/gold.user_segments/readers").json()
    roles = {r["role"]: r for r in viewer["roles"]}
    assert roles["viewer"]["reads"] and not roles["viewer"]["pii"]
    assert roles["admin"]["pii"]
    assert "grants" not in viewer  # grants are for whoever manages access
    admin = site.admin.get("/tables/silver.users/readers").json()
    assert {r["role"]: r["reads"] for r in admin["roles"]}["viewer"] is False
    assert isinstance(admin["grants"], list)
    assert site.viewer.get("/tables/silver.users/readers").status_code == 404


def test_quality_score_over_time(site: Site):
    scores = site.viewer.get("/tables/gold.user_segments/quality/history").json()["scores"]
    latest = site.viewer.get("/tables/gold.user_segments/quality").json()
    assert scores and scores[-1]["score"] == latest["score"]
    assert scores[-1]["run_id"] == latest["results"][0]["run_id"]
    assert site.viewer.get("/tables/silver.users/quality/history").status_code == 404


def test_history_keeps_the_newest_and_a_rerun_once(lh, monkeypatch):
    from lakehouse.catalog import queries

    monkeypatch.setattr(queries, "HISTORY_KEPT", 3)
    for n in range(5):
        queries.record_query(lh.catalog, "ann", f"SELECT {n}", {}, row_count=1)
    queries.record_query(lh.catalog, "ann", "SELECT 4", {}, row_count=1)  # ran again
    queries.record_query(lh.catalog, "bob", "SELECT 9", {"p": 1}, error="bad\x00 \udc80")
    assert [h["sql"] for h in queries.query_history(lh.catalog, "ann")] == [
        "SELECT 4",
        "SELECT 3",
        "SELECT 2",
    ]
    (bob,) = queries.query_history(lh.catalog, "bob")
    assert bob["params"] == {"p": 1} and bob["error"] == "bad\ufffd \ufffd"


def test_a_random_sample_of_rows_is_masked_too(site: Site):
    drawn = site.viewer.get(
        "/tables/gold.user_segments/preview", params={"sample": "true", "limit": 20}
    ).json()
    assert drawn["sample"] is True and len(drawn["rows"]) == 20
    at = drawn["columns"].index("user_id")
    assert all(PSEUDONYM.match(r[at]) for r in drawn["rows"])


def test_kept_results_follow_new_versions_and_each_reader(lh):
    import pyarrow as pa

    from lakehouse.service.queries import Page, run_page
    from lakehouse.service.reader import Reader

    lh.write("silver.kept", pa.table({"n": list(range(10)), "who": ["a", "b"] * 5}))
    ann = Reader("ann")
    masked = Reader("bob", masked=lambda t: ["who"])
    page = Page(offset=0, size=3, sort=[("n", "desc")])
    first = run_page(lh, ann, "SELECT * FROM silver.kept", page=page, record=False)
    assert first.total == 10 and first.table.column("n").to_pylist() == [9, 8, 7]
    again = run_page(lh, ann, "SELECT * FROM silver.kept", page=page, record=False)
    assert again.cached and again.table.column("n").to_pylist() == [9, 8, 7]
    # Another reader with other masks never gets the first one's rows.
    other = run_page(lh, masked, "SELECT * FROM silver.kept", page=page, record=False)
    assert all(PSEUDONYM.match(v) for v in other.table.column("who").to_pylist())
    lh.write("silver.kept", pa.table({"n": [100], "who": ["c"]}), mode="append")
    fresh = run_page(lh, ann, "SELECT * FROM silver.kept", page=page, record=False)
    assert fresh.total == 11 and fresh.table.column("n").to_pylist() == [100, 9, 8]
    deeper = Page(offset=9, size=3, sort=[("n", "desc")])
    assert run_page(lh, ann, "SELECT * FROM silver.kept", page=deeper, record=False).table.column(
        "n"
    ).to_pylist() == [1, 0]


def test_a_chart_becomes_a_panel_of_a_dashboard_file(site: Site):
    panel = {
        "title": "Users per segment",
        "kind": "bar",
        "x": "segment",
        "y": ["users"],
        "sql": "SELECT segment, count(*) AS users FROM gold.user_segments GROUP BY segment",
    }
    before = (site.dashboards / "platform.yaml").read_text()
    assert site.viewer.post("/dashboards/platform/panels", json=panel).status_code == 403
    added = site.admin.post("/dashboards/platform/panels", json=panel)
    assert added.status_code == 201, added.text
    assert added.json()["panel"] == "users-per-segment"
    after = (site.dashboards / "platform.yaml").read_text()
    assert after.startswith(before.rstrip("\n"))  # the file as it was, comments too, then it
    shown = site.admin.get("/dashboards/platform").json()
    assert any(p["id"] == "users-per-segment" for p in shown["panels"])
    rows = site.admin.get("/dashboards/platform/panels/users-per-segment").json()
    assert rows["error"] is None and rows["rows"]
    # A panel that would not read is refused and the file stays as it was.
    pie = {**panel, "kind": "pie", "y": ["users", "segment"]}
    assert site.admin.post("/dashboards/platform/panels", json=pie).status_code == 400
    assert (site.dashboards / "platform.yaml").read_text() == after
    assert site.admin.post("/dashboards/nope/panels", json=panel).status_code == 404
