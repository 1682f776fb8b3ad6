"""A PostgreSQL table into the lake: ``lakehouse ingest db --full`` vs dlt's sql_database
source into dlt's Delta destination vs a bare ``COPY ... TO STDOUT`` written to one
parquet file (the floor); then an incremental load after 1% new rows.

Usage: python bench/sources.py [--rows 10000000]

One throwaway server (Debian's PostgreSQL, as the tests start it) holds ``--rows`` rows
generated server-side (bigint id, timestamptz updated_at, text, double, numeric(12,2),
boolean). Each path reads the same table once; the figures are wall seconds and rows per
second. Writes bench/results/sources.json.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchlib import BENCH_DIR, load_average, ratio, warn_if_busy, write_result

ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from tests.postgres import postgres_server  # noqa: E402

SCRATCH = BENCH_DIR / "data" / "sources-bench"
TARGET_VS_DLT = 2.0  # ours at least twice dlt's rows/s
TARGET_VS_COPY = 0.5  # ours at least half the COPY path's rows/s
TARGET_INCREMENTAL = 0.05  # an incremental load of 1% new rows within 5% of the full load

COLUMNS = """g::bigint AS id,
    '2024-01-01'::timestamptz + g * interval '1 second' AS updated_at,
    'customer ' || (g % 100000) || ' ordered item ' || (g % 977) AS note,
    (g % 1000) * 1.25::double precision AS score,
    ((g % 100000) / 100.0)::numeric(12, 2) AS amount,
    g % 3 = 0 AS active"""
CREATE = f"CREATE TABLE big AS SELECT {COLUMNS} FROM generate_series(1, {{rows}}) g"
INSERT = f"INSERT INTO big SELECT {COLUMNS} FROM generate_series({{first}}, {{last}}) g"
ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("note", pa.string()),
        ("score", pa.float64()),
        ("amount", pa.decimal128(12, 2)),
        ("active", pa.bool_()),
    ]
)


def fill(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(CREATE.format(rows=rows))
        con.execute("ALTER TABLE big ADD PRIMARY KEY (id)")
        con.execute("CREATE INDEX big_updated_at ON big (updated_at)")
        con.execute("VACUUM ANALYZE big")


def lakehouse_cli(warehouse: Path, url: str, *args: str) -> float:
    """Wall seconds of ``lakehouse ingest db ARGS`` run as a user runs it."""
    env = {**os.environ, "LAKEHOUSE_SOURCE_URL": url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse.cli",
            "--warehouse",
            str(warehouse),
            "ingest",
            "db",
            *args,
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def ours_rows(warehouse: Path, table: str) -> int:
    from lakehouse import Lakehouse

    return int(Lakehouse(warehouse).sql(f"SELECT count(*) FROM {table}").rows()[0][0])


def in_process(warehouse: Path, url: str) -> tuple[float, float]:
    from lakehouse import Lakehouse
    from lakehouse.ingest import database, db_source

    lh = Lakehouse(warehouse)
    start = time.perf_counter()
    database.ingest_table(lh, url, "public.big", "bronze.big_again", full=True)
    whole = time.perf_counter() - start
    source = db_source.parse_source(url, "public.big")
    declared = db_source.columns(source)
    start = time.perf_counter()
    database._read(source, declared, None, None)
    return whole, time.perf_counter() - start


def incremental_in_process(warehouse: Path, url: str) -> float:
    from lakehouse import Lakehouse
    from lakehouse.ingest import database

    lh = Lakehouse(warehouse)
    start = time.perf_counter()
    database.ingest_table(lh, url, "public.big", "bronze.big_inc", incremental_column="updated_at")
    return time.perf_counter() - start


def dlt_load(url: str, folder: Path) -> tuple[float, int]:
    """dlt's sql_database source (its pyarrow backend, the fastest of its own) into its
    filesystem destination as Delta tables on a local folder."""
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    import dlt
    from dlt.sources.sql_database import sql_table

    start = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="bench_sources",
        pipelines_dir=str(folder / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=str(folder / "lake")),
        dataset_name="bench",
    )
    resource = sql_table(credentials=url, schema="public", table="big", backend="pyarrow")
    info = pipeline.run(resource, table_format="delta", write_disposition="replace")
    seconds = time.perf_counter() - start
    info.raise_on_failed_jobs()
    from deltalake import DeltaTable

    rows = DeltaTable(str(folder / "lake" / "bench" / "big")).to_pyarrow_dataset().count_rows()
    return seconds, rows


class CopyStream(io.RawIOBase):
    """The rows of ``COPY (...) TO STDOUT`` as a file pyarrow's CSV reader pulls from."""

    def __init__(self, copy: Any) -> None:
        self._chunks = iter(copy)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = bytes(chunk)
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def copy_load(url: str, target: Path) -> tuple[float, int]:
    """The floor: the server's COPY output streamed through psycopg into one parquet file
    (zstd, as silver writes), without any table format."""
    start = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as con, con.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        sql = "COPY (SELECT * FROM big) TO STDOUT (FORMAT csv, HEADER false)"
        with cur.copy(sql) as copy:
            reader = pacsv.open_csv(
                io.BufferedReader(CopyStream(copy), 1 << 20),
                read_options=pacsv.ReadOptions(column_names=ARROW_SCHEMA.names, block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types=ARROW_SCHEMA,
                    true_values=["t"],
                    false_values=["f"],
                    timestamp_parsers=["%Y-%m-%d %H:%M:%S%z"],
                ),
            )
            with pq.ParquetWriter(target, ARROW_SCHEMA, compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(batch.cast(ARROW_SCHEMA))
                    rows += batch.num_rows
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    rows = args.rows
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True)
    out: dict[str, Any] = {"rows": rows}
    with postgres_server(wal_level="replica") as sa_url:
        url = sa_url.replace("+psycopg", "")
        start = time.perf_counter()
        fill(url, rows)
        print(f"filled {rows:,} rows in {time.perf_counter() - start:.1f} s", flush=True)
        out["load_average_before"] = warn_if_busy("before the run")
        warehouse = SCRATCH / "warehouse"

        ours = lakehouse_cli(
            warehouse, url, "--table", "public.big", "--into", "bronze.big", "--full"
        )
        assert ours_rows(warehouse, "bronze.big") == rows
        print(
            f"lakehouse ingest db --full   {ours:7.2f} s  {rows / ours:12,.0f} rows/s", flush=True
        )
        # Where the time goes: the same load in this process (no interpreter start), and
        # its read alone.
        inside, read = in_process(warehouse, url)
        print(f"  the same load in process   {inside:7.2f} s  (reading {read:.2f} s)", flush=True)

        dlt_seconds, dlt_rows = dlt_load(url, SCRATCH / "dlt")
        assert dlt_rows == rows, dlt_rows
        print(
            f"dlt sql_database -> delta    {dlt_seconds:7.2f} s  "
            f"{rows / dlt_seconds:12,.0f} rows/s",
            flush=True,
        )

        copy_seconds, copy_rows = copy_load(url, SCRATCH / "copy.parquet")
        assert copy_rows == rows, copy_rows
        print(
            f"COPY -> one parquet file     {copy_seconds:7.2f} s  "
            f"{rows / copy_seconds:12,.0f} rows/s",
            flush=True,
        )

        # Incremental: a first load sets the mark (untimed), 1% new rows arrive, and the
        # next load takes only them.
        cli = ("--table", "public.big", "--into", "bronze.big_inc")
        lakehouse_cli(warehouse, url, *cli, "--incremental-column", "updated_at")
        new = max(rows // 100, 1)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(INSERT.format(first=rows + 1, last=rows + new))
            con.execute("ANALYZE big")
        incremental = lakehouse_cli(warehouse, url, *cli, "--incremental-column", "updated_at")
        # The mark's own row is read again (``>=``) and dropped as held.
        assert ours_rows(warehouse, "bronze.big_inc") == rows + new
        print(f"incremental (+{new:,} rows)   {incremental:7.2f} s", flush=True)
        # Where its time goes: a load with nothing new (the command's fixed cost: start,
        # the mark, the read at the mark, the check of the rows held there), and another
        # 1% loaded in this process.
        idle = lakehouse_cli(warehouse, url, *cli, "--incremental-column", "updated_at")
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(INSERT.format(first=rows + new + 1, last=rows + 2 * new))
            con.execute("ANALYZE big")
        inside_incremental = incremental_in_process(warehouse, url)
        assert ours_rows(warehouse, "bronze.big_inc") == rows + 2 * new
        print(f"  nothing new                {idle:7.2f} s", flush=True)
        print(f"  another 1% in process      {inside_incremental:7.2f} s", flush=True)
        out["load_average_after"] = load_average()

    vs_dlt = ratio(dlt_seconds, ours)  # ours' rows/s over dlt's
    vs_copy = ratio(copy_seconds, ours)
    share = ratio(incremental, ours)
    checks = [
        ("ours vs dlt (rows/s)", vs_dlt, f">= {TARGET_VS_DLT}x", vs_dlt >= TARGET_VS_DLT),
        ("ours vs COPY (rows/s)", vs_copy, f">= {TARGET_VS_COPY}x", vs_copy >= TARGET_VS_COPY),
        (
            "incremental / full (time)",
            share,
            f"<= {TARGET_INCREMENTAL:.0%}",
            share <= TARGET_INCREMENTAL,
        ),
    ]
    for label, value, target, ok in checks:
        print(f"{label:27} {value:6.3f}  target {target:7}  {'ok' if ok else 'MISSED'}")
    print(
        f"load average {out['load_average_before']:.2f} before, "
        f"{out['load_average_after']:.2f} after"
    )
    out |= {
        "seconds": {
            "lakehouse_full": ours,
            "lakehouse_full_in_process": inside,
            "lakehouse_read_only": read,
            "dlt_delta": dlt_seconds,
            "copy_parquet": copy_seconds,
            "lakehouse_incremental": incremental,
            "lakehouse_incremental_nothing_new": idle,
            "lakehouse_incremental_in_process": inside_incremental,
        },
        "rows_per_second": {
            "lakehouse_full": rows / ours,
            "dlt_delta": rows / dlt_seconds,
            "copy_parquet": rows / copy_seconds,
        },
        "incremental_rows": new,
        "ratios": {"vs_dlt": vs_dlt, "vs_copy": vs_copy, "incremental_share": share},
        "targets_met": {label: ok for label, _, _, ok in checks},
    }
    path = write_result("sources", out)
    print(f"wrote {path.relative_to(ROOT)}")
    shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
