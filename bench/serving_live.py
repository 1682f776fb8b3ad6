"""The live part of bench/serving.py: the platform dashboard served from the serving store
while a stream runs (see bench/serving.py for what is measured)."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchlib import BENCH_DIR, WRK_DONE, wrk_figures

ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # tests.helpers: the server as the tests start it

from confluent_kafka import Producer  # noqa: E402
from lakehouse import Lakehouse  # noqa: E402
from lakehouse.dashboards.engine import read_serving  # noqa: E402
from lakehouse.dashboards.params import bind  # noqa: E402
from lakehouse.dashboards.reader import read_dashboard  # noqa: E402
from lakehouse.dashboards.run import Caller, values_for  # noqa: E402
from lakehouse.streaming.broker import LocalBroker  # noqa: E402
from lakehouse.streaming.producer import UserEvents, ensure_topic  # noqa: E402
from tests.helpers.server import Server, start_server  # noqa: E402

from probes import ProbeSender  # noqa: E402

PROBES = """title: Probes
refresh: 1
time_range: all
panels:
  - id: probes
    title: Probe events
    kind: table
    sql: |
      SELECT DISTINCT event_type FROM realtime.events_per_minute
      WHERE event_type LIKE 'probe-%'
"""

WRK = (
    """
local paths = {PATHS}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1], {["Authorization"] = "Bearer {TOKEN}"})
end
"""
    + WRK_DONE
)


def _cli(warehouse: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        cwd=ROOT,
    )


def _send(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in UserEvents(seed=9).make(n):
        producer.produce(topic, json.dumps(event).encode())
    producer.flush(10)


def _wait(condition: Any, what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not happen within {limit:.0f} s")
        time.sleep(0.1)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def bench_live(folder: Path, rate: float, seconds: float) -> dict[str, Any]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    warehouse = folder / "warehouse"
    demo = _cli(warehouse, "demo")
    assert demo.wait(600) == 0, demo.stderr.read().decode() if demo.stderr else ""
    boards = folder / "dashboards"
    boards.mkdir()
    shutil.copy(ROOT / "dashboards" / "platform.yaml", boards / "platform.yaml")
    (boards / "probes.yaml").write_text(PROBES)
    broker = LocalBroker(Path(tempfile.mkdtemp(prefix="lh-bench-serving-"))).start()
    topic = "user-events"
    ensure_topic(broker.bootstrap, topic, 3)
    stream = _cli(
        warehouse, "stream", "--topic", topic, "--table", "bronze.user_events",
        "--bootstrap", broker.bootstrap, "--realtime", "--from", "latest", "--interval", "0.1",
    )  # fmt: skip
    server: Server | None = None
    try:
        lh = Lakehouse(warehouse)

        def made() -> bool:
            if stream.poll() is not None:
                raise SystemExit(f"the stream stopped: {stream.stderr.read().decode()}")
            _send(broker.bootstrap, topic, 50)
            return lh.catalog.get("realtime.logins_per_source") is not None

        _wait(made, "the stream's first windows")
        server = start_server(warehouse, args=["--dashboards", str(boards)])  # the default
        token = server.login_token
        with server.client(token) as client:

            def current() -> bool:
                mirrors = client.get("/serving").json()["mirrors"]
                return bool(mirrors) and all(m["state"] == "current" for m in mirrors)

            _wait(current, "every mirror current")
            latency = _latency(server, broker.bootstrap, topic, rate, seconds)
            _wait(current, "every mirror current after the load")
            panels = [p["id"] for p in client.get("/dashboards/platform").json()["panels"]]
        inside = _in_process(lh, boards / "platform.yaml", 30)
        server.stop()
        loads, wholes = {}, {}
        for workers in (None, 2):  # the server's default (one per core but one), then two
            server = start_server(warehouse, args=_workers(workers) + ["--dashboards", str(boards)])
            shown = _shown_workers(server)
            wholes[shown], engines = _whole_dashboard(server, panels, 50)
            loads[shown] = _wrk(server, panels, 60)
            server.stop()
        whole = next(iter(wholes.values()))  # the default server's
    finally:
        if server is not None:
            server.stop()
        stream.terminate()
        stream.wait(30)
        broker.stop()
    p95 = _pct(latency, 0.95)
    print(
        f"produced to visible in the probe panel's JSON, {len(latency)} probes at {rate:g} "
        f"events/s: p50 {statistics.median(latency):.2f} s, p95 {p95:.2f} s "
        f"(target p95 <= 2 s: {'ok' if p95 <= 2 else 'MISSED'})"
    )
    p50 = statistics.median(whole)
    print(
        f"the platform dashboard ({len(panels)} panels, engines {engines}) from the default "
        f"server: p50 {p50 * 1000:.1f} ms (target <= 50 ms: {'ok' if p50 <= 0.05 else 'MISSED'})"
        + "".join(
            f"; {w} worker process(es): p50 {statistics.median(s) * 1000:.1f} ms"
            for w, s in wholes.items()
        )
    )
    print(
        f"its panels' SQL in this process, summed: serving store p50 "
        f"{inside['serving_p50_ms']:.1f} ms, DuckDB engine over Delta (uncached) p50 "
        f"{inside['duckdb_p50_ms']:.1f} ms"
    )
    for workers, load in loads.items():
        print(
            f"50 clients for 60 s, {workers} worker process(es): {load['requests']} panel "
            f"requests, {load['errors']} errors, p50 {load['p50_ms']:.1f} ms, p99 "
            f"{load['p99_ms']:.1f} ms (targets 0 and <= 250 ms: "
            f"{'ok' if load['errors'] == 0 and load['p99_ms'] <= 250 else 'MISSED'})"
        )
    return {
        "rate": rate,
        "probes": len(latency),
        "latency_p50_s": statistics.median(latency),
        "latency_p95_s": p95,
        "dashboard_p50_ms": p50 * 1000,
        "dashboard_p50_ms_by_workers": {w: statistics.median(s) * 1000 for w, s in wholes.items()},
        "engines": engines,
        "in_process": inside,
        "load": loads,
    }


def _workers(count: int | None) -> list[str]:
    return [] if count is None else ["--workers", str(count)]


def _shown_workers(server: Server) -> int:
    """The worker processes the server says it started."""
    for line in server.output:
        found = re.search(r"\((\d+) worker process", line)
        if found:
            return int(found.group(1))
    raise SystemExit("the server did not say how many worker processes it started")


def _latency(server: Server, bootstrap: str, topic: str, rate: float, seconds: float) -> list:
    payloads = [
        json.dumps(e, separators=(",", ":")).encode()
        for e in UserEvents(seed=5).make(int(rate * (seconds + 10)))
    ]
    seen: dict[str, float] = {}
    sender = ProbeSender(bootstrap, topic, rate, payloads).start()
    sent, stop = sender.sent, sender.stop
    end = time.time() + seconds
    with server.client(server.login_token) as client:
        while time.time() < end + 10:
            answer = client.get("/dashboards/probes/panels/probes").json()
            now = time.time()
            assert answer["error"] is None, answer["error"]
            for (probe,) in answer["rows"]:
                seen.setdefault(probe, now)
            if time.time() >= end:
                stop.set()
            if stop.is_set() and len(seen) >= len(sent):
                break
            time.sleep(0.05)
    sender.join(30)
    missing = [p for p in sent if p not in seen]
    if missing:
        print(f"warning: {len(missing)} probes never seen, e.g. {missing[:3]}")
    return [seen[p] - sent[p] for p in sent if p in seen]


def _whole_dashboard(server: Server, panels: list[str], rounds: int) -> tuple[list, dict]:
    """Every panel's JSON fetched at once (as the page does), ``rounds`` times."""
    clients = [server.client(server.login_token) for _ in panels]
    for c in clients:  # uncached: the serving store reads each panel again
        c.headers["Cache-Control"] = "no-cache"
    engines: dict[str, str] = {}
    samples = []
    try:
        with ThreadPoolExecutor(len(panels)) as pool:

            def one(pair: tuple[httpx.Client, str]) -> dict:
                answer = pair[0].get(f"/dashboards/platform/panels/{pair[1]}")
                assert answer.status_code == 200, answer.text
                return answer.json()

            for _ in range(rounds):
                started = time.perf_counter()
                answers = list(pool.map(one, zip(clients, panels, strict=True)))
                samples.append(time.perf_counter() - started)
                engines = {a["id"]: a["engine"] for a in answers}
    finally:
        for c in clients:
            c.close()
    return samples, engines


def _in_process(lh: Lakehouse, path: Path, rounds: int) -> dict[str, float]:
    """The panels' SQL through the serving store (asked of the server's owner process)
    and through the DuckDB engine over the Delta tables (cache cleared), summed."""
    dashboard, _ = read_dashboard(path)
    assert dashboard is not None
    values = values_for(lh, dashboard, Caller())
    serving, duck = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for panel in dashboard.panels:
            read_serving(lh, panel.sql, bind(panel.sql, values), 10_000, fresh=True)
        serving.append(time.perf_counter() - started)
        started = time.perf_counter()
        for panel in dashboard.panels:
            lh.engine.cache_clear()
            lh.engine.safe_query(panel.sql, limit=10_000, params=bind(panel.sql, values) or None)
        duck.append(time.perf_counter() - started)
    return {
        "serving_p50_ms": statistics.median(serving) * 1000,
        "duckdb_p50_ms": statistics.median(duck) * 1000,
    }


def _wrk(server: Server, panels: list[str], seconds: int) -> dict[str, Any]:
    paths = "{" + ", ".join(f"'/dashboards/platform/panels/{p}'" for p in panels) + "}"
    script = WRK.replace("{PATHS}", paths).replace("{TOKEN}", server.login_token)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = ["wrk", "-t", "2", "-c", "50", "--timeout", "10s", "-s", handle.name]
        subprocess.run([*command, "-d", "5s", server.base], capture_output=True, check=True)
        done = subprocess.run(
            [*command, "-d", f"{seconds}s", server.base],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    requests, errors, p50_ms, p99_ms, duration = wrk_figures(done.stdout)
    return {
        "requests": requests,
        "per_second": round(requests / duration, 1),
        "errors": errors,
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
    }
