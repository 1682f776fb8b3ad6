"""The serving store: mirror refresh time against ClickHouse reading the same files, and
the live platform dashboard served from it.

Usage: python bench/serving.py [--rows 10000000] [--repeat 3] [--rate 2000] [--seconds 60]
       [--part refresh|live|all]

Refresh: a gold table of ``--rows`` rows (written with ``Lakehouse.write``, the gold
layer's defaults) is mirrored into the embedded store (chDB) by ``Serving.refresh``
after each new version; the baseline is the same chDB session creating a table of the
same columns and reading the version's parquet files itself
(``INSERT INTO ... SELECT * FROM file(...)``), the fastest way ClickHouse has to take
them. The two alternate, the median of ``--repeat`` of each is compared. The demo's gold
tables are then mirrored from scratch after a demo run, and the time of that whole
refresh is reported (target: under 1 s).

Live (``--part live``): the demo warehouse, the local broker, ``lakehouse stream
--realtime`` and ``lakehouse serve`` with its default worker processes (whose main
process owns the serving store), with the repository's platform dashboard and a
dashboard of one panel listing probe events from ``realtime.events_per_minute``.
- Latency: ``--rate`` user events a second for ``--seconds``, among them a probe event of
  its own type every 100 ms; a probe is visible when the probe panel's JSON
  (``GET /dashboards/probes/panels/probes``, polled every 50 ms, answered by the serving
  store) lists it. Target: p95 <= 2 s.
- The whole platform dashboard (every panel's JSON, fetched at once as the page does,
  with ``Cache-Control: no-cache``: no answer kept from a moment ago is given) answered
  by the default server (and by a server of two worker processes), 50 times: p50
  (target <= 50 ms); beside it, in this process, the same panels' SQL through the
  serving store and through the DuckDB engine over the Delta tables (uncached), summed
  per dashboard.
- 50 clients (wrk) fetching the platform dashboard's panels for 60 s: errors and p99
  (targets: 0, <= 250 ms), against ``lakehouse serve`` with its default worker processes
  (one per core but one) and with two.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchlib import BENCH_DIR, median, ratio, verdict, warn_if_busy, write_result

SCRATCH = BENCH_DIR / "data" / "serving-bench"
TARGET = 1.5


def gold_table(rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    days = pa.array(rng.integers(19_000, 19_400, rows).astype("int32")).cast(pa.date32())
    pages = np.array([f"/page/{i}" for i in range(200)])
    return pa.table(
        {
            "day": days,
            "user_id": rng.integers(0, 1_000_000, rows),
            "page": pa.array(pages[rng.integers(0, 200, rows)]),
            "purchases": rng.integers(0, 5, rows),
            "revenue": rng.random(rows) * 100,
        }
    )


def bench_refresh(rows: int, repeat: int) -> dict[str, object]:
    from lakehouse import Lakehouse
    from lakehouse.serving.store import string_literal
    from lakehouse.serving.types import structure

    shutil.rmtree(SCRATCH, ignore_errors=True)
    lh = Lakehouse(SCRATCH / "warehouse")
    data = gold_table(rows)
    lh.write("gold.big", data)
    serving = lh.serving
    ours: list[float] = []
    theirs: list[float] = []
    with serving.owning() as store:  # one chDB session for both sides
        for i in range(repeat):
            lh.write("gold.big", data.slice(0, 1), mode="append")  # a new version to mirror
            started = time.perf_counter()
            done = serving.refresh("gold.big")
            ours.append(time.perf_counter() - started)
            assert done and done[0]["rows"] == rows + i + 1, done

            snap = lh.engine.snapshot("gold.big")
            files = "{" + ",".join(Path(f.path).name for f in snap.files) + "}"
            pattern = string_literal(str(Path(lh.table("gold.big").location) / files))
            columns = structure(snap.schema)
            store.command("DROP TABLE IF EXISTS gold.baseline SYNC")
            started = time.perf_counter()
            store.command(
                f"CREATE TABLE gold.baseline ({columns}) ENGINE = MergeTree ORDER BY tuple()"
            )
            store.command(f"INSERT INTO gold.baseline SELECT * FROM file({pattern}, 'Parquet')")
            theirs.append(time.perf_counter() - started)
            store.command("DROP TABLE gold.baseline SYNC")
    return {"rows": rows, "refresh_s": ours, "clickhouse_reads_files_s": theirs}


def bench_demo_refresh() -> dict[str, object]:
    """The demo built from scratch, then every mirror made: the time of that refresh."""
    from lakehouse import Lakehouse

    warehouse = SCRATCH / "demo"
    shutil.rmtree(warehouse, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), "demo"],
        check=True,
        capture_output=True,
        cwd=BENCH_DIR.parent,
    )
    lh = Lakehouse(warehouse)
    serving = lh.serving
    try:
        started = time.perf_counter()
        done = serving.refresh()
        seconds = time.perf_counter() - started
    finally:
        serving.close()
    return {"tables": len(done), "seconds": seconds, "rows": sum(d["rows"] for d in done)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2000.0, help="live: events a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="live: how long")
    parser.add_argument("--part", choices=["refresh", "live", "all"], default="all")
    args = parser.parse_args()
    load = warn_if_busy("serving")
    result: dict[str, object] = {"load_before": load}
    if args.part in ("live", "all"):
        from serving_live import bench_live

        result["live"] = bench_live(SCRATCH / "live", args.rate, args.seconds)
    if args.part == "live":
        write_result("serving-live", result)
        return
    refresh = bench_refresh(args.rows, args.repeat)
    ours = median(refresh["refresh_s"])  # type: ignore[arg-type]
    theirs = median(refresh["clickhouse_reads_files_s"])  # type: ignore[arg-type]
    r = ratio(ours, theirs)
    print(f"mirror refresh of {args.rows:,} rows: {ours:.2f} s")
    print(f"ClickHouse reading the same files: {theirs:.2f} s")
    print(f"ratio {r:.2f} (target <= {TARGET}: {verdict(r, TARGET)})")
    demo = bench_demo_refresh()
    demo_s = float(demo["seconds"])  # type: ignore[arg-type]
    print(
        f"the demo's {demo['tables']} mirrors ({demo['rows']:,} rows) from scratch: "
        f"{demo_s:.2f} s (target <= 1 s: {verdict(demo_s, 1.0)})"
    )
    result.update(refresh=refresh, ratio=r, demo_refresh=demo)
    write_result("serving", result)


if __name__ == "__main__":
    main()
