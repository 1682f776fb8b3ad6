"""GET /metrics of a real ``lakehouse serve --workers 2``, scraped by Debian's Prometheus
and checked by promtool; JSON logs of a pipeline run."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakehouse import Lakehouse
from lakehouse.ingest.kafka import KafkaSettings
from lakehouse.streaming.broker import free_port
from lakehouse.streaming.loop import run_stream
from tests.helpers.kafka import kafka, new_topic, send
from tests.helpers.live import stop
from tests.helpers.server import Server, start_server

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
METRICS_TOKEN = "metrics-secret-token"
ROOT = Path(__file__).resolve().parents[1]

SILVER = """
    -- kind: append
    -- keys: [event_id]
    -- expectations:
    --   - {name: has_user, not_null: user_id, action: quarantine}
    --   - {name: known_kind, accepted_values: {column: kind, values: [a, b]}, action: drop}
    SELECT event_id, user_id, kind, n FROM bronze.raw
"""
GOLD = "SELECT kind, count(*) AS events FROM silver.events GROUP BY kind\n"


def events(n: int) -> pa.Table:
    return pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": [None if i % 7 == 0 else i % 5 for i in range(n)],
            "kind": [["a", "b", "c"][i % 3] for i in range(n)],
            "n": list(range(n)),
            "ts": [datetime(2026, 11, 1, i % 24) for i in range(n)],
        }
    )


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def cli(
    warehouse: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), *args],
        cwd=warehouse.parent,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str], Path]:
    """Three tables written here, a pipeline run by the CLI with JSON logs."""
    base = tmp_path_factory.mktemp("metrics")
    warehouse = base / "warehouse"
    Lakehouse(warehouse).write("bronze.raw", events(30))
    folder = base / "shop"
    for rel, body in {"silver/events.sql": SILVER, "gold/kinds.sql": GOLD}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(body).lstrip("\n"))
    (base / "lakehouse.yaml").write_text(f"metrics:\n  token: {METRICS_TOKEN}\n")
    run = cli(
        warehouse,
        "--log-format",
        "json",
        "run",
        str(folder),
        env={"LAKEHOUSE_LOG_LEVEL": "DEBUG"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return warehouse, run, folder


@pytest.fixture(scope="module")
def server(warehouse) -> Iterator[Server]:
    running = start_server(warehouse[0], args=["--workers", "2"])
    try:
        yield running
    finally:
        running.stop()


def scrape(server: Server) -> str:
    got = httpx.get(
        f"{server.base}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=30,
    )
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    return got.text


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(body: str, name: str, **labels: str) -> float | None:
    return samples(body).get((name, tuple(sorted(labels.items()))))


def test_json_logs_of_a_run_carry_the_run_and_what_each_line_is_about(warehouse):
    _, run, _ = warehouse
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert lines, "the run logged nothing"
    run_ids = {line.get("run_id") for line in lines}
    assert len(run_ids) == 1 and None not in run_ids, run_ids
    assert {line["pipeline"] for line in lines} == {"shop"}
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    datasets = [line for line in lines if line.get("dataset") == "silver.events"]
    assert any(line.get("operation") == "append" for line in datasets)
    writes = [line for line in lines if line["logger"] == "lakehouse.write"]
    assert {(w["table"], w["operation"]) for w in writes} >= {
        ("silver.events", "overwrite"),  # a first run builds the table
        ("system.pipeline_runs", "merge"),
    }
    assert all(w["dataset"] == "silver.events" for w in writes if w["table"] == "silver.events")
    assert any(line["message"].startswith("run succeeded") for line in lines)
    assert not any(line.lstrip().startswith('{"time"') for line in run.stdout.splitlines())


def test_metrics_need_the_token(server):
    assert httpx.get(f"{server.base}/metrics", timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{server.base}/metrics", headers=wrong, timeout=30).status_code == 401


def test_table_and_run_figures(server, warehouse):
    body = scrape(server)
    lh = Lakehouse(warehouse[0])
    assert value(body, "lakehouse_table_rows", table="bronze.raw", layer="bronze") == 30
    info = lh.catalog.get("silver.events")
    assert info is not None
    labels = {"table": "silver.events", "layer": "silver"}
    assert value(body, "lakehouse_table_rows", **labels) == info.row_count
    assert value(body, "lakehouse_table_size_bytes", **labels) == info.size_bytes
    assert value(body, "lakehouse_table_version", **labels) == info.version
    assert value(body, "lakehouse_table_snapshots", **labels) == info.version + 1
    assert value(body, "lakehouse_tables", layer="gold") == 1
    assert value(body, "lakehouse_pipeline_runs_total", pipeline="shop", status="succeeded") == 1
    run = {"pipeline": "shop", "status": "succeeded"}
    assert value(body, "lakehouse_pipeline_run_duration_seconds_count", **run) == 1
    ds = {"pipeline": "shop", "dataset": "silver.events"}
    assert value(body, "lakehouse_dataset_rows_written_total", **ds) == info.row_count
    assert value(body, "lakehouse_dataset_rows_quarantined_total", **ds) == 5  # user_id NULL
    assert value(body, "lakehouse_dataset_write_duration_seconds_count", **ds) == 1
    check = {**ds, "expectation": "known_kind", "action": "drop"}
    assert value(body, "lakehouse_quality_failures_total", **check) == 1
    assert value(body, "lakehouse_quality_failed_rows_total", **check) > 0


def test_latency_and_writes_count_across_both_workers(server):
    def health_count() -> float:
        labels = {"method": "GET", "route": "/health", "status": "200"}
        return value(scrape(server), "lakehouse_http_request_duration_seconds_count", **labels) or 0

    before = health_count()
    pids = set()
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for _ in range(40):  # new connections: both workers take some
            assert client.get("/health", headers={"Connection": "close"}).status_code == 200
    assert health_count() == before + 40
    with server.client(server.login_token) as client:
        for i in range(3):
            got = client.post("/ingest/bronze.clicks", content=json.dumps({"i": i}) + "\n")
            assert got.status_code < 300, got.text
    body = scrape(server)
    write = {"table": "bronze.clicks", "mode": "append"}
    assert value(body, "lakehouse_table_write_duration_seconds_count", **write) == 3
    assert value(body, "lakehouse_table_rows", table="bronze.clicks", layer="bronze") == 3
    unmatched = {"method": "GET", "route": "/tables/{name}", "status": "404"}
    with server.client(server.login_token) as client:
        assert client.get("/tables/bronze.nothing").status_code == 404
    assert value(scrape(server), "lakehouse_http_request_duration_seconds_count", **unmatched) == 1
    del pids


def test_promtool_accepts_a_scrape(server, tmp_path):
    body = scrape(server)
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_stream_lag_per_partition_while_a_stream_runs(server, warehouse, tmp_path):
    lh = Lakehouse(warehouse[0])
    with kafka(tmp_path / "broker") as bootstrap:
        topic = new_topic(bootstrap, partitions=2)
        send(bootstrap, topic, [json.dumps({"i": i}).encode() for i in range(10)], partition=0)
        send(bootstrap, topic, [json.dumps({"i": i}).encode() for i in range(4)], partition=1)
        settings = KafkaSettings(bootstrap, topic, "g", interval=0.3, instance_id="m-1")
        stop = threading.Event()
        failed: list[BaseException] = []

        def go() -> None:
            try:
                run_stream(lh, "bronze.stream_events", settings, stop=stop)
            except BaseException as exc:  # noqa: BLE001 - raised by the test below
                failed.append(exc)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        try:
            labels = {"table": "bronze.stream_events", "topic": topic}

            def caught_up() -> object:
                assert not failed, failed
                body = scrape(server)
                offsets = [
                    value(body, "lakehouse_stream_committed_offset", **labels, partition=p)
                    for p in ("0", "1")
                ]
                lags = [
                    value(body, "lakehouse_stream_lag_messages", **labels, partition=p)
                    for p in ("0", "1")
                ]
                return offsets == [9, 3] and lags == [0, 0]

            wait_for(caught_up, "the stream's lag at 0 with offsets 9 and 3")
        finally:
            stop.set()
            thread.join(60)
        assert not failed, failed
        body = scrape(server)
        assert "lakehouse_stream_lag_messages{" not in body


@pytest.fixture
def prometheus(server, tmp_path) -> Iterator[str]:
    port = free_port()
    host_port = server.base.removeprefix("http://")
    (tmp_path / "token").write_text(METRICS_TOKEN)
    (tmp_path / "prometheus.yml").write_text(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: lakehouse
                metrics_path: /metrics
                authorization:
                  credentials_file: {tmp_path / "token"}
                static_configs:
                  - targets: ["{host_port}"]
            """
        )
    )
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, 15)


def test_prometheus_scrapes_the_server(prometheus):
    def query(expr: str) -> list[dict[str, object]]:
        try:
            got = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        except httpx.HTTPError:
            return []
        if got.status_code != 200:
            return []
        return list(got.json()["data"]["result"])

    up = wait_for(lambda: query('up{job="lakehouse"} == 1'), "the target up")
    assert up
    rows = wait_for(
        lambda: query('lakehouse_table_rows{table="bronze.raw"}'), "the rows of bronze.raw"
    )
    assert isinstance(rows, list) and rows[0]["value"][1] == "30"
    runs = query('lakehouse_pipeline_runs_total{pipeline="shop",status="succeeded"}')
    assert runs and runs[0]["value"][1] == "1"


def test_auto_logs_are_text_on_a_terminal_and_json_on_a_pipe(warehouse):
    """Last in this file: it adds runs to the records the tests above count."""
    folder, pipeline = warehouse[0], warehouse[2]
    piped = cli(folder, "run", str(pipeline))
    assert piped.returncode == 0, piped.stderr
    lines = [json.loads(line) for line in piped.stderr.splitlines() if line.strip()]
    assert lines and all(line["pipeline"] == "shop" and line["run_id"] for line in lines)

    primary, secondary = pty.openpty()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(folder), "run", str(pipeline)],
        cwd=folder.parent,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(120) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    text_lines = [line for line in seen.decode().splitlines() if line.strip()]
    assert text_lines, "nothing logged on the terminal"
    assert not any(line.lstrip().startswith("{") for line in text_lines), text_lines
    assert any(" INFO lakehouse.pipeline [run=" in line for line in text_lines), text_lines
    assert proc.stdout is not None and "run " in proc.stdout.read()
