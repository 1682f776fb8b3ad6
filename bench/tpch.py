"""TPC-H: the lakehouse SQL API versus DuckDB over the same data as plain parquet.

Usage: python bench/tpch.py --sf 1 [--repeat 5] [--queries 1,6] [--rounds 2]

Baseline: a fresh in-memory DuckDB with views silver.<table> over the generated parquet.
Candidate: Lakehouse(warehouse).sql(q).to_arrow() over the same data loaded into Delta.

Every engine runs in its own child process (`--worker ENGINE`), which times the whole
query set and reports its own peak RSS, so the two engines' memory never mixes and
neither pays for the other's caches. The children run one after another in ABAB order
(`--rounds 2`) so slow drift of the machine (thermal, page cache, noisy neighbours)
hits both engines alike; each query's figure is the median over all timed runs.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
from benchlib import median, mib, ratio, verdict, write_result
from tpch_data import TABLES, data_dir, generate, manifest, sf_label, table_files, table_reader

QUERY_DIR = Path(__file__).resolve().parent / "tpch_queries"
ENGINES = ("duckdb", "lakehouse")
TIME_TARGET = 1.1
MEMORY_TARGET = 1.5
REL_TOL = 1e-6
WORKER_TIMEOUT_S = 900

Runner = Callable[[str], pa.Table]


def warehouse_dir(sf: float) -> Path:
    return data_dir(sf).with_name(f"tpch-sf{sf_label(sf)}-warehouse")


def query_sql(n: int) -> str:
    return (QUERY_DIR / f"q{n:02d}.sql").read_text()


# --- loading the candidate's warehouse -------------------------------------------------


def _count(lh: Any, table: str) -> int | None:
    try:
        result = lh.sql(f"SELECT count(*) AS n FROM silver.{table}").to_arrow()
        return int(result.column(0)[0].as_py())
    except Exception:  # missing or unreadable table: (re)load it
        return None


def load_warehouse(sf: float) -> Path:
    """Load every TPC-H table into Delta once; tables already at the right count are kept."""
    from lakehouse import Lakehouse

    folder = data_dir(sf)
    expected = manifest(folder) or {}
    target = warehouse_dir(sf)
    lh = Lakehouse(target)
    for table in TABLES:
        if _count(lh, table) == expected.get(table):
            continue
        started = time.perf_counter()
        # A RecordBatchReader streams the parquet batch by batch: SF10 lineitem is 60M rows.
        lh.write(f"silver.{table}", table_reader(folder, table), mode="overwrite")
        rows = _count(lh, table)
        took = time.perf_counter() - started
        print(f"loaded silver.{table}: {rows:,} rows in {took:.1f}s", flush=True)
        if rows != expected.get(table):
            raise SystemExit(f"silver.{table} has {rows} rows after load, want {expected[table]}")
    return target


# --- the child process that times one engine -------------------------------------------


def duckdb_runner(sf: float) -> Runner:
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA silver")
    folder = data_dir(sf)
    for table in TABLES:
        files = ", ".join(f"'{f}'" for f in table_files(folder, table))
        con.execute(f"CREATE VIEW silver.{table} AS SELECT * FROM read_parquet([{files}])")
    return lambda sql: con.sql(sql).to_arrow_table()


def lakehouse_runner(sf: float) -> Runner:
    from lakehouse import Lakehouse

    lh = Lakehouse(warehouse_dir(sf))
    return lambda sql: lh.sql(sql).to_arrow()


def peak_rss_bytes() -> int:
    """This process's own peak RSS.

    VmHWM belongs to the address space, which exec replaces. ru_maxrss is not used on
    Linux because a child inherits the parent's high-water mark across fork and exec,
    so every worker would report at least the parent's peak (the warehouse load).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run_worker(args: argparse.Namespace) -> None:
    """Warm up once per query (keeping that result for the check), then time `repeat` passes."""
    out = Path(args.out)
    queries = parse_queries(args.queries)
    started = time.perf_counter()
    run = duckdb_runner(args.sf) if args.worker == "duckdb" else lakehouse_runner(args.sf)
    setup_s = time.perf_counter() - started
    errors: dict[int, str] = {}
    for q in queries:
        try:
            result = run(query_sql(q))
        except Exception as exc:  # report and carry on: one broken query shouldn't hide the rest
            errors[q] = f"{type(exc).__name__}: {exc}"
            continue
        if args.save_results:
            with ipc.new_file(out / f"{args.worker}-q{q:02d}.arrow", result.schema) as sink:
                sink.write_table(result)
    samples: dict[int, list[float]] = {q: [] for q in queries if q not in errors}
    # Whole passes over the query set, so a noisy second hurts one sample per query at most.
    for _ in range(args.repeat):
        for q in samples:
            sql = query_sql(q)
            t0 = time.perf_counter()
            run(sql)
            samples[q].append(time.perf_counter() - t0)
    report = {
        "engine": args.worker,
        "setup_s": setup_s,
        "samples": samples,
        "errors": errors,
        "peak_rss_bytes": peak_rss_bytes(),
    }
    (out / f"{args.worker}-round{args.round}.json").write_text(json.dumps(report))


def spawn_worker(engine: str, args: argparse.Namespace, out: Path, rnd: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        engine,
        "--sf",
        sf_label(args.sf),
        "--repeat",
        str(args.repeat),
        "--queries",
        ",".join(map(str, parse_queries(args.queries))),
        "--out",
        str(out),
        "--round",
        str(rnd),
    ]
    if rnd == 0:
        cmd.append("--save-results")
    print(f"round {rnd + 1}: {engine} ...", flush=True)
    proc = subprocess.run(cmd, timeout=WORKER_TIMEOUT_S)
    report_path = out / f"{engine}-round{rnd}.json"
    if proc.returncode != 0 or not report_path.exists():
        raise SystemExit(f"{engine} worker failed with exit code {proc.returncode}")
    report = json.loads(report_path.read_text())
    report["samples"] = {int(q): s for q, s in report["samples"].items()}
    report["errors"] = {int(q): e for q, e in report["errors"].items()}
    return report


# --- checking that both engines return the same rows -----------------------------------


def _same_value(a: Any, b: Any) -> bool:
    numeric = (int, float, Decimal)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool):
        fa, fb = float(a), float(b)
        return math.isclose(fa, fb, rel_tol=REL_TOL, abs_tol=1e-9) or (
            math.isnan(fa) and math.isnan(fb)
        )
    if isinstance(a, datetime | date) and isinstance(b, datetime | date):
        return type(a) is type(b) and a == b
    return a == b


def compare(expected: pa.Table, actual: pa.Table) -> str | None:
    """None when equal row by row in returned order, else a short description."""
    if expected.column_names != actual.column_names:
        return f"columns {expected.column_names} != {actual.column_names}"
    if expected.num_rows != actual.num_rows:
        return f"{expected.num_rows} rows != {actual.num_rows} rows"
    for i, (want, got) in enumerate(zip(expected.to_pylist(), actual.to_pylist(), strict=True)):
        bad = [c for c in want if not _same_value(want[c], got[c])]
        if bad:
            diffs = ", ".join(f"{c}: duckdb {want[c]!r} != lakehouse {got[c]!r}" for c in bad)
            return f"row {i}: {diffs}"
    return None


def check_results(out: Path, queries: list[int]) -> dict[int, str]:
    mismatches: dict[int, str] = {}
    for q in queries:
        paths = [out / f"{e}-q{q:02d}.arrow" for e in ENGINES]
        if not all(p.exists() for p in paths):
            continue  # an engine errored on this query; reported separately
        want, got = (ipc.open_file(p).read_all() for p in paths)
        problem = compare(want, got)
        if problem:
            mismatches[q] = problem
    return mismatches


# --- driver ------------------------------------------------------------------------------


def parse_queries(text: str | None) -> list[int]:
    if not text:
        return list(range(1, 23))
    queries = sorted({int(part) for part in text.split(",") if part.strip()})
    if any(not 1 <= q <= 22 for q in queries):
        raise SystemExit("queries must be between 1 and 22")
    return queries


def summarize(args: argparse.Namespace, reports: dict[str, list[dict[str, Any]]]) -> dict:
    queries = parse_queries(args.queries)
    rows = []
    for q in queries:
        row: dict[str, Any] = {"query": q}
        for engine in ENGINES:
            samples = [s for r in reports[engine] for s in r["samples"].get(q, [])]
            row[f"{engine}_median_s"] = median(samples)
            row[f"{engine}_samples_s"] = samples
        row["ratio"] = ratio(row["lakehouse_median_s"], row["duckdb_median_s"])
        rows.append(row)
    total = {e: sum(r[f"{e}_median_s"] for r in rows) for e in ENGINES}
    peak = {e: max(r["peak_rss_bytes"] for r in reports[e]) for e in ENGINES}
    return {
        "queries": rows,
        "total_median_s": total,
        "time_ratio": ratio(total["lakehouse"], total["duckdb"]),
        "peak_rss_bytes": peak,
        "memory_ratio": ratio(peak["lakehouse"], peak["duckdb"]),
        "setup_s": {e: [r["setup_s"] for r in reports[e]] for e in ENGINES},
    }


def print_table(summary: dict) -> None:
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
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per round")
    parser.add_argument("--queries", default=None, help="comma list, e.g. 1,6 (default: all)")
    parser.add_argument("--rounds", type=int, default=2, help="ABAB rounds of both engines")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--save-results", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return

    queries = parse_queries(args.queries)
    generate(args.sf)
    load_warehouse(args.sf)
    reports: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    with tempfile.TemporaryDirectory(prefix="tpch-bench-") as tmp:
        out = Path(tmp)
        for rnd in range(args.rounds):
            for engine in ENGINES:
                reports[engine].append(spawn_worker(engine, args, out, rnd))
        mismatches = check_results(out, queries)
    errors = {f"{e}:Q{q:02d}": msg for e in ENGINES for q, msg in reports[e][0]["errors"].items()}

    summary = summarize(args, reports)
    print_table(summary)
    name = f"tpch-sf{sf_label(args.sf)}"
    path = write_result(
        name,
        {
            "sf": args.sf,
            "repeat": args.repeat,
            "rounds": args.rounds,
            "targets": {"time_ratio": TIME_TARGET, "memory_ratio": MEMORY_TARGET},
            "results_match": not mismatches and not errors,
            "mismatches": {f"Q{q:02d}": m for q, m in mismatches.items()},
            "errors": errors,
            **summary,
        },
    )
    print(f"wrote {path}")
    for label, msg in errors.items():
        print(f"ERROR {label}: {msg}")
    for q, msg in mismatches.items():
        print(f"MISMATCH Q{q:02d}: {msg}")
    if mismatches or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
