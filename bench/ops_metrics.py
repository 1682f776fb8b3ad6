"""GET /metrics with 100 tables: the latency of a Prometheus scrape of ``lakehouse serve``.

Usage: python bench/ops_metrics.py [--tables 100] [--scrapes 500] [--workers 2] [--seconds 10]

A warehouse of ``--tables`` tables (bronze, silver, gold) and a pipeline run (so the run
records, rows ingested and quality figures are in the answer), served by ``lakehouse serve
--workers 2``. One client, as Prometheus scrapes, fetches ``/metrics`` ``--scrapes`` times,
alternating with ``GET /health`` (the baseline: the same server, a request that asks the
catalog for its table names); p50 and p99 of each. Target: /metrics p99 <= 100 ms. The
first scrape (nothing cached: every table's log listed, the run records read) is reported
apart. Then wrk, 4 connections for ``--seconds``, on each of the two: p99 under concurrent
scrapes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pyarrow as pa

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
SCRATCH = BENCH_DIR / "data" / "ops-metrics"
PYTHON = sys.executable
TARGET_P99_MS = 100.0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warehouse(tables: int) -> Path:
    from lakehouse import Lakehouse

    shutil.rmtree(SCRATCH, ignore_errors=True)
    folder = SCRATCH / "warehouse"
    lh = Lakehouse(folder)
    rows = pa.table({"id": list(range(100)), "kind": [["a", "b", "c"][i % 3] for i in range(100)]})
    layers = ("bronze", "silver", "gold")
    for i in range(tables - 3):  # the pipeline below adds silver.events and its quarantine
        lh.write(f"{layers[i % 3]}.t{i:03d}", rows)  # two versions each
        lh.write(f"{layers[i % 3]}.t{i:03d}", rows.slice(0, 10))
    pipeline = SCRATCH / "bench"
    (pipeline / "silver").mkdir(parents=True)
    (pipeline / "silver" / "events.sql").write_text(
        textwrap.dedent(
            """\
            -- kind: append
            -- expectations:
            --   - {name: known_kind, expect: "kind IN ('a', 'b')", action: quarantine}
            SELECT id, kind FROM bronze.t000
            """
        )
    )
    done = subprocess.run(
        [PYTHON, "-m", "lakehouse.cli", "--warehouse", str(folder), "run", str(pipeline)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    return folder


def start_server(folder: Path, workers: int) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    args = ["--warehouse", str(folder), "serve", "--port", "0", "--workers", str(workers)]
    return start_lakehouse_server(args, env, SCRATCH)


def sequential(base: str, scrapes: int) -> dict[str, object]:
    metrics: list[float] = []
    health: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        deadline = time.time() + 60
        while time.time() < deadline:  # both workers up
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        started = time.perf_counter()
        first = client.get("/metrics")
        first_ms = (time.perf_counter() - started) * 1000
        first.raise_for_status()
        series = sum(1 for line in first.text.splitlines() if line and not line.startswith("#"))
        for _ in range(scrapes):
            for path, into in (("/metrics", metrics), ("/health", health)):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                into.append((time.perf_counter() - started) * 1000)
    figures = {
        name: {"p50_ms": round(percentile(s, 0.5), 2), "p99_ms": round(percentile(s, 0.99), 2)}
        for name, s in (("metrics", metrics), ("health", health))
    }
    return {"first_scrape_ms": round(first_ms, 2), "series": series, **figures}


def wrk(base: str, path: str, seconds: int) -> dict[str, float]:
    script = SCRATCH / "wrk.lua"
    script.write_text(WRK_DONE)
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            "4",
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    requests, errors, p50, p99, duration = wrk_figures(done.stdout)
    return {
        "per_second": round(requests / duration, 1),
        "errors": errors,
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per path")
    args = parser.parse_args()
    folder = warehouse(args.tables)
    proc, base = start_server(folder, args.workers)
    try:
        warn_if_busy("before the scrapes")
        one = sequential(base, args.scrapes)
        load = {}
        if shutil.which("wrk"):
            load = {
                "metrics": wrk(base, "/metrics", args.seconds),
                "health": wrk(base, "/health", args.seconds),
            }
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    m, h = one["metrics"], one["health"]
    print(
        f"{args.tables} tables, {one['series']} series a scrape; first scrape "
        f"{one['first_scrape_ms']} ms"
    )
    print(
        f"GET /metrics  p50 {m['p50_ms']:7.2f} ms   p99 {m['p99_ms']:7.2f} ms "
        f"(target <= {TARGET_P99_MS:.0f} ms: {verdict(m['p99_ms'], TARGET_P99_MS)})"
    )
    print(f"GET /health   p50 {h['p50_ms']:7.2f} ms   p99 {h['p99_ms']:7.2f} ms (baseline)")
    for path, f in load.items():
        print(
            f"wrk -c 4 /{path}: {f['per_second']} req/s, p50 {f['p50_ms']} ms, "
            f"p99 {f['p99_ms']} ms, errors {f['errors']}"
        )
    path = write_result(
        "ops_metrics",
        {"tables": args.tables, "workers": args.workers, "one_client": one, "wrk": load},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
