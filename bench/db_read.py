"""Reading a PostgreSQL table as Arrow: the ADBC driver (one read, and key ranges side by
side) vs connectorx (one read, and its own partitions), on a throwaway server (Debian's
PostgreSQL, as the tests start it) holding ``--rows`` rows; then the whole
``lakehouse ingest db`` load. Writes bench/results/db_read.json."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import connectorx as cx  # noqa: E402
import psycopg  # noqa: E402
from lakehouse import Lakehouse  # noqa: E402
from lakehouse.ingest import database, db_source  # noqa: E402
from tests.postgres import postgres_server  # noqa: E402

TABLE = """CREATE TABLE big AS SELECT g AS id, g * 1.5 AS x, 'name ' || g AS s,
    '2024-01-01'::timestamptz + g * interval '1 second' AS ts, (g % 100)::numeric(10, 2) AS amount
    FROM generate_series(1, {rows}) g"""


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - start)
    assert n > 0
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, float] = {}
    with postgres_server(wal_level="replica") as url:
        plain = url.replace("+psycopg", "")
        with psycopg.connect(plain, autocommit=True) as con:
            con.execute(TABLE.format(rows=args.rows))
            con.execute("ALTER TABLE big ADD PRIMARY KEY (id)")
            con.execute("ANALYZE big")
        source = db_source.parse_source(plain, "public.big")
        declared = db_source.columns(source)
        sql = "SELECT * FROM big"
        out["adbc"] = timed(lambda: db_source.read_arrow(source, sql).num_rows, args.repeat)
        out["adbc_2_ranges"] = timed(
            lambda: database._read(source, declared, None, 2).num_rows, args.repeat
        )
        out["connectorx"] = timed(
            lambda: cx.read_sql(plain, sql, return_type="arrow").num_rows, args.repeat
        )
        out["connectorx_2_partitions"] = timed(
            lambda: (
                cx.read_sql(
                    plain, sql, return_type="arrow", partition_on="id", partition_num=2
                ).num_rows
            ),
            args.repeat,
        )
        with tempfile.TemporaryDirectory() as folder:
            lh = Lakehouse(Path(folder) / "warehouse")
            out["ingest_db_full"] = timed(
                lambda: database.ingest_table(lh, plain, "public.big", "bronze.big").rows,
                args.repeat,
            )
    for name, seconds in out.items():
        print(f"{name:26} {seconds:6.2f} s  {args.rows / seconds / 1e6:5.2f} M rows/s")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "db_read.json").write_text(json.dumps({"rows": args.rows, "seconds": out}))


if __name__ == "__main__":
    main()
