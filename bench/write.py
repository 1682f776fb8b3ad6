"""Write throughput: lh.write to a silver Delta table versus pyarrow.parquet.write_table.

Usage: python bench/write.py [--rows 6000000] [--repeat 5]

Both sides write the same in-memory Arrow table with zstd (the silver layer's codec), so
the ratio is the cost of the Delta layer: commit, statistics, schema handling. Each
repeat starts from an empty folder (a fresh warehouse for the lakehouse), and the two
writers alternate so drift of the machine hits both alike.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchlib import BENCH_DIR, median, ratio, verdict, warn_if_busy, write_result

TARGET = 1.2
SCRATCH = BENCH_DIR / "data" / "write-bench"
EVENT_TYPES = ["page_view", "click", "add_to_cart", "purchase", "login", "logout", "search"]
COUNTRIES = [f"C{i:02d}" for i in range(60)]


def event_table(rows: int, seed: int = 42) -> pa.Table:
    """A deterministic clickstream-like table: keys, time, low and high cardinality text."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    # Sorted offsets over 30 days: events arrive roughly in time order, as they would.
    offsets = np.sort(rng.integers(0, 30 * 86_400 * 10**6, rows, dtype=np.int64))
    ts = pa.array(start + offsets, type=pa.timestamp("us", tz="UTC"))
    user_ids = pa.array(rng.integers(0, 1_000_000, rows)).cast(pa.string())
    sessions = pa.array(rng.integers(0, 2**62, rows, dtype=np.int64)).cast(pa.string())
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "event_ts": ts,
            "event_type": pa.array(EVENT_TYPES).take(rng.integers(0, len(EVENT_TYPES), rows)),
            "country": pa.array(COUNTRIES).take(rng.integers(0, len(COUNTRIES), rows)),
            "user_id": pc.binary_join_element_wise("user-", user_ids, ""),
            "session_id": pc.binary_join_element_wise("s-", sessions, ""),
            "amount": pa.array(np.round(rng.lognormal(3.0, 1.0, rows), 2)),
            "event_date": pc.cast(ts, pa.date32()),
        }
    )


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


Write = Callable[[], None]


def parquet_writer(table: pa.Table, target: Path) -> Write:
    target.mkdir(parents=True)
    return lambda: pq.write_table(table, target / "part-0.parquet", compression="zstd")


def lakehouse_writer(table: pa.Table, target: Path) -> Write:
    from lakehouse import Lakehouse

    # Opening the fresh warehouse is setup, not writing: it stays outside the timer.
    lh = Lakehouse(target)
    return lambda: lh.write("silver.bench_write", table, mode="overwrite")


def timed(
    prepare: Callable[[pa.Table, Path], Write], table: pa.Table, target: Path
) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all threads) of one write.

    CPU time is reported next to wall time because it barely moves when other work
    competes for the cores, which wall time on a shared machine does a lot.
    """
    shutil.rmtree(target, ignore_errors=True)
    write = prepare(table, target)
    cpu, wall = time.process_time(), time.perf_counter()
    write()
    return time.perf_counter() - wall, time.process_time() - cpu


def check_delta(table: pa.Table, target: Path) -> None:
    """Read the last write back so a fast but wrong write cannot pass."""
    from lakehouse import Lakehouse

    got = Lakehouse(target).sql("SELECT count(*) AS n FROM silver.bench_write").to_arrow()
    rows = got.column(0)[0].as_py()
    if rows != table.num_rows:
        raise SystemExit(f"silver.bench_write has {rows} rows, want {table.num_rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    table = event_table(args.rows)
    print(f"table: {table.num_rows:,} rows, {table.nbytes / 2**20:,.0f} MiB in memory")
    writers: dict[str, Callable[[pa.Table, Path], Write]] = {
        "parquet": parquet_writer,
        "lakehouse": lakehouse_writer,
    }
    targets = {name: SCRATCH / name for name in writers}
    samples: dict[str, list[float]] = {name: [] for name in writers}
    cpu: dict[str, list[float]] = {name: [] for name in writers}
    load_before = warn_if_busy("before the run")
    # One untimed write each first: imports, allocator growth and first-touch page faults.
    for name, write in writers.items():
        timed(write, table, targets[name])
    for i in range(args.repeat):
        # Swap which writer goes first each repeat, so carry-over from the previous write
        # (page-cache writeback, allocator state) falls on both alike.
        order = list(writers) if i % 2 == 0 else list(writers)[::-1]
        for name in order:
            wall, cpu_s = timed(writers[name], table, targets[name])
            samples[name].append(wall)
            cpu[name].append(cpu_s)
    load_after = warn_if_busy("after the run")
    check_delta(table, targets["lakehouse"])
    sizes = {name: folder_bytes(path) for name, path in targets.items()}
    shutil.rmtree(SCRATCH, ignore_errors=True)

    medians = {name: median(s) for name, s in samples.items()}
    cpu_medians = {name: median(s) for name, s in cpu.items()}
    r = ratio(medians["lakehouse"], medians["parquet"])
    for name in writers:
        rate = args.rows / medians[name] / 1e6
        print(
            f"{name:>9}: median {medians[name]:6.3f}s  ({rate:5.2f} M rows/s,"
            f" CPU {cpu_medians[name]:6.3f}s,"
            f" {sizes[name] / 2**20:,.0f} MiB on disk)"
            f"  samples {[round(x, 3) for x in samples[name]]}"
        )
    print(f"ratio lakehouse/parquet: {r:.2f}   target <= {TARGET}: {verdict(r, TARGET)}")
    cpu_ratio = ratio(cpu_medians["lakehouse"], cpu_medians["parquet"])
    print(f"CPU time ratio (informative): {cpu_ratio:.2f}")
    path = write_result(
        "write",
        {
            "rows": args.rows,
            "repeat": args.repeat,
            "compression": "zstd",
            "target_ratio": TARGET,
            "median_s": medians,
            "samples_s": samples,
            "cpu_median_s": cpu_medians,
            "cpu_samples_s": cpu,
            "cpu_ratio": cpu_ratio,
            "bytes_on_disk": sizes,
            "ratio": r,
            "load_average": {"before": load_before, "after": load_after},
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
