"""PostgreSQL change data capture into bronze, against a real server: the changes applied by a
pipeline's CDC datasets reproduce the source tables; a capture killed anywhere (also between
its Delta commit and the slot's advance) loses and repeats nothing; bad setups say what to do.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.ingest import postgres_cdc as pgcdc
from lakehouse.ingest.cdc_commands import cdc_app
from lakehouse.pipeline import load_pipeline, run_pipeline
from tests.helpers.cdc import write_cdc_dataset
from tests.postgres import postgres_server

TABLE = "bronze.pg_changes"
PUBLICATION = "lakehouse"
NAMES = ["ann", "O'Brien", 'say "hi"', "émile 🎉", "two\nlines", "back\\slash", "", None]
CHANGE_COLUMNS = ["table_name", "operation", "primary_key", "before", "after", "sequence", "lsn"]

SOURCE_TABLES = """
    CREATE TABLE customers (
        id integer PRIMARY KEY,
        name text,
        balance numeric(12, 2),
        active boolean,
        created_at timestamp,
        note varchar(40)
    );
    CREATE SCHEMA shop;
    CREATE TABLE shop.order_lines (
        order_id integer,
        line_no smallint,
        product text NOT NULL,
        qty bigint,
        PRIMARY KEY (order_id, line_no)
    );
"""
CUSTOMERS_SQL = """
    SELECT
        CAST(json_extract(primary_key, '$.id') AS INTEGER) AS id,
        json_extract_string(after, '$.name') AS name,
        CAST(json_extract_string(after, '$.balance') AS DECIMAL(12, 2)) AS balance,
        CAST(json_extract(after, '$.active') AS BOOLEAN) AS active,
        CAST(json_extract_string(after, '$.created_at') AS TIMESTAMP) AS created_at,
        json_extract_string(after, '$.note') AS note,
        operation,
        sequence,
        CAST(changed_at AS TIMESTAMPTZ) AS changed_at
    FROM bronze.pg_changes
    WHERE table_name = 'customers'
"""
LINES_SQL = """
    SELECT
        CAST(json_extract(primary_key, '$.order_id') AS INTEGER) AS order_id,
        CAST(json_extract(primary_key, '$.line_no') AS SMALLINT) AS line_no,
        json_extract_string(after, '$.product') AS product,
        CAST(json_extract(after, '$.qty') AS BIGINT) AS qty,
        operation,
        sequence
    FROM bronze.pg_changes
    WHERE table_name = 'shop.order_lines'
"""


@pytest.fixture(scope="module")
def server():
    with postgres_server() as url:
        yield url


@pytest.fixture
def source(server, request):
    """A fresh database of the server, with the source tables: its URL."""
    name = "db_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    with psycopg.connect(_plain(server), autocommit=True) as conn:
        conn.execute(  # UTF-8 whatever the machine's locale
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    url = server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute(SOURCE_TABLES)
    yield url
    with psycopg.connect(_plain(server), autocommit=True) as conn:  # slots are server-wide
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s",
            [name],
        )


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def write_pipeline(folder: Path) -> Path:
    datasets = {
        "customers": (1, "id", CUSTOMERS_SQL),
        "customers_history": (2, "id", CUSTOMERS_SQL),
        "order_lines": (1, "order_id, line_no", LINES_SQL),
    }
    for name, (scd, keys, query) in datasets.items():
        # SCD 2's valid_from is the sequence (each change's LSN): with valid_time: changed_at
        # the changes of a row within one transaction would share one commit time.
        write_cdc_dataset(folder, name, scd, keys, query)
    return folder


class Workload:
    """Random transactions against the source tables, mirrored in Python to pick rows that
    exist; counts the committed changes of customers that make a new version of a row."""

    def __init__(self, url: str, seed: int) -> None:
        self.conn = psycopg.connect(_plain(url), autocommit=True)
        self.rng = random.Random(seed)
        self.customers: set[int] = set()
        self.lines: set[tuple[int, int]] = set()
        self.versions = 0  # inserts and updates of customers (a key change: one insert)
        self.next_id = 1

    def close(self) -> None:
        self.conn.close()

    def customer_values(self) -> tuple:
        rng = self.rng
        balance = None if rng.random() < 0.2 else Decimal(rng.randint(-99999, 999999)) / 100
        created = None
        if rng.random() < 0.8:
            created = datetime(2024, 1, 1) + timedelta(microseconds=rng.randint(0, 10**14))
        active = rng.choice([True, False, None])
        note = None if rng.random() < 0.5 else f"note {rng.randint(0, 999)}"
        return rng.choice(NAMES), balance, active, created, note

    def statement(self, customers: set[int], lines: set[tuple[int, int]]) -> int:
        """One random change; returns the versions it makes (applied to the given sets)."""
        rng, c = self.rng, self.conn
        roll = rng.random()
        if roll < 0.3 or not customers:
            key = self.next_id
            self.next_id += 1
            c.execute("INSERT INTO customers VALUES (%s, %s, %s, %s, %s, %s)",
                      [key, *self.customer_values()])  # fmt: skip
            customers.add(key)
            return 1
        if roll < 0.55:
            key = rng.choice(sorted(customers))
            name, balance, active, created, note = self.customer_values()
            c.execute(
                "UPDATE customers SET name = %s, balance = %s, active = %s, note = %s "
                "WHERE id = %s",
                [name, balance, active, note, key],
            )
            return 1
        if roll < 0.6:  # the primary key changes: a delete and an insert
            key = rng.choice(sorted(customers))
            new = self.next_id
            self.next_id += 1
            c.execute("UPDATE customers SET id = %s WHERE id = %s", [new, key])
            customers.discard(key)
            customers.add(new)
            return 1
        if roll < 0.7:
            key = rng.choice(sorted(customers))
            c.execute("DELETE FROM customers WHERE id = %s", [key])
            customers.discard(key)
            return 0
        order = rng.randint(1, 6)
        line = rng.randint(1, 4)
        if (order, line) not in lines:
            c.execute(
                "INSERT INTO shop.order_lines VALUES (%s, %s, %s, %s)",
                [order, line, rng.choice(["tea", "cake", "jam"]), rng.randint(1, 10**12)],
            )
            lines.add((order, line))
        elif rng.random() < 0.6:
            c.execute(
                "UPDATE shop.order_lines SET qty = qty + 1, product = product || '+' "
                "WHERE order_id = %s AND line_no = %s",
                [order, line],
            )
        else:
            c.execute(
                "DELETE FROM shop.order_lines WHERE order_id = %s AND line_no = %s", [order, line]
            )
            lines.discard((order, line))
        return 0

    def run(self, transactions: int) -> None:
        """Transactions of one to five changes; about one in eight is rolled back."""
        for _ in range(transactions):
            customers, lines = set(self.customers), set(self.lines)
            rollback = self.rng.random() < 0.125
            versions = 0
            with self.conn.transaction(force_rollback=rollback):
                for _ in range(self.rng.randint(1, 5)):
                    versions += self.statement(customers, lines)
            if not rollback:
                self.customers, self.lines = customers, lines
                self.versions += versions

    def rows(self, query: str) -> list[tuple]:
        return self.conn.execute(query).fetchall()


def bronze_changes(lh: Lakehouse) -> list[tuple]:
    columns = ", ".join(CHANGE_COLUMNS)
    return lh.sql(f"SELECT {columns} FROM {TABLE} ORDER BY sequence, primary_key").rows()


def witness_changes(url: str, slot: str) -> list[tuple]:
    """Every change a second slot, created with the first and never advanced, holds."""
    with pgcdc.connect(url) as conn:
        reader = pgcdc._Slot(conn, slot, PUBLICATION)
        rows = [r for t in reader.peek(1_000_000) for r in t.rows]
    rows.sort(key=lambda r: (r["sequence"], r["primary_key"] or ""))
    return [tuple(r[c] for c in CHANGE_COLUMNS) for r in rows]


def test_captured_changes_applied_by_a_pipeline_equal_the_source(source, tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    setup = pgcdc.setup(source, "main", PUBLICATION, ["customers", "shop.order_lines"])
    assert setup.created_publication and setup.created_slot
    again = pgcdc.setup(source, "main", PUBLICATION, ["customers", "shop.order_lines"])
    assert not again.created_publication and not again.created_slot and not again.added_tables
    pipeline = load_pipeline(write_pipeline(tmp_path / "pipeline"))
    work = Workload(source, seed=7)
    try:
        captured = 0
        for round_ in range(2):  # the first run builds silver, the second is incremental
            work.run(50)
            report = pgcdc.capture(lh, source, "main", PUBLICATION, TABLE, max_changes=50)
            assert report.batches > 1  # whole transactions, a few per batch
            captured += report.changes
            run_pipeline(lh, pipeline)
            assert lh.sql(
                "SELECT id, name, balance, active, created_at, note FROM silver.customers "
                "ORDER BY id"
            ).rows() == work.rows("SELECT * FROM customers ORDER BY id"), f"round {round_}"
            assert lh.sql(
                "SELECT order_id, line_no, product, qty FROM silver.order_lines ORDER BY 1, 2"
            ).rows() == work.rows("SELECT * FROM shop.order_lines ORDER BY 1, 2")
            versions = lh.sql(
                "SELECT count(*), count(*) FILTER (WHERE is_current) FROM silver.customers_history"
            ).rows()[0]
            assert versions == (work.versions, len(work.customers))
        assert lh.table(TABLE).count() == captured
        operations = lh.sql(f"SELECT operation FROM {TABLE}").to_arrow()["operation"]
        counts = Counter(operations.to_pylist())
        assert set(counts) == {"insert", "update", "delete"}
        slot_lsn = work.rows("SELECT confirmed_flush_lsn::text FROM pg_replication_slots")[0][0]
        assert report.last_lsn == slot_lsn
        transactions = lh.sql(f"SELECT count(DISTINCT transaction_id) FROM {TABLE}").scalar()
        several = lh.sql(
            f"SELECT count(*) FROM (SELECT transaction_id FROM {TABLE} "
            "GROUP BY 1 HAVING count(*) > 1)"
        ).scalar()
        assert transactions > several > 0  # transactions of one and of several changes
    finally:
        work.close()


def test_values_round_trip_as_json(source, tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    pgcdc.setup(source, "types", PUBLICATION)  # all tables, created below too
    with psycopg.connect(_plain(source), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE kinds (id bigint PRIMARY KEY, f double precision, r real, n numeric, "
            "b boolean, d date, ts timestamp, tz timestamptz, j jsonb, u uuid, t text, "
            "a int[], bytes bytea)"
        )
        conn.execute("SET TimeZone = 'Asia/Tokyo'")  # the captured text must not depend on it
        conn.execute(
            "INSERT INTO kinds VALUES (9007199254740993, 0.1, 1.5, 123456789012345678901.25, "
            "false, '2024-02-29', '2024-01-02 03:04:05.000006', '2024-01-02 09:00:00+09', "
            "'{\"k\": [1, null, \"x\"]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'x', "
            "'{1,2}', '\\x0001')"
        )
        conn.execute("INSERT INTO kinds (id, f, n) VALUES (2, 'NaN', 'NaN')")
    pgcdc.capture(lh, source, "types", PUBLICATION, "bronze.kinds")
    after = lh.sql("SELECT after FROM bronze.kinds ORDER BY sequence").to_arrow()["after"]
    first, second = (json.loads(a) for a in after.to_pylist())
    assert first == {
        "id": 9007199254740993,
        "f": 0.1,
        "r": 1.5,
        "n": "123456789012345678901.25",
        "b": False,
        "d": "2024-02-29",
        "ts": "2024-01-02T03:04:05.000006",
        "tz": "2024-01-02T00:00:00+00:00",
        "j": {"k": [1, None, "x"]},
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "t": "x",
        "a": "{1,2}",
        "bytes": "\\x0001",
    }
    assert second["f"] == "NaN" and second["n"] == "NaN" and second["b"] is None
    same = lh.sql(
        "SELECT CAST(json_extract(after, '$.id') AS BIGINT), "
        "CAST(json_extract_string(after, '$.n') AS DECIMAL(38, 2)), "
        "CAST(json_extract_string(after, '$.tz') AS TIMESTAMPTZ) "
        "FROM bronze.kinds WHERE sequence = (SELECT min(sequence) FROM bronze.kinds)"
    ).rows()[0]
    with psycopg.connect(_plain(source)) as conn:
        expected = conn.execute("SELECT id, n, tz FROM kinds WHERE id > 2").fetchone()
    assert same == expected


def test_a_database_not_in_utf8(server, tmp_path):
    """pgoutput's text read through SQL is in the database's encoding."""
    with psycopg.connect(_plain(server), autocommit=True) as conn:
        conn.execute(
            "CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' "
            "LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    url = server.rsplit("/", 1)[0] + "/latin"
    try:
        with psycopg.connect(_plain(url), autocommit=True) as conn:
            conn.execute("CREATE TABLE café (id int PRIMARY KEY, name text)")
            pgcdc.setup(url, "latin", PUBLICATION, ["café"])
            conn.execute("INSERT INTO café VALUES (1, 'Zoë à la crème')")
        lh = Lakehouse(tmp_path / "warehouse")
        pgcdc.capture(lh, url, "latin", PUBLICATION, "bronze.latin")
        row = lh.sql("SELECT table_name, after FROM bronze.latin").rows()
        assert row == [("café", '{"id": 1, "name": "Zoë à la crème"}')]
    finally:
        pgcdc.drop(url, "latin")


def test_before_images_truncate_and_unchanged_large_values(source, tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    with psycopg.connect(_plain(source), autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, body text, v int)")
        conn.execute("CREATE TABLE full_docs (id int PRIMARY KEY, body text, v int)")
        for table in ("docs", "full_docs"):  # stored out of line, unchanged: not logged
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN body SET STORAGE EXTERNAL")
        pgcdc.setup(source, "docs", PUBLICATION, ["docs"])
        full = pgcdc.setup(source, "docs", PUBLICATION, ["full_docs"], replica_identity_full=True)
        assert full.added_tables == ["full_docs"] and "public.full_docs" in full.full_identity
        big = "x" * 50_000
        for table in ("docs", "full_docs"):
            conn.execute(f"INSERT INTO {table} VALUES (1, %s, 1)", [big])
            conn.execute(f"UPDATE {table} SET v = 2")
            conn.execute(f"DELETE FROM {table}")
        conn.execute("INSERT INTO docs VALUES (7, 'short', 7)")
        conn.execute("TRUNCATE docs")
    report = pgcdc.capture(lh, source, "docs", PUBLICATION, "bronze.docs")
    assert report.truncated == ["docs"]
    rows = lh.sql(
        "SELECT table_name, operation, primary_key, before, after, unchanged_columns "
        "FROM bronze.docs ORDER BY sequence"
    ).rows()
    docs = [r for r in rows if r[0] == "docs"]
    full_docs = [r for r in rows if r[0] == "full_docs"]
    # Default replica identity: no before for an update, the key only for a delete; an
    # unchanged out-of-line value is not sent, so it is left out of after and named.
    assert [r[1:] for r in docs[1:]] == [
        ("update", '{"id": 1}', None, '{"id": 1, "v": 2}', '["body"]'),
        ("delete", '{"id": 1}', '{"id": 1}', None, None),
        ("insert", '{"id": 7}', None, '{"id": 7, "body": "short", "v": 7}', None),
        ("truncate", None, None, None, None),
    ]
    # REPLICA IDENTITY FULL: whole before images, and after completed from before.
    whole = f'{{"id": 1, "body": "{big}", "v": 1}}'
    assert [r[1:] for r in full_docs[1:]] == [
        ("update", '{"id": 1}', whole, whole.replace('"v": 1', '"v": 2'), None),
        ("delete", '{"id": 1}', whole.replace('"v": 1', '"v": 2'), None, None),
    ]


def test_crash_between_the_commit_and_the_slot_advance(source, tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    pgcdc.setup(source, "main", PUBLICATION, ["customers", "shop.order_lines"])
    pgcdc.setup(source, "witness", PUBLICATION)
    work = Workload(source, seed=11)
    try:
        work.run(30)
        with pgcdc.connect(source) as conn:  # a capture's first steps: read, commit, crash
            reader = pgcdc._Slot(conn, "main", PUBLICATION)
            transactions = reader.peek(20)
            rows = [r for t in transactions for r in t.rows]
            app_id = pgcdc.app_id_of(reader.database, "main")
            lh.write(TABLE, pgcdc.change_table(rows), txn=(app_id, transactions[-1].end_lsn))
            assert reader.position() < transactions[-1].end_lsn  # the slot was not advanced
        report = pgcdc.capture(lh, source, "main", PUBLICATION, TABLE, max_changes=40)
        assert report.already_stored == len(transactions)
        assert report.transactions > 0
        assert bronze_changes(lh) == witness_changes(source, "witness")
        version = lh.table(TABLE).version
        for _ in range(2):  # nothing new: nothing written
            idle = pgcdc.capture(lh, source, "main", PUBLICATION, TABLE)
            assert (idle.changes, idle.batches, idle.already_stored) == (0, 0, 0)
        assert lh.table(TABLE).version == version
    finally:
        work.close()


CAPTURE_SCRIPT = """
import sys
from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.ingest.postgres_cdc import capture
capture(Lakehouse(sys.argv[1]), sys.argv[2], "main", "lakehouse", sys.argv[3], max_changes=1)
"""


def test_capture_killed_at_any_point_loses_and_repeats_nothing(source, tmp_path):
    warehouse = tmp_path / "warehouse"
    pgcdc.setup(source, "main", PUBLICATION, ["customers", "shop.order_lines"])
    pgcdc.setup(source, "witness", PUBLICATION)
    log = warehouse / "bronze" / "pg_changes" / "_delta_log"
    work = Workload(source, seed=5)
    try:
        work.run(40)  # with max_changes=1, a Delta commit per transaction
        rng = random.Random(3)
        for commits in (3, 10):
            proc = subprocess.Popen(
                [sys.executable, "-c", CAPTURE_SCRIPT, str(warehouse), source, TABLE],
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )
            try:
                deadline = time.monotonic() + 60
                while len(list(log.glob("*.json"))) < commits and proc.poll() is None:
                    assert time.monotonic() < deadline, "the capture made no progress"
                    time.sleep(0.01)
                time.sleep(rng.random() * 0.05)  # somewhere in a read, a write or an advance
                proc.send_signal(signal.SIGKILL)
            finally:
                proc.kill()
                proc.wait()
            assert proc.returncode == -signal.SIGKILL  # killed before it was done
            wait_for_backends_to_go(work)
            work.run(5)
        report = pgcdc.capture(Lakehouse(warehouse), source, "main", PUBLICATION, TABLE)
        assert report.transactions > 0
        assert bronze_changes(Lakehouse(warehouse)) == witness_changes(source, "witness")
    finally:
        work.close()


def wait_for_backends_to_go(work: Workload) -> None:
    """A killed client's server process ends (releasing the slot) when it notices."""
    deadline = time.monotonic() + 30
    while work.rows(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lakehouse-cdc'"
    )[0][0]:
        assert time.monotonic() < deadline, "the killed capture's backend lingers"
        time.sleep(0.05)


def test_cli_setup_capture_and_status(source, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CDC_DSN", source)
    runner = CliRunner()
    result = runner.invoke(
        cdc_app,
        ["postgres", "setup", "--slot", "cli", "--source-table", "customers,shop.order_lines"],
    )
    assert result.exit_code == 0, result.output
    assert "publication lakehouse: created" in result.output
    with psycopg.connect(_plain(source), autocommit=True) as conn:
        conn.execute("INSERT INTO customers (id, name) VALUES (1, 'a'), (2, 'b')")
        conn.execute("TRUNCATE shop.order_lines")
    result = runner.invoke(cdc_app, ["postgres", "--slot", "cli", "--table", TABLE])
    assert result.exit_code == 0, result.output
    assert f"{TABLE}: 3 change(s) in 2 transaction(s)" in result.output
    with psycopg.connect(_plain(source), autocommit=True) as conn:
        conn.execute("UPDATE customers SET name = 'c' WHERE id = 2")
    reports: list[pgcdc.CaptureReport] = []
    lh = Lakehouse(tmp_path / "warehouse")
    pgcdc.follow(
        lh, source, "cli", PUBLICATION, TABLE, interval=0, rounds=2, on_capture=reports.append
    )
    assert [r.changes for r in reports] == [1, 0]
    result = runner.invoke(cdc_app, ["postgres", "status", "--slot", "cli", "--table", TABLE])
    assert result.exit_code == 0, result.output
    assert "pending_wal_bytes" in result.output and "stored_lsn" in result.output
    result = runner.invoke(cdc_app, ["postgres", "--slot", "nope", "--table", TABLE])
    assert isinstance(result.exception, pgcdc.CaptureError)
    assert "does not exist" in result.exception.message
    result = runner.invoke(cdc_app, ["postgres", "drop", "--slot", "cli"])
    assert result.exit_code == 0 and "dropped slot cli" in result.output


def test_clear_errors(server, source, tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    with pytest.raises(pgcdc.CaptureError) as missing:
        pgcdc.capture(lh, source, "nope", PUBLICATION, TABLE)
    assert "slot 'nope' does not exist" in missing.value.message
    assert "lakehouse cdc postgres setup" in (missing.value.hint or "")
    with psycopg.connect(_plain(source), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('other', 'test_decoding')")
    with pytest.raises(pgcdc.CaptureError) as plugin:
        pgcdc.capture(lh, source, "other", PUBLICATION, TABLE)
    assert "test_decoding" in plugin.value.message and "pg_drop_replication_slot" in (
        plugin.value.hint or ""
    )
    pgcdc.setup(source, "main", "some_tables", ["customers"])
    elsewhere = server.rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(pgcdc.CaptureError) as database:
        pgcdc.capture(lh, elsewhere, "main", PUBLICATION, TABLE)
    assert "belongs to database db_test_clear_errors, not postgres" in database.value.message
    with pytest.raises(pgcdc.CaptureError) as publication:
        pgcdc.capture(lh, source, "main", "no_such_publication", TABLE)
    assert "publication 'no_such_publication' does not exist" in publication.value.message
    with pytest.raises(pgcdc.CaptureError, match="cannot connect to PostgreSQL"):
        pgcdc.capture(lh, source.rsplit("/", 1)[0] + "/no_such_db", "main", PUBLICATION, TABLE)
    with pytest.raises(LakehouseError, match="into bronze, not silver"):
        pgcdc.capture(lh, source, "main", PUBLICATION, "silver.changes")
    with postgres_server(wal_level="replica") as physical_only:
        for attempt in (
            lambda: pgcdc.capture(lh, physical_only, "main", PUBLICATION, TABLE),
            lambda: pgcdc.setup(physical_only, "main", PUBLICATION),
        ):
            with pytest.raises(pgcdc.CaptureError) as level:
                attempt()
            assert "wal_level = replica" in level.value.message
            assert "wal_level = logical" in (level.value.hint or "")
