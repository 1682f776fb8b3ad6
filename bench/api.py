"""The REST API under one client and under load, against the same queries run in-process.

- A warehouse with the demo (``lakehouse demo``) in ``bench/data/api-warehouse``.
- ``lakehouse serve --port 0`` as a child process; an analyst token (PII masked).
- One client (httpx, keep-alive): a query on a gold table made distinct each time (so never
  cached), then the same query repeated (cached). Baseline: the same statements through
  ``lh.engine.safe_query`` and through plain ``lh.sql`` in this process.
- Load: ``wrk`` (Debian's package; a separate process) with 50 connections for 60 s on
  ``POST /query``, the dashboard pattern (a handful of gold queries, so mostly cached) and
  then every request distinct (never cached). Server memory before and after.

Targets: one client p50 <= 20 ms and p99 <= 50 ms uncached, cached repeat <= 5 ms;
under load >= 500 queries/s, p99 <= 250 ms, no errors, server memory growth < 20%.
Writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from benchlib import (
    BENCH_DIR,
    WRK_DONE,
    start_lakehouse_server,
    verdict,
    warn_if_busy,
    write_result,
    wrk_figures,
)

ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "src"))

from lakehouse import Lakehouse  # noqa: E402
from lakehouse.access import Access  # noqa: E402

PYTHON = sys.executable
GOLD = "SELECT day, daily_users, events, new_users, bounce_rate FROM gold.daily_summary"
DASHBOARD = [
    "SELECT * FROM gold.daily_active_users ORDER BY 1",
    "SELECT * FROM gold.conversion_rate_daily ORDER BY 1",
    "SELECT event_type, sum(events) AS events FROM gold.event_metrics GROUP BY 1 ORDER BY 2 DESC",
    "SELECT * FROM gold.hourly_metrics ORDER BY 1",
    "SELECT page, sum(purchases) AS purchases FROM gold.purchases_per_page_daily "
    "GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "SELECT segment, count(*) AS users FROM gold.user_segments GROUP BY 1 ORDER BY 2 DESC",
]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def figures(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50) * 1000, 2),
        "p99_ms": round(percentile(samples, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(samples) * 1000, 2),
    }


def warehouse(events: int) -> Path:
    folder = BENCH_DIR / "data" / "api-warehouse"
    marker = folder / f".demo-{events}"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        env = {**os.environ, "LAKEHOUSE_WAREHOUSE": str(folder)}
        subprocess.run(
            [PYTHON, "-m", "lakehouse.cli", "demo", "--events", str(events)],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        marker.touch()
    return folder


def start_server(folder: Path, workers: int | None) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "LAKEHOUSE_WAREHOUSE": str(folder)}
    extra = ["--workers", str(workers)] if workers else []
    return start_lakehouse_server(["serve", "--port", "0", *extra], env, ROOT)


def one_client(base: str, token: str, n: int) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for i in range(20):  # warm-up: views, connections
            client.post("/query", json={"sql": f"{GOLD} WHERE events > {-i - 1}"})
        uncached, cached = [], []
        for i in range(n):
            sql = f"{GOLD} WHERE events > {-1000 - i}"  # a new statement: never cached
            started = time.perf_counter()
            answer = client.post("/query", json={"sql": sql})
            uncached.append(time.perf_counter() - started)
            assert answer.status_code == 200 and not answer.json()["cached"], answer.text
        for _ in range(n):
            started = time.perf_counter()
            answer = client.post("/query", json={"sql": GOLD})
            cached.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
        assert answer.json()["cached"]
    out["http_uncached"] = figures(uncached)
    out["http_cached"] = figures(cached)
    return out


def in_process(folder: Path, n: int) -> dict[str, dict[str, float]]:
    lh = Lakehouse(folder)
    access = Access(lh)
    analyst = access.authenticate(access.create_token(f"bench-inproc-{os.getpid()}", "analyst"))

    def run(sql: str) -> None:
        lh.engine.safe_query(
            sql,
            limit=1000,
            timeout=30,
            masked=lambda t: access.masked_columns(analyst, t),
            can_read=lambda t: access.can_read(analyst, t),
        )

    for i in range(20):
        run(f"{GOLD} WHERE events > {-i - 1}")
    sandboxed, plain = [], []
    for i in range(n):
        started = time.perf_counter()
        run(f"{GOLD} WHERE events > {-5000 - i}")
        sandboxed.append(time.perf_counter() - started)
    for i in range(n):
        started = time.perf_counter()
        lh.sql(f"{GOLD} WHERE events > {-9000 - i}").to_arrow()
        plain.append(time.perf_counter() - started)
    return {"inprocess_sandboxed": figures(sandboxed), "inprocess_plain_sql": figures(plain)}


LUA = (
    """
local bodies = {BODIES}
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  n = {OFFSET} + id * 100000000
end
request = function()
  n = n + 1
  local body
  if {DISTINCT} then
    body = string.format('{"sql": "%s WHERE events > %d"}', "{GOLD}", -n)
  else
    body = bodies[(n % #bodies) + 1]
  end
  return wrk.format("POST", "/query", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {TOKEN}"}, body)
end
"""
    + WRK_DONE
)


def rss(server: psutil.Process) -> int:
    """The server's memory: its own and its worker processes'."""
    return sum(p.memory_info().rss for p in [server, *server.children(recursive=True)])


def run_wrk(base: str, script: str, seconds: int) -> None:
    subprocess.run(
        ["wrk", "-t", "2", "-c", "50", "-d", f"{seconds}s", "-s", script, base],
        capture_output=True,
        check=True,
    )


def lua(token: str, distinct: bool, offset: int) -> str:
    bodies = ", ".join("'" + json.dumps({"sql": q}).replace("'", "\\'") + "'" for q in DASHBOARD)
    script = (
        LUA.replace("{BODIES}", "{" + bodies + "}")
        .replace("{DISTINCT}", "true" if distinct else "false")
        .replace("{GOLD}", GOLD)
        .replace("{TOKEN}", token)
        .replace("{OFFSET}", str(offset))
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    return handle.name


def load(base: str, token: str, server: psutil.Process, seconds: int, distinct: bool) -> dict:
    # Distinct statements start far from any sent before, so none is in a cache.
    warm = lua(token, distinct, 10**12)
    try:
        run_wrk(base, warm, 5)  # warm-up: caches, connections, worker threads
    finally:
        os.unlink(warm)
    script = lua(token, distinct, 2 * 10**12)
    rss_before = rss(server)
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                "50",
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script,
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script)
    rss_after = rss(server)
    requests, errors, p50_ms, p99_ms, duration = wrk_figures(done.stdout)
    return {
        "requests": requests,
        "queries_per_second": round(requests / duration, 1),
        "p50_ms": round(p50_ms, 2),
        "p99_ms": round(p99_ms, 2),
        "errors": errors,
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_after_mib": round(rss_after / 2**20, 1),
        "rss_growth": round(rss_after / rss_before - 1, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="demo size")
    parser.add_argument("--requests", type=int, default=500, help="one-client requests")
    parser.add_argument("--seconds", type=int, default=60, help="load duration")
    parser.add_argument("--workers", type=int, help="server processes (default: the server's)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    folder = warehouse(args.events)
    token = Access(Lakehouse(folder)).create_token(f"bench-{os.getpid()}", "analyst")
    proc, base = start_server(folder, args.workers)
    try:
        server = psutil.Process(proc.pid)
        warn_if_busy("before the one-client run")
        single = one_client(base, token, args.requests)
        single.update(in_process(folder, args.requests))
        for name, f in single.items():
            print(f"{name:<24} p50 {f['p50_ms']:7.2f} ms   p99 {f['p99_ms']:7.2f} ms")
        warn_if_busy("before the load")
        dashboard = load(base, token, server, args.seconds, distinct=False)
        print(f"load, dashboard queries: {json.dumps(dashboard)}")
        distinct = load(base, token, server, args.seconds, distinct=True)
        print(f"load, every query new:   {json.dumps(distinct)}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    u, c = single["http_uncached"], single["http_cached"]
    print()
    print(
        f"uncached p50 {u['p50_ms']} ms (target <= 20: {verdict(u['p50_ms'], 20)}), "
        f"p99 {u['p99_ms']} ms (target <= 50: {verdict(u['p99_ms'], 50)})"
    )
    print(f"cached p50 {c['p50_ms']} ms (target <= 5: {verdict(c['p50_ms'], 5)})")
    for label, run in (("dashboard", dashboard), ("every query new", distinct)):
        qps_ok = "ok" if run["queries_per_second"] >= 500 else "MISSED"
        print(
            f"{label}: {run['queries_per_second']} q/s (target >= 500: {qps_ok}), "
            f"p99 {run['p99_ms']} ms ({verdict(run['p99_ms'], 250)}), errors {run['errors']}, "
            f"memory growth {run['rss_growth']:.1%} ({verdict(run['rss_growth'], 0.2)})"
        )
    path = write_result(
        "api",
        {
            "events": args.events,
            "workers": args.workers,
            "one_client": single,
            "load_dashboard": dashboard,
            "load_distinct": distinct,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
