"""TPC-H: the lakehouse SQL API versus DuckDB over the same data as plain parquet, per layer.

Usage: python bench/tpch.py --sf 1 [--repeat 5] [--queries 1,6] [--layers bronze,silver]

For each layer (bronze, silver, gold) the TPC-H tables are written with ``Lakehouse.write``
and that layer's defaults (bronze: snappy, partitioned by ingestion day, with the metadata
columns; silver and gold: zstd). Baseline: a fresh in-memory DuckDB with views
``<layer>.<table>`` over a raw parquet copy of those tables written by DuckDB (the same
rows and columns, the same codec and level). Candidate: ``Lakehouse(warehouse).sql(q)``.

Each engine lives in its own worker process (bench/tpch_worker.py), so its peak RSS is
its own. The driver alternates the two query by query, swapping which engine goes first
on every pass: a burst of load from elsewhere on the machine then lands on both engines
instead of on whichever ran during it. Each query's figure is the median of --repeat
timed runs after one warm-up run, whose result is also the one compared row by row.
The fixed cost of a query is measured last: a trivial statement run many times by each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from benchlib import median, mib, peak_rss_bytes, ratio, verdict, warn_if_busy, write_result
from tpch_compare import compare
from tpch_data import TABLES, data_dir, generate, manifest, sf_label, table_arrow, table_reader
from tpch_worker import ENGINES, Worker, raw_dir, result_path, trivial_sql, warehouse_dir

LAYERS = ("bronze", "silver", "gold")
TIME_TARGET = 1.0
MEMORY_TARGET = 1.5
REQUEST_TIMEOUT_S = 600
WHOLE_TABLE_ROWS = 10_000_000  # larger tables are written as a stream of batches
FIXED_RUNS = 200  # trivial statements per measurement of the fixed cost
FIXED_ROUNDS = 5


def parse_queries(text: str | None) -> list[int]:
    if not text:
        return list(range(1, 23))
    queries = sorted({int(part) for part in text.split(",") if part.strip()})
    if any(not 1 <= q <= 22 for q in queries):
        raise SystemExit("queries must be between 1 and 22")
    return queries


def parse_layers(text: str | None) -> list[str]:
    layers = [part.strip() for part in (text or ",".join(LAYERS)).split(",") if part.strip()]
    if not layers or any(layer not in LAYERS for layer in layers):
        raise SystemExit(f"layers must be among {', '.join(LAYERS)}")
    return layers


def _count(lh: Any, name: str) -> int:
    return int(lh.sql(f"SELECT count(*) AS n FROM {name}").to_arrow().column(0)[0].as_py())


def load_layer(sf: float, layer: str, reload: bool) -> dict[str, float]:
    """Write every TPC-H table into ``layer`` once (tables already at the right count are
    kept unless ``reload``), then the baseline's raw copy of each table loaded now or
    missing. Returns the seconds each (re)loaded table took."""
    from lakehouse import Lakehouse

    folder = data_dir(sf)
    expected = manifest(folder) or {}
    lh = Lakehouse(warehouse_dir(sf))
    took: dict[str, float] = {}
    # The catalog's row counts make the "already loaded" check free of table scans.
    loaded = {info.name: getattr(info, "row_count", None) for info in lh.tables()}
    raw = raw_dir(sf, layer)
    raw.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        name = f"{layer}.{table}"
        target = raw / f"{table}.parquet"
        if reload or loaded.get(name) != expected.get(table):
            started = time.perf_counter()
            # What a user holding the data writes: one Arrow table, or a RecordBatchReader
            # (batch by batch, bounded memory) for SF10's 60M lineitem rows.
            big = expected[table] > WHOLE_TABLE_ROWS
            data = table_reader(folder, table) if big else table_arrow(folder, table)
            lh.write(name, data, mode="overwrite")
            del data
            rows = _count(lh, name)
            took[table] = time.perf_counter() - started
            print(f"loaded {name}: {rows:,} rows in {took[table]:.1f}s", flush=True)
            if rows != expected.get(table):
                raise SystemExit(f"{name} has {rows} rows after load, want {expected[table]}")
            target.unlink(missing_ok=True)
        if not target.exists():
            write_raw(lh, name, target)
    return took


def write_raw(lh: Any, name: str, target: Path) -> None:
    """The table's rows and columns as one parquet file written by DuckDB with the table's
    own codec (and zstd's level 1, as delta-rs writes it): the baseline reads that."""
    info = lh.catalog.get(name)
    codec = (info.options.get("compression") if info else None) or "zstd"
    level = ", COMPRESSION_LEVEL 1" if codec.lower() == "zstd" else ""
    partial = target.with_suffix(".partial")
    text, _ = lh.engine.prepare(
        f"COPY (SELECT * FROM {name}) TO '{partial}' (FORMAT parquet, COMPRESSION {codec}{level})"
    )
    lh.engine.cursor().execute(text)
    partial.rename(target)
    print(f"raw copy of {name}: {pq.ParquetFile(target).metadata.num_rows:,} rows ({codec})")


def run(sf: float, layer: str, queries: list[int], repeat: int, out: Path) -> dict[str, Any]:
    """Warm up, check and time every query on both engines; return the raw measurements."""
    workers: dict[str, Worker] = {}
    try:
        for engine in ENGINES:
            workers[engine] = Worker(engine, sf, layer, out, REQUEST_TIMEOUT_S)
        errors: dict[str, str] = {}
        for q in queries:
            for engine, worker in workers.items():
                answer = worker.request(f"warm {q}")
                if not answer["ok"]:
                    errors[f"{engine}:Q{q:02d}"] = answer["error"]
        timed = [q for q in queries if not any(k.endswith(f"Q{q:02d}") for k in errors)]
        samples: dict[str, dict[int, list[float]]] = {e: {q: [] for q in timed} for e in ENGINES}
        for i in range(repeat):
            print(f"{layer}: pass {i + 1}/{repeat}", flush=True)
            order = ENGINES if i % 2 == 0 else ENGINES[::-1]
            for q in timed:
                for engine in order:
                    samples[engine][q].append(workers[engine].request(f"time {q}")["s"])
        fixed: dict[str, list[float]] = {e: [] for e in ENGINES}
        for i in range(FIXED_ROUNDS):
            for engine in ENGINES if i % 2 == 0 else ENGINES[::-1]:
                fixed[engine].append(workers[engine].request(f"fixed {FIXED_RUNS}")["s"])
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
        "fixed": fixed,
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
    fixed = {e: median(raw["fixed"][e]) for e in ENGINES}
    return {
        "queries": rows,
        "total_median_s": total,
        "time_ratio": ratio(total["lakehouse"], total["duckdb"]),
        "peak_rss_bytes": peak,
        "memory_ratio": ratio(peak["lakehouse"], peak["duckdb"]),
        "fixed_cost_s": fixed,
        "fixed_cost_samples_s": raw["fixed"],
        "fixed_cost_sql": raw["fixed_sql"],
        "setup_s": raw["setup_s"],
        "results_match": not raw["mismatches"] and not raw["errors"],
        "mismatches": raw["mismatches"],
        "errors": raw["errors"],
    }


def print_layer(layer: str, summary: dict[str, Any]) -> None:
    print(f"\n{layer}\n{'query':>5}  {'duckdb s':>9}  {'lakehouse s':>11}  {'ratio':>6}")
    for row in summary["queries"]:
        print(
            f"Q{row['query']:02d}".rjust(5),
            f"{row['duckdb_median_s']:9.3f}",
            f"{row['lakehouse_median_s']:11.3f}",
            f"{row['ratio']:6.2f}",
            sep="  ",
        )
    total = summary["total_median_s"]
    print(f"{'total':>5}  {total['duckdb']:9.3f}  {total['lakehouse']:11.3f}")


def print_summary(summaries: dict[str, dict[str, Any]]) -> None:
    print(
        f"\n{'layer':<7} {'duckdb s':>9} {'lakehouse s':>11} {'ratio':>6} {'target':>14}"
        f" {'same':>6} {'RSS duckdb':>11} {'RSS lh':>9} {'fixed duckdb':>13} {'fixed lh':>9}"
    )
    for layer, s in summaries.items():
        total, peak, fixed = s["total_median_s"], s["peak_rss_bytes"], s["fixed_cost_s"]
        failed = set(s["mismatches"]) | {k.split(":")[1] for k in s["errors"]}
        same = f"{len(s['queries']) - len(failed)}/{len(s['queries'])}"
        target = f"<= {TIME_TARGET}: {verdict(s['time_ratio'], TIME_TARGET)}"
        print(
            f"{layer:<7} {total['duckdb']:9.3f} {total['lakehouse']:11.3f}"
            f" {s['time_ratio']:6.2f} {target:>14} {same:>6}"
            f" {mib(peak['duckdb']):>11} {mib(peak['lakehouse']):>9}"
            f" {fixed['duckdb'] * 1e3:10.2f} ms {fixed['lakehouse'] * 1e3:6.2f} ms"
        )
    print(f"peak RSS ratio target <= {MEMORY_TARGET}; fixed cost: {trivial_sql('<layer>')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query and engine")
    parser.add_argument("--queries", default=None, help="comma list, e.g. 1,6 (default: all)")
    parser.add_argument("--layers", default=None, help="comma list (default: bronze,silver,gold)")
    parser.add_argument("--reload", action="store_true", help="write every table again")
    args = parser.parse_args()

    queries = parse_queries(args.queries)
    layers = parse_layers(args.layers)
    generate(args.sf)
    load_s = {layer: load_layer(args.sf, layer, args.reload) for layer in layers}
    # Nothing but the load has run in this process yet: its peak RSS is the load's.
    load_peak = peak_rss_bytes()
    if any(load_s.values()):
        print(f"load: {sum(sum(s.values()) for s in load_s.values()):.0f}s, peak {mib(load_peak)}")
    load_before = warn_if_busy("before the run")
    summaries: dict[str, dict[str, Any]] = {}
    for layer in layers:
        with tempfile.TemporaryDirectory(prefix="tpch-bench-") as tmp:
            raw = run(args.sf, layer, queries, args.repeat, Path(tmp))
        raw["fixed_sql"] = trivial_sql(layer)
        summaries[layer] = summarize(queries, raw)
        print_layer(layer, summaries[layer])
    load_after = warn_if_busy("after the run")
    print_summary(summaries)

    problems = {
        f"{layer} {label}": (kind, message)
        for layer, s in summaries.items()
        for kind in ("errors", "mismatches")
        for label, message in s[kind].items()
    }
    path = write_result(
        f"tpch-sf{sf_label(args.sf)}",
        {
            "sf": args.sf,
            "repeat": args.repeat,
            "targets": {"time_ratio": TIME_TARGET, "memory_ratio": MEMORY_TARGET},
            "results_match": not problems,
            "load_average": {"before": load_before, "after": load_after},
            "warehouse_load": {"seconds": load_s, "driver_peak_rss_bytes": load_peak},
            "layers": summaries,
        },
    )
    print(f"wrote {path}")
    for label, (kind, message) in problems.items():
        print(f"{'ERROR' if kind == 'errors' else 'MISMATCH'} {label}: {message}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
