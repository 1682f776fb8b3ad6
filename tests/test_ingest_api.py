"""REST sources into bronze against a local HTTP server (loopback, free port) that
paginates four ways, checks credentials, fails, throttles, times out and returns bad
records on purpose."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from lakehouse.errors import LakehouseError
from lakehouse.ingest.rest import ingest_api
from lakehouse.ingest.rest_config import RestSource, load_source

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"


def _records(n: int, start: int = 1) -> list[dict]:
    return [
        {"id": i, "updated_at": f"2024-01-01T00:00:{i % 60:02d}Z", "value": {"n": i}}
        for i in range(start, start + n)
    ]


class Api:
    """What the server answers; tests change it between loads."""

    def __init__(self) -> None:
        self.items = _records(25)
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.slow: dict[str, int] = {}  # path -> requests to answer too late
        self.requests: list[str] = []
        self.delay = 0.0  # seconds before every answer


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if not isinstance(body, bytes) else body
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the handler's name
            parts = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            path = parts.path
            api.requests.append(self.path)
            time.sleep(api.delay)
            if path.startswith("/secure"):
                ok = {
                    "/secure/bearer": f"Bearer {TOKEN}",
                    "/secure/basic": "Basic " + base64.b64encode(b"ann:pw").decode(),
                }
                if path == "/secure/key":
                    if self.headers.get("X-Key") != TOKEN:
                        return self._send(401, {"error": "no key"})
                elif self.headers.get("Authorization") != ok[path]:
                    return self._send(401, {"error": "unauthorised"})
                return self._send(200, api.items[:3])
            if api.slow.get(path):
                api.slow[path] -= 1
                time.sleep(1.5)
            queue = api.failures.get(path)
            if queue:
                code, headers = queue.pop(0)
                return self._send(code, {"error": "try later"}, headers)
            items = api.items
            if "since" in q:
                since = q["since"]
                items = [r for r in items if isinstance(r, dict) and r["updated_at"] >= since]
            if path == "/pages":
                n, size = int(q["page"]), int(q.get("per_page", 10))
                return self._send(200, {"data": {"items": items[(n - 1) * size : n * size]}})
            if path == "/offset":
                o, limit = int(q["offset"]), int(q["limit"])
                return self._send(200, {"results": items[o : o + limit]})
            if path == "/cursor":
                o = int(q.get("cursor", 0))
                nxt = o + 10 if o + 10 < len(items) else None
                return self._send(200, {"items": items[o : o + 10], "meta": {"next": nxt}})
            if path == "/link":
                o = int(q.get("from", 0))
                headers = {}
                if o + 10 < len(items):
                    headers["Link"] = f'</link?from={o + 10}>; rel="next"'
                return self._send(200, items[o : o + 10], headers)
            return self._send(404, {"error": "no such endpoint"})

    return Handler


@pytest.fixture
def api():
    state = Api()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _source(api: Api, **kw: object) -> RestSource:
    base = {"base_url": api.base, "into": "bronze.items", "retries": {"backoff": 0.01}}
    return RestSource.model_validate({**base, **kw})


def _ids(lh, table: str = "bronze.items") -> list[int]:
    return lh.sql(f"SELECT id FROM {table} ORDER BY id").to_arrow().column(0).to_pylist()


@pytest.mark.parametrize(
    "endpoint,pagination,records_path",
    [
        ("/pages", {"type": "page", "size_param": "per_page", "size": 10}, "data.items"),
        ("/offset", {"type": "offset", "size": 7}, "results"),
        ("/cursor", {"type": "cursor", "cursor_path": "meta.next"}, "items"),
        ("/link", {"type": "link"}, None),
    ],
)
def test_every_pagination_reads_every_record_once(api, lh, endpoint, pagination, records_path):
    source = _source(api, endpoint=endpoint, pagination=pagination, records_path=records_path)
    report = ingest_api(lh, source)
    assert report.rows == 25 and _ids(lh) == list(range(1, 26))
    row = lh.sql("SELECT value, _source, _record_hash FROM bronze.items LIMIT 1").to_arrow()
    assert row.column("_source")[0].as_py() == api.base + endpoint
    assert row.column("_record_hash")[0].as_py()


def test_retries_honour_retry_after_and_give_up_clearly(api, lh):
    waits: list[float] = []
    api.failures["/pages"] = [(503, {}), (429, {"Retry-After": "2"}), (500, {})]
    source = _source(api, endpoint="/pages", pagination={"type": "page"}, records_path="data.items")
    report = ingest_api(lh, source, sleep=waits.append)
    assert report.rows == 25 and report.retries == 3
    assert waits == [0.01, 2.0, 0.04]  # backoff doubled; Retry-After instead when given
    api.failures["/pages"] = [(503, {})] * 5
    with pytest.raises(LakehouseError) as exc:
        ingest_api(lh, source, sleep=waits.append)
    assert "503 after 5 attempts" in str(exc.value)
    with pytest.raises(LakehouseError) as exc:
        ingest_api(lh, _source(api, endpoint="/missing"))
    assert "404" in str(exc.value) and "endpoint" in exc.value.hint


def test_time_outs_are_retried(api, lh):
    api.slow["/link"] = 1
    source = _source(api, endpoint="/link", pagination={"type": "link"}, timeout=0.5)
    report = ingest_api(lh, source, sleep=lambda s: None)
    assert report.rows == 25 and report.retries == 1


def test_rate_limit_spaces_requests(api, lh):
    source = _source(
        api,
        endpoint="/cursor",
        pagination={"type": "cursor", "cursor_path": "meta.next"},
        records_path="items",
        rate_limit=20,
    )
    start = time.monotonic()
    ingest_api(lh, source)
    assert time.monotonic() - start >= 2 / 20  # three requests: two gaps at least


def test_incremental_mark_ties_and_quarantine(api, lh):
    source = _source(
        api,
        endpoint="/pages",
        pagination={"type": "page"},
        records_path="data.items",
        params={"fields": "all"},
        incremental={"param": "since", "field": "updated_at"},
    )
    api.items = _records(5) + ["not an object", {"id": 99, "updated_at": "yesterday"}]
    first = ingest_api(lh, source)
    assert first.rows == 5 and first.quarantined == 2 and first.mark == "2024-01-01T00:00:05Z"
    bad = lh.sql("SELECT raw_payload FROM bronze.items_quarantine ORDER BY raw_payload")
    assert [r["raw_payload"] for r in bad.to_arrow().to_pylist()] == [
        '"not an object"',
        '{"id": 99, "updated_at": "yesterday"}',
    ]
    # Later: one record at the mark's exact time, one after; the bad ones are gone.
    api.items = _records(5) + [
        {"id": 6, "updated_at": "2024-01-01T00:00:05Z", "value": None},
        {"id": 7, "updated_at": "2024-01-01T00:00:09Z", "value": {"n": 7}, "extra": "new"},
    ]
    second = ingest_api(lh, source)
    assert second.rows == 2 and second.already_held == 1 and second.quarantined == 0
    assert any("since=2024-01-01T00%3A00%3A05Z" in r for r in api.requests)
    assert "added column extra" in second.schema_changes
    third = ingest_api(lh, source)
    assert third.rows == 0 and third.already_held == 1  # only the record at the mark
    assert _ids(lh) == [1, 2, 3, 4, 5, 6, 7]
    assert lh.table("bronze.items_quarantine").count() == 2


@pytest.mark.parametrize(
    "endpoint,auth,env",
    [
        ("/secure/bearer", {"type": "bearer", "token_env": "LH_TEST_TOKEN"}, TOKEN),
        (
            "/secure/basic",
            {"type": "basic", "username": "ann", "password_env": "LH_TEST_TOKEN"},
            "pw",
        ),
        ("/secure/key", {"type": "api_key", "header": "X-Key", "key_env": "LH_TEST_TOKEN"}, TOKEN),
    ],
)
def test_auth(api, lh, monkeypatch, endpoint, auth, env):
    source = _source(api, endpoint=endpoint, auth=auth)
    monkeypatch.delenv("LH_TEST_TOKEN", raising=False)
    with pytest.raises(LakehouseError) as exc:
        ingest_api(lh, source)
    assert "LH_TEST_TOKEN is not set" in str(exc.value)
    monkeypatch.setenv("LH_TEST_TOKEN", "wrong")
    with pytest.raises(LakehouseError) as exc:
        ingest_api(lh, source)
    assert "401" in str(exc.value) and "credentials" in exc.value.hint
    monkeypatch.setenv("LH_TEST_TOKEN", env)
    assert ingest_api(lh, source).rows == 3


def test_cli_and_bad_files(api, tmp_path):
    spec = {
        "base_url": api.base,
        "endpoint": "/link",
        "into": "bronze.linked",
        "pagination": {"type": "link"},
    }
    path = tmp_path / "source.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    command = [
        sys.executable,
        "-m",
        "lakehouse.cli",
        "--warehouse",
        str(tmp_path / "wh"),
        "ingest",
        "api",
        str(path),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "25 row(s) landed" in done.stdout, done.stdout + done.stderr
    path.write_text(yaml.safe_dump({**spec, "pagination": {"type": "pages"}, "colour": 1}))
    with pytest.raises(LakehouseError) as exc:
        load_source(path)
    assert "pagination.type" in str(exc.value) and "colour" in str(exc.value)


def test_pipeline_datasets_of_api_and_database_sources(api, lh, tmp_path):
    import sqlite3

    from lakehouse.pipeline import load_pipeline, run_pipeline

    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE users (id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'a');"
    )
    con.commit()
    folder = tmp_path / "pipe"
    (folder / "bronze").mkdir(parents=True)
    (folder / "silver").mkdir()
    (folder / "pipeline.yml").write_text(
        yaml.safe_dump({"name": "shop", "vars": {"api": api.base, "db": f"sqlite:///{db}"}})
    )
    (folder / "bronze" / "items.yml").write_text(
        yaml.safe_dump(
            {
                "kind": "api",
                "api": {
                    "base_url": "${api}",
                    "endpoint": "/cursor",
                    "records_path": "items",
                    "pagination": {"type": "cursor", "cursor_path": "meta.next"},
                    "incremental": {"param": "since", "field": "updated_at"},
                },
            }
        )
    )
    (folder / "bronze" / "users.yml").write_text(
        yaml.safe_dump(
            {
                "kind": "database",
                "database": {"url": "${db}", "table": "users", "incremental_column": "id"},
            }
        )
    )
    (folder / "silver" / "counts.sql").write_text(
        "SELECT (SELECT count(*) FROM bronze.items) AS items, "
        "(SELECT count(*) FROM bronze.users) AS users"
    )
    first = run_pipeline(lh, load_pipeline(folder))
    assert {d.dataset: d.status for d in first.datasets} == {
        "bronze.items": "ok",
        "bronze.users": "ok",
        "silver.counts": "ok",
    }
    assert lh.sql("SELECT * FROM silver.counts").to_arrow().to_pylist() == [
        {"items": 25, "users": 1}
    ]
    con.executescript("INSERT INTO users VALUES (2, 'b');")
    con.commit()
    second = run_pipeline(lh, load_pipeline(folder))
    assert lh.sql("SELECT * FROM silver.counts").to_arrow().to_pylist() == [
        {"items": 25, "users": 2}
    ]
    items = next(d for d in second.datasets if d.dataset == "bronze.items")
    assert items.rows_written == 0
    (folder / "bronze" / "items.yml").write_text(
        yaml.safe_dump({"kind": "api", "api": {"endpoint": "/x", "pagination": {"type": "?"}}})
    )
    from lakehouse.errors import LakehouseError as Failed

    with pytest.raises(Failed) as exc:
        load_pipeline(folder)
    assert "api.base_url" in str(exc.value) and "api.pagination.type" in str(exc.value)


def test_killed_load_loses_and_doubles_nothing(api, tmp_path):
    import signal

    api.items = _records(25) + ["bad"]
    spec = {
        "base_url": api.base,
        "endpoint": "/link",
        "into": "bronze.killed",
        "pagination": {"type": "link"},
        "incremental": {"param": "since", "field": "updated_at"},
    }
    path = tmp_path / "source.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    command = [
        sys.executable,
        "-m",
        "lakehouse.cli",
        "--warehouse",
        str(tmp_path / "wh"),
        "ingest",
        "api",
        str(path),
    ]
    api.delay = 0.4
    for _ in range(2):  # killed while fetching its pages
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 60
        seen = len(api.requests)
        while len(api.requests) < seen + 2 and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    api.delay = 0.0
    for _ in range(2):
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
    from lakehouse import Lakehouse

    lh = Lakehouse(tmp_path / "wh")
    assert _ids(lh, "bronze.killed") == list(range(1, 26))
    assert lh.table("bronze.killed_quarantine").count() == 1
