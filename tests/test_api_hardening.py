"""The server under hostile input, through a real ``lakehouse serve`` over HTTPS (a
self-signed certificate made here) with two worker processes: nesting deep enough to
crash a parser, statements nested beyond the engine's limits, results over the size
limit, token guessing, and what the server shows and keeps (headers, /health, the login
token's place in its processes)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lakehouse import Lakehouse
from lakehouse.access import Access
from tests.helpers.server import Server, start_server

FAILURES = 5  # wrong tokens an address may send per window (LAKEHOUSE_AUTH_FAILURES)
MAX_RESULT = 1_000_000  # LAKEHOUSE_MAX_RESULT_BYTES


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hardening")
    warehouse = root / "warehouse"
    lh = Lakehouse(warehouse)
    lh.write("silver.numbers", pa.table({"x": [1, 2, 3]}))
    tokens = {"engineer": Access(lh).create_token("engineer1", "engineer")}
    cert, key = self_signed(root)
    server = start_server(
        warehouse,
        env={
            "LAKEHOUSE_AUTH_FAILURES": str(FAILURES),
            "LAKEHOUSE_AUTH_WINDOW": "3600",  # the window never ends during the test
            "LAKEHOUSE_MAX_RESULT_BYTES": str(MAX_RESULT),
        },
        args=["--workers", "2", "--tls-cert", str(cert), "--tls-key", str(key)],
        verify=ssl.create_default_context(cafile=str(cert)),
    )
    tokens["admin"] = server.login_token
    try:
        yield {"server": server, "tokens": tokens, "warehouse": warehouse}
    finally:
        server.stop()


def client(site: dict, role: str | None = "admin") -> httpx.Client:
    server: Server = site["server"]
    return server.client(site["tokens"][role] if role else None)


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:2000]
    error = answer.json()["error"]
    assert error["status"] == status and error["message"] and error["hint"], error
    assert "Traceback" not in answer.text
    return error


def audited(site: dict, where: str, at_least: int = 1) -> list[dict[str, Any]]:
    """Audit records matching ``where``, waited for (each process writes its records at
    least once a second)."""
    deadline = time.monotonic() + 30
    while True:
        with client(site) as c:
            answer = c.post(
                "/query",
                json={
                    "sql": "SELECT action, target, outcome, status, detail, client "
                    f"FROM system.audit_log WHERE {where}",
                    "limit": 10_000,
                },
            )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows = [dict(zip(body["columns"], r, strict=True)) for r in body["rows"]]
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def test_served_over_tls_with_a_secure_login_cookie(site: dict) -> None:
    server: Server = site["server"]
    assert server.base.startswith("https://127.0.0.1:")
    with server.client() as c:
        login = c.get(f"/?token={server.login_token}", follow_redirects=False)
        assert login.status_code == 303
        cookie = login.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert c.get("/me").json()["role"] == "admin"  # the cookie travels over HTTPS
        assert login.headers["strict-transport-security"]
    with pytest.raises(httpx.HTTPError):  # the port speaks TLS only
        httpx.get(server.base.replace("https://", "http://") + "/health", timeout=10)


def test_a_line_nested_100000_levels_deep_is_quarantined_and_the_worker_lives(
    site: dict,
) -> None:
    with client(site, "engineer") as c:  # alone, this line crashed the worker process
        alone = c.post("/ingest/bronze.deepest", content=b'{"id": 0}\n' + deep(100_000))
        assert error_of(alone, 422)["message"].startswith("1 line(s)")
        assert alone.json()["accepted"] == 1
    body = b"\n".join(
        [
            b'{"id": 1}',
            deep(100_000),  # 600 KB
            deep(10_000),
            deep(1_000),  # Python's parser: RecursionError, a 500
            *[b'{"x": "}", "y": ['] * 3_000,  # unbalanced: nests deeper line after line
            deep(32),
            deep(33),
            b'{"id": 2}',
        ]
    )
    with client(site, "engineer") as c:
        answer = c.post("/ingest/bronze.deep", content=body)
        error_of(answer, 422)
        out = answer.json()
        assert out["accepted"] == 3 and out["quarantined"] == 3_004
        reasons = {x["line"]: x["reason"] for x in out["lines"]}
        assert reasons[2] == "the line nests 100000 levels deep, more than the 32 allowed"
        assert "10000 levels" in reasons[3] and "1000 levels" in reasons[4]
        assert reasons[5].startswith("invalid JSON")
        # Both worker processes still answer.
        for _ in range(6):
            with client(site) as fresh:
                assert fresh.get("/health").status_code == 200
    rows = Lakehouse(site["warehouse"]).sql(
        "SELECT count(*) AS n, max(length(raw_payload)) AS longest FROM bronze.deep_quarantine"
    ).to_dicts()
    assert rows == [{"n": 3_004, "longest": len(deep(100_000))}]
    landed = Lakehouse(site["warehouse"]).sql("SELECT count(*) AS n FROM bronze.deep").to_dicts()
    assert landed == [{"n": 3}]
    records = audited(site, "action = 'POST /ingest/{table}' AND target = 'bronze.deep'")
    assert [(r["status"], r["outcome"]) for r in records] == [(422, "error")]


def test_request_bodies_nested_too_deeply_are_refused(site: dict) -> None:
    with client(site) as c:
        for levels in (100_000, 5_000, 40):
            body = b'{"sql": ' + b"[" * levels + b"]" * levels + b"}"
            answer = c.post("/query", content=body, headers={"Content-Type": "application/json"})
            message = error_of(answer, 400)["message"]
            assert f"nests {levels + 1} levels deep" in message, message
        runs = c.post("/pipelines/none/runs", content=b"[" * 50_000)
        assert "more than the 32 allowed" in error_of(runs, 400)["message"]
        flat = c.post("/query", json={"sql": "SELECT 1 AS x", "limit": 5})
        assert flat.json()["rows"] == [[1]]
    where = "action = 'POST /query' AND status = 400 AND detail LIKE '%nests%'"
    assert len(audited(site, where, at_least=3)) == 3


@pytest.mark.parametrize("terms", [300, 700])
def test_a_sum_of_hundreds_of_terms_runs(site: dict, terms: int) -> None:
    sql = "SELECT " + " + ".join(["x"] * terms) + " AS s FROM silver.numbers ORDER BY s"
    with client(site) as c:
        answer = c.post("/query", json={"sql": sql})
    assert answer.status_code == 200, answer.text[:2000]
    assert answer.json()["rows"] == [[terms], [2 * terms], [3 * terms]]


@pytest.mark.parametrize("terms", [1_200, 20_000])
def test_a_statement_beyond_the_engines_nesting_limit_gets_400(site: dict, terms: int) -> None:
    sql = "SELECT " + " + ".join(["x"] * terms) + " AS s FROM silver.numbers"
    with client(site) as c:
        answer = c.post("/query", json={"sql": sql})
        error = error_of(answer, 400)
        assert "nests expressions too deeply" in error["message"]
        assert "SET" not in error["message"] and "CTE" in error["hint"]
        assert c.get("/health").status_code == 200


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "arrow"])
def test_results_over_the_size_limit_get_413_in_every_format(site: dict, fmt: str) -> None:
    with client(site) as c:
        wide = c.post(
            "/query",
            json={"sql": "SELECT repeat('x', 1000) AS s FROM range(5000)", "limit": 5000,
                  "format": fmt},
        )
        error = error_of(wide, 413)
        assert f"{MAX_RESULT:,}" in error["message"] and "narrow" in error["hint"]
        # Small in Arrow's memory, larger than the limit once written as text.
        flags = ", ".join(f"true AS c{i}" for i in range(12))
        answer = c.post(
            "/query",
            json={"sql": f"SELECT {flags} FROM range(100000)", "limit": 100_000, "format": fmt},
        )
        if fmt in ("json", "csv"):
            assert f"{MAX_RESULT:,}" in error_of(answer, 413)["message"]
        else:
            assert answer.status_code == 200, answer.text[:2000]
            assert len(answer.content) <= MAX_RESULT


def test_values_a_format_cannot_hold_get_400(site: dict) -> None:
    with client(site) as c:
        nested = "SELECT [1, 2] AS l, {'a': 1} AS s"
        csv = c.post("/query", json={"sql": nested, "format": "csv"})
        assert "cannot be written as csv" in error_of(csv, 400)["message"]
        assert c.post("/query", json={"sql": nested, "format": "arrow"}).status_code == 200
        deep_list = "SELECT " + "[" * 300 + "1" + "]" * 300 + " AS x"
        answer = c.post("/query", json={"sql": deep_list})
        assert "cannot be returned" in error_of(answer, 400)["message"]
        fine = c.post("/query", json={"sql": "SELECT " + "[" * 40 + "1" + "]" * 40 + " AS x"})
        assert fine.status_code == 200, fine.text


def test_a_result_over_2_gib_gets_413(site: dict) -> None:
    with client(site) as c:
        answer = c.post(
            "/query", json={"sql": "SELECT repeat('x', 600000000) AS s FROM range(4)"}
        )
        assert "larger than the limit" in error_of(answer, 413)["message"]
        assert c.get("/health").status_code == 200


def test_security_headers_on_every_answer(site: dict) -> None:
    with client(site, None) as c:
        answers = [
            c.get("/"),
            c.get("/static/app.js"),
            c.get("/health"),
            c.get("/tables"),  # 401
            c.get("/nope"),  # 404
            c.get("/docs"),
        ]
    with client(site) as c:
        answers.append(c.post("/query", json={"sql": "SELECT 1"}))
    for answer in answers:
        headers = answer.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], answer.url
        assert "default-src 'self'" in headers["content-security-policy"], answer.url
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
    # Scripts from this origin only, and the page's one inline import map by its hash.
    policy = answers[0].headers["content-security-policy"]
    scripts = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    sources = scripts.split()[1:]
    assert sources[0] == "'self'", scripts
    assert all(s.startswith("'sha256-") for s in sources[1:]), scripts


def test_health_shows_the_warehouse_only_to_a_caller_with_a_token(site: dict) -> None:
    path = str(Path(site["warehouse"]).resolve())
    with client(site, None) as c:
        anonymous = c.get("/health")
    assert anonymous.status_code == 200 and anonymous.json()["status"] == "ok"
    assert "warehouse" not in anonymous.json() and path not in anonymous.text
    with client(site, "engineer") as c:
        assert c.get("/health").json()["warehouse"] == path


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_the_login_token_is_in_no_process_environment(site: dict) -> None:
    server: Server = site["server"]
    token = server.login_token.encode()
    processes = [server.proc.pid, *_descendants(server.proc.pid)]
    assert len(processes) >= 3  # the server and its two workers
    for pid in processes:
        for part in ("environ", "cmdline"):
            try:
                data = Path(f"/proc/{pid}/{part}").read_bytes()
            except FileNotFoundError:
                continue
            assert token not in data, (pid, part)


def test_token_guessing_is_limited_per_address_across_processes(site: dict) -> None:
    statuses, waits = [], []
    for i in range(FAILURES * 4):
        # A connection per call: the calls spread over both worker processes. A forwarded
        # address is not believed from a client the server was not told is its proxy.
        headers = {"Authorization": f"Bearer lh_guess{i}", "X-Forwarded-For": f"10.9.{i}.1"}
        with client(site, None) as c:
            answer = c.get("/tables", headers=headers)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            waits.append(int(answer.headers["retry-after"]))
            error = error_of(answer, 429)
            assert "too many failed authentications" in error["message"]
    assert statuses == [401] * FAILURES + [429] * (FAILURES * 3), statuses
    assert all(w >= 1 for w in waits)
    with client(site, None) as c:
        login = c.get("/?token=lh_guess-again", follow_redirects=False)
        assert login.status_code == 429
    # A good token is never refused, from the same address.
    for _ in range(4):
        with client(site, "engineer") as c:
            assert c.get("/me").status_code == 200
    records = audited(site, "status = 429", at_least=FAILURES * 3 + 1)
    assert len(records) == FAILURES * 3 + 1
    assert all(r["outcome"] == "throttled" and r["client"] == "127.0.0.1" for r in records)


def test_tls_options_are_checked_before_serving(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = self_signed(other)
    for args, said in [
        (["--tls-cert", str(cert)], "go together"),
        (["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key)], "no such file"),
        (["--tls-cert", str(cert), "--tls-key", str(other_key)], "cannot use the certificate"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(tmp_path / "w"),
             "serve", "--port", "0", *args],
            capture_output=True, text=True, timeout=120,
        )
        said_all = " ".join((done.stdout + done.stderr).split())  # lines wrapped as shown
        assert done.returncode != 0 and said in said_all, done
        assert "Traceback" not in said_all


def test_failures_counted_by_one_process_limit_another(tmp_path: Path) -> None:
    from lakehouse.api.ratelimit import FailedAuthentications, TooManyFailures

    path = tmp_path / "failures.db"
    script = (
        "import sys; from pathlib import Path\n"
        "from lakehouse.api.ratelimit import FailedAuthentications\n"
        "counter = FailedAuthentications(Path(sys.argv[1]), 3, 3600)\n"
        "for _ in range(3): counter.failed('10.0.0.1')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    counter = FailedAuthentications(path, 3, 3600)
    with pytest.raises(TooManyFailures) as refused:
        counter.failed("10.0.0.1")
    assert 3500 < refused.value.retry_after <= 3600
    assert "10.0.0.1" in refused.value.message
    counter.failed("10.0.0.2")  # another address has its own count
