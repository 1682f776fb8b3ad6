"""Maintenance: query time on a table shaped like the demo's silver events after many
small appends, before and after ``maintain``, against a freshly compacted copy.

Usage: python bench/ops_maintenance.py [--appends 500] [--rows 200] [--repeat 25]

``--appends`` appends of ``--rows`` rows each (as a stream or a pipeline run every few
minutes leaves them: one small file per append, partitioned by day) go into
``silver.events``; the same rows, written at once and compacted, into
``silver.events_fresh`` (the baseline). Three queries the demo's dashboards ask (counts by
type, distinct users per day, a filtered top list) run ``--repeat`` times each on both;
then ``service.maintenance.maintain`` runs with the default policy (compaction above 16
small files) and the queries run again. Target: after maintenance, the median query time
within 1.2x of the fresh copy's.
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
import pyarrow as pa
from lakehouse import Lakehouse
from lakehouse.service.maintenance import maintain

from benchlib import BENCH_DIR, median, ratio, verdict, warn_if_busy, write_result

SCRATCH = BENCH_DIR / "data" / "ops-maintenance"
TARGET = 1.2
TYPES = np.array(["view", "click", "add_to_cart", "purchase", "login", "logout"])
QUERIES = [
    "SELECT event_type, count(*) AS n FROM {t} GROUP BY 1 ORDER BY 2 DESC",
    "SELECT event_date, count(DISTINCT user_id) AS users FROM {t} GROUP BY 1 ORDER BY 1",
    "SELECT user_id, sum(amount) AS spent FROM {t} WHERE event_type = 'purchase' "
    "GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
]


def batch(n: int, rows: int) -> pa.Table:
    rng = np.random.default_rng(n)
    start = np.datetime64("2026-11-01T00:00:00") + np.timedelta64(n * 600, "s")
    ts = start + rng.integers(0, 600, rows).astype("timedelta64[s]")
    return pa.table(
        {
            "event_id": pa.array([f"e{n}-{i}" for i in range(rows)]),
            "user_id": rng.integers(1, 5000, rows),
            "event_type": TYPES[rng.integers(0, len(TYPES), rows)],
            "amount": np.round(rng.random(rows) * 100, 2),
            "event_ts": pa.array(ts.astype("datetime64[us]")),
            "event_date": pa.array(ts.astype("datetime64[D]")),
        }
    )


def _round(lh: Lakehouse, table: str) -> float:
    started = time.perf_counter()
    for sql in QUERIES:
        lh.sql(sql.format(t=table)).to_arrow()
    return time.perf_counter() - started


def query_times(lh: Lakehouse, tables: list[str], repeat: int) -> list[float]:
    """Per table, the median over ``repeat`` rounds of the three queries' summed time. The
    tables take turns within each round (a busy machine slows them alike), after one round
    not counted (the engine's view of the version, the files' footers cached)."""
    samples: dict[str, list[float]] = {t: [] for t in tables}
    for t in tables:
        _round(lh, t)
    for _ in range(repeat):
        for t in tables:
            samples[t].append(_round(lh, t))
    return [median(samples[t]) for t in tables]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the warehouse afterwards")
    args = parser.parse_args()
    load = warn_if_busy("maintenance")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    lh = Lakehouse(SCRATCH / "warehouse")
    started = time.perf_counter()
    batches = [batch(n, args.rows) for n in range(args.appends)]
    for b in batches:
        lh.write("silver.events", b, date_column="event_date")
    appended_s = time.perf_counter() - started
    lh.write("silver.events_fresh", pa.concat_tables(batches), date_column="event_date")
    lh.table("silver.events_fresh").optimize()
    files_before = len(lh.table("silver.events").files())
    files_fresh = len(lh.table("silver.events_fresh").files())
    print(f"{args.appends} appends of {args.rows} rows: {files_before} files ({appended_s:.1f} s)")

    fresh_then, before = query_times(lh, ["silver.events_fresh", "silver.events"], args.repeat)
    started = time.perf_counter()
    records = maintain(lh, "silver.events")
    maintain_s = time.perf_counter() - started
    fresh, after = query_times(lh, ["silver.events_fresh", "silver.events"], args.repeat)
    files_after = len(lh.table("silver.events").files())
    r = ratio(after, fresh)
    print(
        f"maintain: {', '.join(r['action'] for r in records)} in {maintain_s:.2f} s; "
        f"{files_before} files -> {files_after}"
    )
    print(
        f"queries on the fresh compacted copy ({files_fresh} files, the baseline): "
        f"{fresh * 1000:.1f} ms"
    )
    print(
        f"queries before maintenance: {before * 1000:.1f} ms "
        f"({ratio(before, fresh_then):.2f}x the fresh copy's {fresh_then * 1000:.1f} ms then)"
    )
    print(f"queries after maintenance: {after * 1000:.1f} ms")
    print(f"ratio {r:.2f} (target <= {TARGET}: {verdict(r, TARGET)})")
    write_result(
        "ops_maintenance",
        {
            "load_before": load,
            "appends": args.appends,
            "rows_per_append": args.rows,
            "files_before": files_before,
            "files_after": files_after,
            "files_fresh": files_fresh,
            "maintain_s": maintain_s,
            "fresh_s": fresh,
            "fresh_before_s": fresh_then,
            "before_s": before,
            "after_s": after,
            "ratio": r,
            "records": records,
        },
    )
    if not args.keep:
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
