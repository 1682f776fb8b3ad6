"""TPC-H: the lakehouse SQL API versus DuckDB over the same data as plain parquet.

Usage: python bench/tpch.py --sf 1 [--repeat 5] [--queries 1,6]

Baseline: a fresh in-memory DuckDB with views silver.<table> over the generated parquet.
Candidate: Lakehouse(warehouse).sql(q).to_arrow() over the same data loaded into Delta.

Each engine lives in its own worker process (bench/tpch_worker.py), so its peak RSS is
its own. The driver alternates the two query by query, swapping which engine goes first
on every pass: a burst of load from elsewhere on the machine then lands on both engines
instead of on whichever ran during it. Each query's figure is the median of --repeat
timed runs after one warm-up run, whose result is also the one compared row by row.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.ipc as ipc

from benchlib import median, mib, peak_rss_bytes, ratio, verdict, warn_if_busy, write_result
from tpch_compare import compare
from tpch_data import TABLES, data_dir, generate, manifest, sf_label, table_reader
from tpch_worker import ENGINES, Worker, result_path, warehouse_dir

TIME_TARGET = 1.1
MEMORY_TARGET = 1.5
REQUEST_TIMEOUT_S = 600


def parse_queries(text: str | None) -> list[int]:
    if not text:
        return list(range(1, 23))
    queries = sorted({int(part) for part in text.split(",") if part.strip()})
    if any(not 1 <= q <= 22 for q in queries):
        raise SystemExit("queries must be between 1 and 22")
    return queries


def _count(lh: Any, table: str) -> int:
    result = lh.sql(f"SELECT count(*) AS n FROM silver.{table}").to_arrow()
    return int(result.column(0)[0].as_py())


def load_warehouse(sf: float) -> dict[str, float]:
    """Load every TPC-H table into Delta once; tables already at the right count are kept.

    Returns the seconds each (re)loaded table took.
    """
    from lakehouse import Lakehouse

    folder = data_dir(sf)
    expected = manifest(folder) or {}
    lh = Lakehouse(warehouse_dir(sf))
    took: dict[str, float] = {}
    # The catalog's row counts make the "already loaded" check free of table scans.
    loaded = {info.name: getattr(info, "row_count", None) for info in lh.tables()}
    for table in TABLES:
        if loaded.get(f"silver.{table}") == expected.get(table):
            continue
        started = time.perf_counter()
        # A RecordBatchReader streams the parquet batch by batch: SF10 lineitem is 60M rows.
        lh.write(f"silver.{table}", table_reader(folder, table), mode="overwrite")
        rows = _count(lh, table)
        took[table] = time.perf_counter() - started
        print(f"loaded silver.{table}: {rows:,} rows in {took[table]:.1f}s", flush=True)
        if rows != expected.get(table):
            raise SystemExit(f"silver.{table} has {rows} rows after load, want {expected[table]}")
    return took


def run(sf: float, queries: list[int], repeat: int, out: Path) -> dict[str, Any]:
    """Warm up, check and time every query on both engines; return the raw measurements."""
    workers: dict[str, Worker] = {}
    try:
        for engine in ENGINES:
            workers[engine] = Worker(engine, sf, out, REQUEST_TIMEOUT_S)
        errors: dict[str, str] = {}
        for q in queries:
            for engine, worker in workers.items():
                answer = worker.request(f"warm {q}")
                if not answer["ok"]:
                    errors[f"{engine}:Q{q:02d}"] = answer["error"]
        timed = [q for q in queries if not any(k.endswith(f"Q{q:02d}") for k in errors)]
        samples: dict[str, dict[int, list[float]]] = {e: {q: [] for q in timed} for e in ENGINES}
        for i in range(repeat):
            print(f"pass {i + 1}/{repeat}", flush=True)
            order = ENGINES if i % 2 == 0 else ENGINES[::-1]
            for q in timed:
                for engine in order:
                    samples[engine][q].append(workers[engine].request(f"time {q}")["s"])
        peaks = {engine: worker.close() for engine, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.kill()
    mismatches: dict[str, str] = {}
    for q in queries:
        paths = [result_path(out, e, q) for e in ENGINES]
        if all(p.exists() for p in paths):
            want, got = (ipc.open_file(p).read_all() for p in paths)
            problem = compare(want, got)
            if problem:
                mismatches[f"Q{q:02d}"] = problem
    return {
        "samples": samples,
        "peaks": peaks,
        "errors": errors,
        "mismatches": mismatches,
        "setup_s": {e: w.setup_s for e, w in workers.items()},
    }


def summarize(queries: list[int], raw: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for q in queries:
        row: dict[str, Any] = {"query": q}
        for engine in ENGINES:
            samples = raw["samples"][engine].get(q, [])
            row[f"{engine}_median_s"] = median(samples)
            row[f"{engine}_samples_s"] = samples
        row["ratio"] = ratio(row["lakehouse_median_s"], row["duckdb_median_s"])
        rows.append(row)
    total = {e: sum(r[f"{e}_median_s"] for r in rows) for e in ENGINES}
    peak = raw["peaks"]
    return {
        "queries": rows,
        "total_median_s": total,
        "time_ratio": ratio(total["lakehouse"], total["duckdb"]),
        "peak_rss_bytes": peak,
        "memory_ratio": ratio(peak["lakehouse"], peak["duckdb"]),
        "setup_s": raw["setup_s"],
    }


def print_table(summary: dict[str, Any]) -> None:
    print(f"\n{'query':>5}  {'duckdb s':>9}  {'lakehouse s':>11}  {'ratio':>6}")
    for row in summary["queries"]:
        print(
            f"Q{row['query']:02d}".rjust(5),
            f"{row['duckdb_median_s']:9.3f}",
            f"{row['lakehouse_median_s']:11.3f}",
            f"{row['ratio']:6.2f}",
            sep="  ",
        )
    total, peak = summary["total_median_s"], summary["peak_rss_bytes"]
    t_ratio, m_ratio = summary["time_ratio"], summary["memory_ratio"]
    print(
        f"{'total':>5}  {total['duckdb']:9.3f}  {total['lakehouse']:11.3f}  {t_ratio:6.2f}"
        f"   target <= {TIME_TARGET}: {verdict(t_ratio, TIME_TARGET)}"
    )
    print(
        f"peak RSS: duckdb {mib(peak['duckdb'])}, lakehouse {mib(peak['lakehouse'])},"
        f" ratio {m_ratio:.2f}   target <= {MEMORY_TARGET}: {verdict(m_ratio, MEMORY_TARGET)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query and engine")
    parser.add_argument("--queries", default=None, help="comma list, e.g. 1,6 (default: all)")
    args = parser.parse_args()

    queries = parse_queries(args.queries)
    generate(args.sf)
    load_s = load_warehouse(args.sf)
    # Nothing but the load has run in this process yet: its peak RSS is the load's.
    load_peak = peak_rss_bytes()
    if load_s:
        print(f"load: {sum(load_s.values()):.0f}s, peak RSS {mib(load_peak)}")
    load_before = warn_if_busy("before the run")
    with tempfile.TemporaryDirectory(prefix="tpch-bench-") as tmp:
        raw = run(args.sf, queries, args.repeat, Path(tmp))
    load_after = warn_if_busy("after the run")

    summary = summarize(queries, raw)
    print_table(summary)
    errors, mismatches = raw["errors"], raw["mismatches"]
    path = write_result(
        f"tpch-sf{sf_label(args.sf)}",
        {
            "sf": args.sf,
            "repeat": args.repeat,
            "targets": {"time_ratio": TIME_TARGET, "memory_ratio": MEMORY_TARGET},
            "results_match": not mismatches and not errors,
            "mismatches": mismatches,
            "errors": errors,
            "load_average": {"before": load_before, "after": load_after},
            "warehouse_load": {"seconds": load_s, "driver_peak_rss_bytes": load_peak},
            **summary,
        },
    )
    print(f"wrote {path}")
    for label, message in {**errors, **mismatches}.items():
        print(f"{'ERROR' if label in errors else 'MISMATCH'} {label}: {message}")
    if mismatches or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
