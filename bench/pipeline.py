"""The demo pipeline at scale against DuckDB running the same transformations as plain SQL.

Sources: ``--events`` app events (default 10 million) and the other three sources in the
demo's proportions, as parquet files (4 drops each) in ``bench/data/pipeline-<N>/landing``.

- Baseline: one DuckDB connection runs every dataset of ``pipelines/demo`` as plain SQL over
  the parquet sources (bronze with the same metadata columns, the same SELECTs, the same
  expectation filters, de-duplication and CDC apply), writing each result as parquet.
- Lakehouse: ``run_pipeline`` into a fresh warehouse (Delta tables, catalog, run records).
- Incremental: one more drop of 1% new data per source, and a second run.

Prints both times and the ratios (targets: full run at most 2x the baseline and under 60 s;
incremental run at most 5% of the full run) and writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import duckdb

from benchlib import BENCH_DIR, ratio, verdict, warn_if_busy, write_result

ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "src"))

from lakehouse import Lakehouse  # noqa: E402
from lakehouse.demo.landing import add_drop, write_sources  # noqa: E402
from lakehouse.pipeline import (  # noqa: E402
    cdc,  # noqa: E402
    load_pipeline,
    run_pipeline,
)
from lakehouse.pipeline.plan import validate  # noqa: E402
from lakehouse.pipeline.quality import flag_columns, q, with_flags  # noqa: E402

DEMO = ROOT / "pipelines" / "demo"


def sources(events: int) -> Path:
    folder = BENCH_DIR / "data" / f"pipeline-{events}" / "landing"
    marker = folder / "_generated.json"
    if marker.exists():
        made = json.loads(marker.read_text())
        if len(made["drops"]) == made["parameters"]["drops"]:  # no drop added since
            return folder
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    write_sources(folder, events=events, drops=4, formats="parquet")
    print(f"generated sources in {time.perf_counter() - started:.1f} s: {folder}", flush=True)
    return folder


def baseline(landing: Path, out: Path) -> float:
    """Every dataset of the demo pipeline as plain DuckDB SQL over parquet."""
    pipeline = load_pipeline(DEMO, {"landing": str(landing)})
    plan = validate(pipeline, Lakehouse(out / "_validate"), bind=False)
    shutil.rmtree(out / "_validate", ignore_errors=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for layer in ("bronze", "silver", "gold"):
        con.execute(f"CREATE SCHEMA {layer}")
    started = time.perf_counter()
    for name in plan.order:
        ds = pipeline.datasets[name]
        layer, table = name.split(".")
        target = f'{layer}."{table}"'
        if ds.kind == "files":
            files = f"'{landing / table}/*.parquet'"
            raw = con.sql(f"SELECT * FROM read_parquet({files}) LIMIT 0").columns
            cols = ", ".join(q(c) for c in raw)
            con.execute(
                f"CREATE TABLE {target} AS SELECT *, now() AS _ingested_at, "
                f"CAST(now() AS DATE) AS _ingest_date, '{ds.source_system}' AS _source_system, "
                f"filename AS _source, md5(to_json(struct_pack({cols}))) AS _record_hash "
                f"FROM read_parquet({files}, filename = true)"
            )
            con.execute(f"ALTER TABLE {target} DROP COLUMN filename")
        else:
            assert ds.sql is not None
            flags = flag_columns(ds.expectations)
            keep = [c for e, c in flags if e.action in ("drop", "quarantine")]
            quarantine = [c for e, c in flags if e.action == "quarantine"]
            con.execute(f"CREATE TEMP TABLE flagged AS {with_flags(ds.sql, ds.expectations)}")
            plain = [c for c in con.sql("SELECT * FROM flagged LIMIT 0").columns]
            plain = [c for c in plain if not c.startswith("__lh_ok_")]
            select = ", ".join(q(c) for c in plain)
            good = " AND ".join(keep) or "true"
            rows = f"(SELECT {select} FROM flagged WHERE {good})"
            if quarantine:
                bad = " OR ".join(f"NOT {c}" for c in quarantine)
                con.execute(
                    f'CREATE TABLE {layer}."{table}_quarantine" AS '
                    f"SELECT {select} FROM flagged WHERE {bad}"
                )
            if ds.kind == "cdc":
                body = cdc.latest_state(ds, rows, False) if ds.scd == 1 else cdc.history(ds, rows)
            elif ds.kind == "append" and ds.keys:
                keys = ", ".join(q(k) for k in ds.keys)
                body = (
                    f"SELECT * FROM {rows} QUALIFY row_number() OVER (PARTITION BY {keys} "
                    f"ORDER BY {keys}) = 1"
                )
            else:
                body = f"SELECT * FROM {rows}"
            con.execute(f"CREATE TABLE {target} AS {body}")
            con.execute("DROP TABLE flagged")
        folder = out / layer
        folder.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY {target} TO '{folder / table}.parquet' (FORMAT parquet, COMPRESSION zstd)"
        )
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()
    landing = sources(args.events)
    work = BENCH_DIR / "data" / f"pipeline-{args.events}"
    for folder in ("baseline", "warehouse"):
        shutil.rmtree(work / folder, ignore_errors=True)
    warn_if_busy("before the baseline")
    base = baseline(landing, work / "baseline")
    print(f"DuckDB plain SQL over parquet: {base:.2f} s", flush=True)

    warn_if_busy("before the full run")
    pipeline = load_pipeline(DEMO, {"landing": str(landing)})
    lh = Lakehouse(work / "warehouse")
    started = time.perf_counter()
    report = run_pipeline(lh, pipeline)
    full = time.perf_counter() - started
    rows = {d.dataset: d.rows_written for d in report.datasets}
    print(f"lakehouse run (full): {full:.2f} s", flush=True)
    for d in report.datasets:
        print(f"  {d.dataset:<32} {d.seconds:6.2f} s  {d.rows_written:>12,} rows  {d.strategy}")

    added = add_drop(landing, fraction=0.01)
    warn_if_busy("before the incremental run")
    started = time.perf_counter()
    second = run_pipeline(lh, load_pipeline(DEMO, {"landing": str(landing)}))
    incremental = time.perf_counter() - started
    print(f"lakehouse run (1% new): {incremental:.2f} s", flush=True)
    for d in second.datasets:
        print(f"  {d.dataset:<32} {d.seconds:6.2f} s  {d.rows_written:>12,} rows  {d.strategy}")

    full_ratio = ratio(full, base)
    inc_share = ratio(incremental, full)
    print()
    print(f"full run / DuckDB baseline: {full_ratio:.2f}  (target <= 2: {verdict(full_ratio, 2)})")
    print(f"full run: {full:.1f} s  (target < 60 s: {verdict(full, 60.0)})")
    print(f"incremental / full run: {inc_share:.3f}  (target <= 0.05: {verdict(inc_share, 0.05)})")
    path = write_result(
        "pipeline",
        {
            "events": args.events,
            "baseline_seconds": round(base, 3),
            "full_seconds": round(full, 3),
            "incremental_seconds": round(incremental, 3),
            "full_over_baseline": round(full_ratio, 3),
            "incremental_over_full": round(inc_share, 4),
            "rows_written": rows,
            "incremental_files": {k: [str(p) for p in v] for k, v in added.items()},
            "datasets_full": {d.dataset: round(d.seconds, 3) for d in report.datasets},
            "datasets_incremental": {d.dataset: round(d.seconds, 3) for d in second.datasets},
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
