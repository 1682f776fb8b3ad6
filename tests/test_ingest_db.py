"""Database tables into bronze against real servers (PostgreSQL, MariaDB) and SQLite: full
loads replace the table in one commit, incremental loads keep a mark committed with the
rows and neither miss nor double rows changed at the mark, a load killed mid-way loses and
doubles nothing, types are mapped faithfully, new columns are added, bad URLs and tables
say what to do."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.ingest.database import ingest_table
from tests.postgres import postgres_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pg():
    with postgres_server(wal_level="replica") as url:
        yield url.replace("+psycopg", "")


def _run(url: str, *sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        for statement in sql:
            con.execute(statement)


def _rows(lh: Lakehouse, table: str, order: str = "id") -> list[dict]:
    return (
        lh.sql(
            f"SELECT * EXCLUDE (_ingested_at, _ingest_date, _source_system, _source, "
            f"_record_hash) FROM {table} ORDER BY {order}"
        )
        .to_arrow()
        .to_pylist()
    )


def test_full_load_replaces_in_one_commit(pg, lh):
    _run(
        pg,
        "CREATE TABLE full_t (id int PRIMARY KEY, name text)",
        "INSERT INTO full_t VALUES (1, 'a'), (2, 'b')",
    )
    first = ingest_table(lh, pg, "public.full_t", "bronze.full_t", full=True)
    assert first.rows == 2
    _run(pg, "DELETE FROM full_t WHERE id = 1", "INSERT INTO full_t VALUES (3, 'c')")
    second = ingest_table(lh, pg, "public.full_t", "bronze.full_t")
    assert second.version == first.version + 1  # one overwrite commit
    assert [r["id"] for r in _rows(lh, "bronze.full_t")] == [2, 3]
    meta = lh.sql("SELECT DISTINCT _source FROM bronze.full_t").to_arrow().column(0).to_pylist()
    assert meta == [second.source] and "public.full_t" in meta[0] and "@" not in meta[0]


def test_incremental_ties_at_the_mark(pg, lh):
    _run(
        pg,
        "CREATE TABLE events (id int PRIMARY KEY, v text, updated_at timestamp)",
        "INSERT INTO events VALUES (1, 'a', '2024-01-01 10:00'), (2, 'b', '2024-01-01 11:00')",
    )
    args = (lh, pg, "public.events", "bronze.events")
    first = ingest_table(*args, incremental_column="updated_at")
    assert first.rows == 2 and first.mark == dt.datetime(2024, 1, 1, 11)
    # Nothing new: the rows at the mark are read again and dropped, nothing is committed.
    again = ingest_table(*args, incremental_column="updated_at")
    assert again.rows == 0 and again.already_held == 1 and again.version is None
    # A row written later with the mark's exact value, and one past it.
    _run(pg, "INSERT INTO events VALUES (3, 'c', '2024-01-01 11:00'), (4, 'd', '2024-01-01 12:00')")
    third = ingest_table(*args, incremental_column="updated_at")
    assert third.rows == 2 and third.already_held == 1
    # An update at the new mark's exact value lands as a new version of the row.
    _run(pg, "UPDATE events SET v = 'd2' WHERE id = 4")
    fourth = ingest_table(*args, incremental_column="updated_at")
    assert fourth.rows == 1 and fourth.mark == dt.datetime(2024, 1, 1, 12)
    rows = _rows(lh, "bronze.events", "id, v")
    assert [(r["id"], r["v"]) for r in rows] == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (4, "d2")]
    t = lh.table("bronze.events")
    assert t.transaction_version(f"db:{first.source}:load") == 3


def test_incremental_integer_and_timestamptz(pg, lh):
    _run(
        pg,
        "CREATE TABLE seq (id bigint PRIMARY KEY, at timestamptz)",
        "INSERT INTO seq SELECT g, '2024-01-01 00:00+02'::timestamptz + g * interval '1 s' "
        "FROM generate_series(1, 100) g",
    )
    assert ingest_table(lh, pg, "public.seq", "bronze.seq", incremental_column="id").rows == 100
    _run(pg, "INSERT INTO seq VALUES (101, now())")
    assert ingest_table(lh, pg, "public.seq", "bronze.seq", incremental_column="id").rows == 1
    tz = ingest_table(lh, pg, "public.seq", "bronze.seq_tz", incremental_column="at")
    assert tz.rows == 101 and tz.mark.tzinfo is not None
    assert ingest_table(lh, pg, "public.seq", "bronze.seq_tz", incremental_column="at").rows == 0


def test_types_are_mapped_faithfully(pg, lh):
    _run(
        pg,
        """CREATE TABLE typed (id int PRIMARY KEY, amount numeric(12, 2), exact numeric,
           ts timestamp, tz timestamptz, doc jsonb, raw json, nums int[], tags text[],
           u uuid, b bytea, d date, f double precision, ok boolean, t time)""",
        """INSERT INTO typed VALUES (1, 12.34, 1.000000000000000000001,
           '2024-01-01 10:00:00.123456', '2024-01-01 10:00:00+02', '{"a": [1, 2]}', '[1,2]',
           '{1,2,3}', '{x,y}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x0102',
           '2024-01-02', 1.5, true, '10:30'),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL)""",
    )
    ingest_table(lh, pg, "public.typed", "bronze.typed")
    schema = lh.table("bronze.typed").schema
    assert str(schema.field("amount").type) == "decimal128(12, 2)"
    assert str(schema.field("exact").type) == "string"
    assert str(schema.field("ts").type) == "timestamp[us]"
    assert str(schema.field("tz").type) == "timestamp[us, tz=UTC]"
    row = _rows(lh, "bronze.typed")[0]
    assert row["amount"] == Decimal("12.34")
    assert row["exact"] == "1.000000000000000000001"
    assert row["ts"] == dt.datetime(2024, 1, 1, 10, 0, 0, 123456)
    assert row["tz"] == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    assert json.loads(row["doc"]) == {"a": [1, 2]} and json.loads(row["raw"]) == [1, 2]
    assert row["nums"] == [1, 2, 3] and row["tags"] == ["x", "y"]
    assert row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert row["b"] == b"\x01\x02" and row["d"] == dt.date(2024, 1, 2)
    assert row["f"] == 1.5 and row["ok"] is True and row["t"].startswith("10:30")


def test_unsupported_type_is_named(pg, lh):
    _run(pg, "CREATE TABLE spans (id int, span interval)", "INSERT INTO spans VALUES (1, '1 day')")
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, pg, "public.spans", "bronze.spans")
    assert "public.spans.span" in str(exc.value) and "interval" in str(exc.value)
    assert "CAST(span AS text)" in exc.value.hint


def test_new_source_columns_are_added(pg, lh):
    _run(pg, "CREATE TABLE drift (id int PRIMARY KEY, a text)", "INSERT INTO drift VALUES (1, 'x')")
    ingest_table(lh, pg, "public.drift", "bronze.drift", incremental_column="id")
    _run(
        pg,
        "ALTER TABLE drift ADD COLUMN extra numeric(5, 1)",
        "INSERT INTO drift VALUES (2, 'y', 2.5)",
    )
    report = ingest_table(lh, pg, "public.drift", "bronze.drift", incremental_column="id")
    assert report.rows == 1 and report.schema_changes == ["added column extra"]
    assert [(r["id"], r["extra"]) for r in _rows(lh, "bronze.drift")] == [
        (1, None),
        (2, Decimal("2.5")),
    ]


def test_bad_url_and_table_say_what_to_do(pg, lh, tmp_path):
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, "oracle://x/y", "a.b", "bronze.x")
    assert "postgresql://" in exc.value.hint
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, pg, "public.nope", "bronze.x")
    assert "no table public.nope" in str(exc.value) and "the tables are" in exc.value.hint
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, "postgresql://u:secret@127.0.0.1:1/db", "public.t", "bronze.x")
    assert "secret" not in str(exc.value) and "host and port" in exc.value.hint
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, pg, "public.full_t", "silver.x")
    assert "bronze" in str(exc.value)
    _run(pg, "CREATE TABLE IF NOT EXISTS named (id int, name text)")
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, pg, "public.named", "bronze.named", incremental_column="nom")
    assert "id, name" in exc.value.hint
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, pg, "public.named", "bronze.named", incremental_column="name")
    assert "integer, a date or a timestamp" in str(exc.value)


def test_parallel_ranges_read_every_row_once(pg, lh):
    _run(
        pg,
        "CREATE TABLE ranged (id int PRIMARY KEY, v int)",
        "INSERT INTO ranged SELECT g, g % 7 FROM generate_series(1, 10001) g",
    )
    report = ingest_table(lh, pg, "public.ranged", "bronze.ranged", parallel=3)
    assert report.rows == 10001
    got = lh.sql("SELECT count(DISTINCT id) AS n, sum(v) AS s FROM bronze.ranged").to_arrow()
    assert got.to_pylist() == [{"n": 10001, "s": sum(g % 7 for g in range(1, 10002))}]


def _cli(warehouse: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lakehouse.cli",
        "--warehouse",
        str(warehouse),
        "ingest",
        "db",
        *args,
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_killed_load_loses_and_doubles_nothing(pg, tmp_path):
    _run(
        pg,
        "CREATE TABLE big (id int PRIMARY KEY, v text, at timestamp)",
        "INSERT INTO big SELECT g, md5(g::text), '2024-01-01'::timestamp + g * interval '1 s' "
        "FROM generate_series(1, 200000) g",
    )
    warehouse = tmp_path / "warehouse"
    args = _cli(
        warehouse,
        "--url",
        pg,
        "--table",
        "public.big",
        "--into",
        "bronze.big",
        "--incremental-column",
        "at",
    )
    for delay in (0.3, 0.9, 1.4, 1.9, 2.4, 3.0):  # before, while reading, writing, after
        proc = subprocess.Popen(
            args, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _run(
            pg,
            f"INSERT INTO big SELECT g, 'late', '2024-02-01'::timestamp "
            f"FROM generate_series({300000 + int(delay * 10)}, {300000 + int(delay * 10)}) g",
        )
    done = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    again = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 row(s) landed" in again.stdout, again.stdout
    lh = Lakehouse(warehouse)
    got = lh.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM bronze.big").to_arrow()
    assert got.to_pylist() == [{"n": 200006, "d": 200006}]


# -- SQLite --------------------------------------------------------------------------------
def test_sqlite_full_and_incremental(lh, tmp_path):
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, price REAL, blob BLOB);"
        "INSERT INTO orders VALUES (1, 'a', 1.5, x'00ff'), (2, 'b', NULL, NULL);"
    )
    con.commit()
    url = f"sqlite:///{path}"
    first = ingest_table(lh, url, "orders", "bronze.orders", incremental_column="id")
    assert first.rows == 2 and first.mark == 2
    con.executescript("INSERT INTO orders VALUES (3, 'c', 3.0, NULL);")
    con.commit()
    assert ingest_table(lh, url, "main.orders", "bronze.orders", incremental_column="id").rows == 1
    rows = _rows(lh, "bronze.orders")
    assert [(r["id"], r["item"], r["blob"]) for r in rows] == [
        (1, "a", b"\x00\xff"),
        (2, "b", None),
        (3, "c", None),
    ]
    full = ingest_table(lh, url, "orders", "bronze.orders_all", full=True)
    assert full.rows == 3
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, url, "nope", "bronze.x")
    assert "orders" in exc.value.hint
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, f"sqlite:///{tmp_path / 'missing.db'}", "t", "bronze.x")
    assert "sqlite:///" in exc.value.hint


def test_cli_ingest_folder_still_works_and_db_command(lh, tmp_path):
    path = tmp_path / "cli.db"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1, 'x');")
    con.commit()
    warehouse = tmp_path / "warehouse"
    done = subprocess.run(
        _cli(warehouse, "--url", f"sqlite:///{path}", "--table", "t", "--into", "bronze.t"),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "1 row(s) landed" in done.stdout, done.stdout + done.stderr
    bad = subprocess.run(
        _cli(warehouse, "--url", "ftp://x", "--table", "t", "--into", "bronze.t"),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "hint" in bad.stdout + bad.stderr


# -- MariaDB -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def maria():
    from tests.mariadb import mariadb_server

    with mariadb_server() as url:
        yield url


def _maria(url: str, *sql: str) -> None:
    import pymysql

    host_port = url.split("@", 1)[1].split("/", 1)[0]
    con = pymysql.connect(
        host="127.0.0.1",
        port=int(host_port.split(":")[1]),
        user="root",
        database="test",
        autocommit=True,
    )
    with con.cursor() as cur:
        for statement in sql:
            cur.execute(statement)
    con.close()


def test_mariadb_types_and_full_load(maria, lh):
    _maria(
        maria,
        """CREATE TABLE typed (id int PRIMARY KEY, n decimal(12, 2), ts datetime(6), j json,
           u uuid, b blob, d date, f double, s varchar(10), ok boolean, tm time,
           big bigint unsigned)""",
        """INSERT INTO typed VALUES (1, 12.34, '2024-01-01 10:00:00.123456', '{"a": 1}',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', x'0102', '2024-01-02', 1.5, 'hi', true,
           '10:30', 18446744073709551615),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    )
    report = ingest_table(lh, maria, "test.typed", "bronze.m_typed", full=True)
    assert report.rows == 2 and "@" not in report.source
    schema = lh.table("bronze.m_typed").schema
    assert str(schema.field("n").type) == "decimal128(12, 2)"
    assert str(schema.field("ok").type) == "bool"
    row = _rows(lh, "bronze.m_typed")[0]
    assert row["n"] == Decimal("12.34") and row["ok"] is True
    assert row["ts"] == dt.datetime(2024, 1, 1, 10, 0, 0, 123456)
    assert json.loads(row["j"]) == {"a": 1} and row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert row["b"] == b"\x01\x02" and row["d"] == dt.date(2024, 1, 2)
    assert row["big"] == Decimal(18446744073709551615) and row["tm"].startswith("10:30")


def test_mariadb_incremental_ties_and_drift(maria, lh):
    _maria(
        maria,
        "CREATE TABLE ev (id int PRIMARY KEY, v varchar(10), at datetime)",
        "INSERT INTO ev VALUES (1, 'a', '2024-01-01 10:00:00'), (2, 'b', '2024-01-01 11:00:00')",
    )
    args = (lh, maria, "test.ev", "bronze.m_ev")
    assert ingest_table(*args, incremental_column="at").rows == 2
    _maria(
        maria,
        "ALTER TABLE ev ADD COLUMN extra int",
        "INSERT INTO ev VALUES (3, 'c', '2024-01-01 11:00:00', 7)",
        "UPDATE ev SET v = 'b2' WHERE id = 2",
    )
    second = ingest_table(*args, incremental_column="at")
    assert second.rows == 2 and second.schema_changes == ["added column extra"]
    assert ingest_table(*args, incremental_column="at").rows == 0
    rows = _rows(lh, "bronze.m_ev", "id, v")
    assert [(r["id"], r["v"], r["extra"]) for r in rows] == [
        (1, "a", None),
        (2, "b", None),
        (2, "b2", None),
        (3, "c", 7),
    ]


def test_mariadb_bad_table_and_password(maria, lh):
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, maria, "test.nope", "bronze.x")
    assert "no table test.nope" in str(exc.value) and "test.ev" in exc.value.hint
    wrong = maria.replace("root@", "root:wrong@")
    with pytest.raises(LakehouseError) as exc:
        ingest_table(lh, wrong, "test.ev", "bronze.x")
    assert "wrong" not in str(exc.value) and "password" in exc.value.hint


def test_uuids_as_text_with_nulls_and_slices():
    import uuid

    import pyarrow as pa

    from lakehouse.ingest.db_types import _uuid_text

    ids = [uuid.uuid4() for _ in range(5)]
    raw = pa.array([u.bytes if i != 2 else None for i, u in enumerate(ids)], pa.binary(16))
    got = _uuid_text(pa.chunked_array([raw, raw.slice(1, 3)])).to_pylist()
    text = [str(u) if i != 2 else None for i, u in enumerate(ids)]
    assert got == text + text[1:4]
