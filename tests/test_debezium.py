"""Debezium change events into bronze change rows: envelopes bare and schema-wrapped, keys
from messages or named columns, tombstones skipped, bad messages quarantined with reasons;
folders of event files land once; a pipeline's CDC apply over them gives the state that a
replay of the same operations gives."""

from __future__ import annotations

import base64
import json
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lakehouse import Lakehouse
from lakehouse.ingest.cdc_commands import cdc_app
from lakehouse.ingest.debezium import (
    DEBEZIUM_SCHEMA,
    OPERATIONS,
    changes_from_messages,
    convert_messages,
    ingest_folder,
    quarantine_records,
)
from lakehouse.pipeline import load_pipeline, run_pipeline
from tests.helpers.cdc import write_cdc_dataset

EPOCH = datetime(1970, 1, 1)
CUSTOMER_FIELDS = [
    {"type": "int32", "optional": False, "field": "id"},
    {"type": "string", "optional": True, "field": "name"},
    {
        "type": "bytes",
        "optional": True,
        "name": "org.apache.kafka.connect.data.Decimal",
        "parameters": {"scale": "2", "connect.decimal.precision": "10"},
        "field": "balance",
    },
    {
        "type": "int64",
        "optional": True,
        "name": "io.debezium.time.MicroTimestamp",
        "field": "created_at",
    },
    {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "born"},
    {"type": "string", "optional": True, "name": "io.debezium.data.Json", "field": "prefs"},
]


def source(table: str, ts_ms: int, lsn: int | None = None, **extra) -> dict:
    block = {
        "version": "2.7.0.Final",
        "connector": "postgresql" if lsn is not None else "mysql",
        "name": "server1",
        "ts_ms": ts_ms,
        "snapshot": "false",
        "db": "shop",
        "table": table,
        **extra,
    }
    if lsn is not None:
        block.update(schema="public", lsn=lsn, txId=lsn // 100)
    return block


def envelope(op: str, before, after, src: dict) -> dict:
    return {"before": before, "after": after, "source": src, "op": op, "ts_ms": src["ts_ms"] + 3}


def wrapped(env: dict, fields: list[dict]) -> dict:
    """As Kafka Connect's JSON converter with schemas writes it."""
    row = {"type": "struct", "fields": fields, "optional": True}
    return {
        "schema": {
            "type": "struct",
            "fields": [
                {**row, "field": "before"},
                {**row, "field": "after"},
                {"type": "struct", "fields": [], "field": "source"},
                {"type": "string", "field": "op"},
            ],
            "name": "server1.public.customers.Envelope",
        },
        "payload": env,
    }


def encoded_customer(row: dict) -> dict:
    """A customer row as Debezium encodes it (decimal bytes, microseconds, days, JSON text)."""
    cents = int(row["balance"] * 100)
    return {
        "id": row["id"],
        "name": row["name"],
        "balance": base64.b64encode(cents.to_bytes(8, "big", signed=True)).decode(),
        "created_at": (row["created_at"] - EPOCH) // timedelta(microseconds=1),
        "born": (row["born"] - date(1970, 1, 1)).days,
        "prefs": json.dumps(row["prefs"]),
    }


def as_bytes(value) -> bytes:
    return json.dumps(value).encode()


def test_envelopes_become_change_rows():
    alice = {
        "id": 1,
        "name": "alice",
        "balance": Decimal("-12.50"),
        "created_at": datetime(2024, 1, 2, 3, 4, 5, 6),
        "born": date(2000, 2, 29),
        "prefs": {"mail": True, "tags": ["a", None]},
    }
    renamed = {**alice, "name": "alice b"}
    ts = 1_717_000_000_000
    created = envelope("c", None, encoded_customer(alice), source("customers", ts, 200))
    updated = envelope(
        "u", encoded_customer(alice), encoded_customer(renamed), source("customers", ts, 300)
    )
    values = [
        as_bytes(envelope("r", None, {"id": 9, "name": "snap"}, source("customers", ts, 100))),
        as_bytes(wrapped(created, CUSTOMER_FIELDS)),
        None,  # a tombstone
        as_bytes(updated),
        b"",  # a tombstone as an empty value
        as_bytes(envelope("d", {"id": 9, "name": None}, None, source("customers", ts, 400))),
        as_bytes({"schema": None, "payload": None}),  # a wrapped tombstone
        as_bytes(envelope("m", None, None, source("customers", ts, 450))),  # a message, no row
        b'{"op": "c", "after": {"id": 1}',  # cut short
        as_bytes({"id": 3, "name": "not an event"}),
        as_bytes([1, 2]),
        as_bytes(envelope("x", None, {"id": 3}, source("customers", ts, 500))),
        as_bytes({"op": "c", "after": {"id": 3}}),
        as_bytes(envelope("u", None, None, source("customers", ts, 600))),
        as_bytes(envelope("t", None, None, source("customers", ts, 700))),
    ]
    keys = [as_bytes({"id": 9}), as_bytes({"schema": {"type": "struct"}, "payload": {"id": 1}})]
    keys += [None] * (len(values) - 2)
    rows, bad = changes_from_messages(values, keys, ["id"])
    assert rows.schema == DEBEZIUM_SCHEMA
    got = rows.to_pylist()
    assert [(r["operation"], r["primary_key"], r["sequence"]) for r in got] == [
        ("insert", '{"id": 9}', f"0p:{100:020}:0"),  # a snapshot read: before the changes
        ("insert", '{"id": 1}', f"1p:{200:020}:1"),
        ("update", '{"id": 1}', f"1p:{300:020}:1"),
        ("delete", '{"id": 9}', f"1p:{400:020}:1"),
        ("truncate", None, f"1p:{700:020}:1"),
    ]
    created = json.loads(got[1]["after"])
    assert created == {
        "id": 1,
        "name": "alice",
        "balance": "-12.50",
        "created_at": "2024-01-02T03:04:05.000006",
        "born": "2000-02-29",
        "prefs": {"mail": True, "tags": ["a", None]},
    }
    # Without a schema the values stay as the connector wrote them.
    assert json.loads(got[2]["after"])["created_at"] == encoded_customer(renamed)["created_at"]
    assert got[3]["before"] == '{"id": 9, "name": null}' and got[3]["after"] is None
    first = got[0]
    assert first["table_name"] == "customers" and first["schema_name"] == "public"
    assert first["database_name"] == "shop" and first["transaction_id"] == "1"
    assert first["lsn"] == "0/64" and first["changed_at"] == "2024-05-29T16:26:40.000+00:00"
    assert [(i, reason.split(":")[0]) for i, reason in bad] == [
        (8, "invalid JSON in the message"),
        (9, "not a change event"),
        (10, "not a change event"),
        (11, "unknown op 'x' (Debezium's are c, r, u, d, t)"),
        (12, "no source.table"),
        (13, "op 'u' without an 'after' row"),
    ]
    quarantine = quarantine_records(values, bad)
    assert quarantine[0] == {"raw_payload": values[8].decode(), "reason": bad[0][1]}
    converted = convert_messages(values, keys, ["id"])  # rows lined up with their messages
    assert converted.rows == rows and converted.bad == bad
    assert converted.indexes == [0, 1, 3, 5, 14] and converted.skipped == [2, 4, 6, 7]


def test_keys_and_order_without_a_log_position():
    """A source without an LSN (MySQL's binlog): key columns per table, and the commit time
    then the messages' order (or the positions given) as the sequence."""
    ts = 1_700_000_000_000
    values = [
        as_bytes(envelope("c", None, {"sku": "a", "qty": 1}, source("stock", ts))),
        as_bytes(envelope("u", None, {"sku": "a", "qty": 2}, source("stock", ts))),
        as_bytes(envelope("c", None, {"id": 4, "x": 1}, source("other", ts + 1))),
        as_bytes(envelope("u", None, {"sku": "a", "qty": 3}, source("stock", ts))),
        as_bytes(envelope("c", None, {"qty": 3}, source("stock", ts + 2))),
        as_bytes(envelope("c", None, {"id": 5}, source("unkeyed", ts + 2))),
    ]
    rows, bad = changes_from_messages(values, None, {"stock": ["sku"], "other": ["id"]})

    def handled(ms: int, arrival: int) -> str:  # the envelope's ts_ms, then the arrival
        return f"1t:{ms * 10**6:020}:{arrival:020}"

    assert rows["sequence"].to_pylist() == [
        handled(ts + 3, 0),
        handled(ts + 3, 1),
        handled(ts + 4, 2),
        handled(ts + 3, 3),
    ]
    assert rows["primary_key"].to_pylist()[:3] == ['{"sku": "a"}', '{"sku": "a"}', '{"id": 4}']
    assert bad == [
        (4, "key column(s) sku not in the row"),
        (5, "no key: the message has no key and no key columns were named"),
    ]
    rows, _ = changes_from_messages(values[:2], positions=[41, 42], key_columns={"*": ["sku"]})
    assert rows["sequence"].to_pylist() == [handled(ts + 3, 41), handled(ts + 3, 42)]
    rows, _ = changes_from_messages(values[:1], [b"7"], ["sku"])  # a bare key value
    assert rows["primary_key"].to_pylist() == ['{"sku": 7}']


def replay(operations: list[tuple[str, dict]]) -> dict[int, dict]:
    """The table after the operations, in order (independent of the code under test)."""
    state: dict[int, dict] = {}
    for op, row in operations:
        if op == "d":
            del state[row["id"]]
        else:
            state[row["id"]] = row
    return state


def random_operations(rng: random.Random, count: int, state: dict[int, dict]) -> list:
    """Operations that a database could have made: updates and deletes of live rows only."""
    live = dict(state)
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.35 or not live:
            key = max([0, *live, *(r["id"] for _, r in out)]) + 1
            op = "c"
        else:
            key = rng.choice(sorted(live))
            op = "u" if roll < 0.8 else "d"
        row = {
            "id": key,
            "name": rng.choice(["ann", "bob", "O'Hara", 'z\u00e9 "q"', None]),
            "balance": Decimal(rng.randint(-(10**6), 10**6)) / 100,
            "created_at": datetime(2024, 1, 1) + timedelta(microseconds=rng.randint(0, 10**13)),
            "born": date(1960, 1, 1) + timedelta(days=rng.randint(0, 20000)),
            "prefs": {"n": rng.randint(0, 3)},
        }
        if op == "d":
            row = live.pop(key)
        else:
            live[key] = row
        out.append((op, row))
    return out


def write_events(folder: Path, name: str, operations: list, first_lsn: int, state: dict) -> int:
    """The operations as Debezium would publish them: schema-wrapped envelopes with the
    previous row as before, a tombstone after each delete, a bad line now and then."""
    lines = []
    lsn = first_lsn
    live = dict(state)
    for op, row in operations:
        lsn += 100
        before = encoded_customer(live[row["id"]]) if op in "ud" else None
        after = encoded_customer(row) if op != "d" else None
        src = source("customers", 1_700_000_000_000 + lsn, lsn)
        lines.append(json.dumps(wrapped(envelope(op, before, after, src), CUSTOMER_FIELDS)))
        if op == "d":
            lines.append("null")
            del live[row["id"]]
        else:
            live[row["id"]] = row
        if lsn % 1700 == 0:
            lines.append('{"broken": ')
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")
    return lsn


PIPELINE_SQL = """
    SELECT
        CAST(json_extract(primary_key, '$.id') AS INTEGER) AS id,
        json_extract_string(after, '$.name') AS name,
        CAST(json_extract_string(after, '$.balance') AS DECIMAL(10, 2)) AS balance,
        CAST(json_extract_string(after, '$.created_at') AS TIMESTAMP) AS created_at,
        CAST(json_extract_string(after, '$.born') AS DATE) AS born,
        CAST(json_extract(after, '$.prefs.n') AS INTEGER) AS prefs_n,
        operation,
        sequence
    FROM bronze.db_changes
    WHERE table_name = 'customers'
"""


def test_folder_lands_once_and_a_pipeline_applies_it(tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    pipeline_folder = tmp_path / "pipeline"
    for name, scd in (("customers", 1), ("customers_history", 2)):
        write_cdc_dataset(pipeline_folder, name, scd, "id", PIPELINE_SQL)
    pipeline = load_pipeline(pipeline_folder)
    rng = random.Random(21)
    events = tmp_path / "events"
    operations: list = []
    state: dict[int, dict] = {}
    lsn = 1000
    for batch in range(2):
        for part in range(3):
            more = random_operations(rng, 40, state)
            lsn = write_events(events, f"b{batch}-{part}.jsonl", more, lsn, state)
            operations += more
            state = replay(operations)
        (events / "_manifest.json").write_text("{}")  # not data: left alone
        report = ingest_folder(lh, events, "bronze.db_changes", key_columns=["id"])
        assert len(report.files_ingested) == 3 and len(report.files_skipped) == 3 * batch
        again = ingest_folder(lh, events, "bronze.db_changes", key_columns=["id"])
        assert again.files_ingested == [] and again.changes == 0 and again.quarantined == 0
        assert lh.table("bronze.db_changes").count() == len(operations)
        run_pipeline(lh, pipeline)
        expected = [
            (
                r["id"],
                r["name"],
                r["balance"],
                r["created_at"],
                r["born"],
                r["prefs"]["n"],
            )
            for r in sorted(state.values(), key=lambda r: r["id"])
        ]
        got = lh.sql(
            "SELECT id, name, balance, created_at, born, prefs_n FROM silver.customers ORDER BY id"
        ).rows()
        assert got == expected, f"after batch {batch}"
        versions = sum(1 for op, _ in operations if op != "d")
        assert lh.sql("SELECT count(*) FROM silver.customers_history").scalar() == versions
    quarantined = lh.sql(
        "SELECT raw_payload, reason FROM bronze.db_changes_quarantine ORDER BY _source, reason"
    ).rows()
    assert quarantined and all(raw == '{"broken": ' for raw, _ in quarantined)
    assert all(reason.startswith("line ") and "invalid JSON" in reason for _, reason in quarantined)


def test_cli_ingests_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "warehouse"))
    events = tmp_path / "events"
    events.mkdir()
    ts = 1_700_000_000_000
    lines = [
        envelope("c", None, {"order_id": 1, "line_no": 1, "qty": 2}, source("lines", ts)),
        envelope("c", None, {"id": 7, "name": "x"}, source("people", ts)),
        envelope("u", None, {"order_id": 1, "line_no": 1, "qty": 3}, source("lines", ts + 1)),
    ]
    (events / "a.ndjson").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    (events / "b.json").write_text(json.dumps(lines[:1], indent=2))  # one document, an array
    (events / "c.jsonl").write_text("null\n")  # tombstones only: marked as done all the same
    runner = CliRunner()
    args = ["debezium", str(events), "--table", "bronze.changes"]
    result = runner.invoke(cdc_app, [*args, "--key", "lines=order_id,line_no", "--key", "id"])
    assert result.exit_code == 0, result.output
    assert "3 new file(s), 4 change(s), 1 quarantined" in result.output
    result = runner.invoke(cdc_app, args)
    assert "0 new file(s)" in result.output and "3 file(s) already ingested" in result.output
    lh = Lakehouse(tmp_path / "warehouse")
    keys = lh.sql("SELECT table_name, primary_key FROM bronze.changes ORDER BY _source, sequence")
    assert keys.rows() == [
        ("lines", '{"order_id": 1, "line_no": 1}'),
        ("people", '{"id": 7}'),
        ("lines", '{"order_id": 1, "line_no": 1}'),
        ("lines", '{"order_id": 1, "line_no": 1}'),
    ]
    reason = lh.sql("SELECT reason FROM bronze.changes_quarantine").scalar()
    assert reason.startswith("line 4: invalid JSON")


# -- order: events placed by their position in the source's log --------------------------------
def mysql_event(op: str, before, after, file: str, pos: int, row: int = 0, **source) -> dict:
    """A MySQL connector's envelope, as Debezium 2.x writes it: source.ts_ms is 0 in
    snapshots (and in some versions always), the envelope's ts_ms when it was handled."""
    block = {
        "version": "2.7.3.Final",
        "connector": "mysql",
        "name": "shop",
        "ts_ms": 0,
        "snapshot": "true" if op == "r" else "false",
        "db": "shop",
        "sequence": None,
        "table": "customers",
        "server_id": 223344 if op != "r" else 0,
        "gtid": None,
        "file": file,
        "pos": pos,
        "row": row,
        "thread": None if op == "r" else 9,
        "query": None,
        **source,
    }
    return {
        "before": before,
        "after": after,
        "source": block,
        "op": op,
        "ts_ms": 1_717_000_000_000,  # one burst: every event handled in the same millisecond
        "transaction": None,
    }


MYSQL_FIELDS = [
    {"type": "int32", "optional": False, "field": "id"},
    {"type": "string", "optional": True, "field": "name"},
]


def customer(key: int, name: str) -> dict:
    return {"id": key, "name": name}


def mysql_history() -> list[dict]:
    """A snapshot of customers 1 and 2, then changes streamed from two binlog files whose
    names sort the other way as text (mysql-bin.999999, then mysql-bin.1000000)."""
    first, second = "mysql-bin.999999", "mysql-bin.1000000"
    return [
        mysql_event("r", None, customer(1, "ann"), first, 154, snapshot="first"),
        mysql_event("r", None, customer(2, "bob"), first, 154, snapshot="last"),
        mysql_event("u", customer(1, "ann"), customer(1, "ann b"), first, 400),
        mysql_event("c", None, customer(3, "cy"), first, 900, 0),
        mysql_event("c", None, customer(4, "di"), first, 900, 1),  # the same rows event
        mysql_event("u", customer(1, "ann b"), customer(1, "ann c"), second, 4),
        mysql_event("d", customer(2, "bob"), None, second, 300),
        mysql_event("u", customer(3, "cy"), customer(3, "cy d"), second, 1200),
    ]


def lines(events: list[dict], wrap: bool = False) -> str:
    return "".join(json.dumps(wrapped(e, MYSQL_FIELDS) if wrap else e) + "\n" for e in events)


def test_mysql_events_apply_in_binlog_order_across_files_and_runs(tmp_path, monkeypatch):
    """MySQL events carry source.ts_ms = 0 and share their handling millisecond: only their
    binlog position orders them. A key's events spread over files that land in a different
    order, over two runs, with a redelivered insert and update: SCD 1 holds the source's
    rows, SCD 2 their history, and SCD 1 is SCD 2's current rows. The CLI and the Python
    API give the same rows."""
    events = mysql_history()
    folder = tmp_path / "events"
    folder.mkdir()
    # File names sort the streamed changes before the snapshot.
    (folder / "b-snapshot.jsonl").write_text(lines(events[:2]))
    (folder / "a-stream.jsonl").write_text(lines(events[2:5], wrap=True))
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(warehouse))
    lh = Lakehouse(warehouse)
    runner = CliRunner()

    def land() -> None:
        ingest_folder(lh, folder, "bronze.api_changes", key_columns=["id"])
        args = ["debezium", str(folder), "--table", "bronze.cli_changes", "--key", "id"]
        result = runner.invoke(cdc_app, args)
        assert result.exit_code == 0, result.output

    land()
    # The second run: the rest, and the connector's redelivery after a restart (it
    # replays from the start of the last rows event it had not committed).
    (folder / "0-later.jsonl").write_text(lines(events[5:]))
    (folder / "c-redelivered.jsonl").write_text(lines(events[2:4], wrap=True))
    land()
    query = "SELECT primary_key, operation, sequence FROM bronze.{} ORDER BY ALL"
    api = lh.sql(query.format("api_changes")).rows()
    assert api == lh.sql(query.format("cli_changes")).rows()
    assert len(api) == len(events) + 2 and len(set(api)) == len(events)
    # In sequence order; the snapshot's reads share their position (and so their sequence).
    in_order = sorted(set(api), key=lambda r: (r[2], r[0]))
    assert [(json.loads(k)["id"], op) for k, op, _ in in_order] == [
        (1, "insert"),
        (2, "insert"),
        (1, "update"),
        (3, "insert"),
        (4, "insert"),
        (1, "update"),
        (2, "delete"),
        (3, "update"),
    ]
    pipeline_folder = tmp_path / "pipeline"
    sql = """
        SELECT CAST(json_extract(primary_key, '$.id') AS INTEGER) AS id,
               json_extract_string(after, '$.name') AS name, operation, sequence
        FROM bronze.api_changes
    """
    write_cdc_dataset(pipeline_folder, "customers", 1, "id", sql)
    write_cdc_dataset(pipeline_folder, "customers_history", 2, "id", sql)
    run_pipeline(lh, load_pipeline(pipeline_folder))
    state = lh.sql("SELECT id, name FROM silver.customers ORDER BY id").rows()
    assert state == [(1, "ann c"), (3, "cy d"), (4, "di")]
    current = "SELECT id, name FROM silver.customers_history WHERE is_current ORDER BY id"
    assert lh.sql(current).rows() == state
    history = lh.sql(
        "SELECT id, list(name ORDER BY valid_from) FROM silver.customers_history "
        "GROUP BY id ORDER BY id"
    ).rows()
    assert history == [
        (1, ["ann", "ann b", "ann c"]),
        (2, ["bob"]),
        (3, ["cy", "cy d"]),
        (4, ["di"]),
    ]


def postgres_source(lsn: int, last_commit: int | None, snapshot: str = "false") -> dict:
    return {
        "version": "2.7.3.Final",
        "connector": "postgresql",
        "name": "shop",
        "ts_ms": 0 if snapshot != "false" else 1_717_000_000_000,
        "snapshot": snapshot,
        "db": "shop",
        "sequence": json.dumps([None if last_commit is None else str(last_commit), str(lsn)]),
        "schema": "public",
        "table": "customers",
        "txId": 780,
        "lsn": lsn,
        "xmin": None,
    }


def sqlserver_source(commit: str, change: str | None, serial: int | None, snapshot="false"):
    return {
        "version": "2.7.3.Final",
        "connector": "sqlserver",
        "name": "shop",
        "ts_ms": 1_717_000_000_000,
        "snapshot": snapshot,
        "db": "shop",
        "sequence": None,
        "schema": "dbo",
        "table": "customers",
        "change_lsn": change,
        "commit_lsn": commit,
        "event_serial_no": serial,
    }


def oracle_source(scn: str, commit_scn: str | None, ssn: int = 0, snapshot="false") -> dict:
    return {
        "version": "2.7.3.Final",
        "connector": "oracle",
        "name": "shop",
        "ts_ms": 1_717_000_000_000,
        "snapshot": snapshot,
        "db": "ORCLPDB1",
        "sequence": None,
        "schema": "SHOP",
        "table": "CUSTOMERS",
        "txId": "02000a0037030000",
        "scn": scn,
        "commit_scn": commit_scn,
        "lcr_position": None,
        "rs_id": None,
        "ssn": ssn,
        "redo_thread": 1,
    }


def test_each_connector_orders_by_its_log_position():
    """Per connector, the events of one key delivered shuffled and twice sort back into
    their order in the source's log, a copy sorting with its original."""
    rng = random.Random(5)
    sources = {
        # A read of PostgreSQL's snapshot at LSN 5000, then a change at LSN 4000: made
        # before the snapshot point by a transaction that committed after it.
        "postgresql": [
            ("r", postgres_source(5000, None, "last")),
            ("u", postgres_source(4000, 5200)),
            ("u", postgres_source(5100, 5200)),
            ("u", postgres_source(2**40, 2**40 - 8)),
        ],
        # Hex LSNs: 0000002a comes after 00000029; an update's two rows, one change.
        "sqlserver": [
            ("r", sqlserver_source("00000029:00000fa0:0001", None, None, "true")),
            ("u", sqlserver_source("00000029:00000fa0:0009", "00000029:00000fa0:0003", 1)),
            ("u", sqlserver_source("0000002a:00000010:0005", "0000002a:00000010:0002", 1)),
            ("u", sqlserver_source("0000002a:00000010:0005", "0000002a:00000010:0002", 2)),
            ("d", sqlserver_source("0000002a:00000010:0005", "0000002a:00000010:0004", 1)),
        ],
        # SCNs are numbers written as text: 1000000 comes after 999999.
        "oracle": [
            ("r", oracle_source("999990", None, snapshot="true")),
            ("u", oracle_source("999999", "1000000")),  # a commit SCN one digit longer
            ("u", oracle_source("1000001", "1000002", 0)),
            ("u", oracle_source("1000001", "1000002", 1)),
        ],
    }
    for connector, history in sources.items():
        events = []
        for n, (op, src) in enumerate(history):
            row = {"ID": 7, "N": n}
            before = None if op in "cr" else {"ID": 7, "N": n - 1}
            events.append(envelope(op, before, None if op == "d" else row, src))
        delivered = events + events[1:3]  # the connector sent two of them again
        rng.shuffle(delivered)
        rows, bad = changes_from_messages([as_bytes(e) for e in delivered], None, ["ID"])
        assert bad == [], connector
        order = sorted(rows.to_pylist(), key=lambda r: r["sequence"])
        got = [
            (r["operation"], json.loads(r["after"] or r["before"])["N"] + (r["after"] is None))
            for r in order
        ]
        want = []
        for n, (op, _) in enumerate(history):
            copies = 2 if 1 <= n < 3 else 1
            want += [("delete" if op == "d" else "update" if op == "u" else "insert", n)] * copies
        assert got == want, connector
        sequences = [r["sequence"] for r in order]
        assert len(set(sequences)) == len(history), connector  # a copy: its original's


def test_a_position_that_cannot_be_read_is_a_bad_message():
    ts = 1_717_000_000_000
    values = [
        as_bytes(mysql_event("c", None, customer(1, "a"), "binlog", 4)),
        as_bytes(mysql_event("c", None, customer(2, "b"), "mysql-bin.000003", -1)),
        as_bytes(envelope("c", None, {"id": 4}, {**source("c", ts), "sequence": "[1, "})),
        as_bytes(mysql_event("c", None, customer(5, "e"), "mysql-bin.000003", "4")),
    ]
    rows, bad = changes_from_messages(values, None, ["id"])
    assert bad == [
        (
            0,
            "source.file 'binlog' is not a binlog file name ending in its number "
            "(mysql-bin.000003)",
        ),
        (1, "source.pos -1 is not a non-negative integer"),
        (
            2,
            "source.sequence '[1, ' is not a JSON array: Expecting value: line 1 column 5 (char 4)",
        ),
    ]
    # A number written as text is a number.
    assert rows["sequence"].to_pylist()[-1] == f"1m:{3:020}:{4:020}:{0:020}:1"


# -- property: SCD 1 is the current rows of SCD 2, and both are the source's ------------------
CONNECTORS = ("mysql", "postgresql", "sqlserver", "none")


@st.composite
def event_histories(draw):
    """A table's history as a connector publishes it: a snapshot, then changes (inserts,
    updates, deletes of live rows) with their log positions, in log order."""
    connector = draw(st.sampled_from(CONNECTORS))
    live: dict[int, str] = {}
    ops: list[tuple[str, int, str | None, str | None]] = []  # op, key, before, after
    for key in draw(st.sets(st.integers(1, 4), max_size=3)):
        live[key] = f"s{key}"
        ops.append(("r", key, None, live[key]))
    for n in range(draw(st.integers(1, 20))):
        key = draw(st.integers(1, 4))
        if key not in live:
            ops.append(("c", key, None, f"n{n}"))
            live[key] = f"n{n}"
        elif draw(st.booleans()):
            ops.append(("u", key, live[key], f"n{n}"))
            live[key] = f"n{n}"
        else:
            ops.append(("d", key, live.pop(key), None))
    clock = 1_717_000_000_000  # the envelope's ts_ms: often the same for several events
    file_no, pos, row, lsn = 999_998, 154, 0, 10_000
    snapshot_lsn = lsn + draw(st.integers(0, 400))  # streamed changes may have smaller LSNs
    commit, change = 0x29_0000_0000, 0
    events, keys_in_event = [], set()
    for op, key, before, after in ops:
        clock += draw(st.integers(0, 1))
        if connector == "mysql":
            if op != "r" and (key in keys_in_event or draw(st.booleans())):
                if draw(st.integers(0, 4)) == 0:
                    file_no, pos = file_no + 1, 4  # the binlog rotates
                pos += draw(st.integers(1, 3000))
                row, keys_in_event = 0, set()
            elif op != "r" and keys_in_event:
                row += 1  # another row of the same rows event
            keys_in_event.add(key)
            src = {"file": f"mysql-bin.{file_no:06d}", "pos": pos, "row": row, "ts_ms": 0}
        elif connector == "postgresql":
            lsn += draw(st.integers(1, 200))
            at = snapshot_lsn if op == "r" else lsn
            src = {"lsn": at, "sequence": json.dumps([None, str(at)]), "txId": at // 7}
        elif connector == "sqlserver":
            if op == "r":
                src = {"commit_lsn": _hex_lsn(commit), "change_lsn": None}
            else:
                if draw(st.booleans()):
                    commit += draw(st.integers(1, 2**33))  # a new transaction
                    change = commit - 2**20
                change += draw(st.integers(1, 9))
                src = {"commit_lsn": _hex_lsn(commit), "change_lsn": _hex_lsn(change)}
                src["event_serial_no"] = 1
        else:
            src = {}
        src.update(
            connector=connector,
            db="shop",
            table="customers",
            snapshot="true" if op == "r" else "false",
            ts_ms=src.get("ts_ms", 0 if op == "r" else clock),
        )
        img = {"id": key, "name": before} if before is not None else None
        new = {"id": key, "name": after} if after is not None else None
        events.append({"before": img, "after": new, "source": src, "op": op, "ts_ms": clock})
    return connector, ops, events


def _hex_lsn(value: int) -> str:
    text = f"{value:020x}"
    return f"{text[:8]}:{text[8:16]}:{text[16:]}"


@st.composite
def deliveries(draw, events: list[dict]):
    """The events as they reach the folder: after a connector restart it sends again from
    an earlier event; each message alone on a line, wrapped with its schema or not, a
    tombstone after a delete; cut into files at random places, named in random order, and
    landed in two runs."""
    sent: list[dict] = []
    start, restarts = 0, draw(st.integers(0, 2))
    while start < len(events):
        stop = draw(st.integers(start + 1, len(events)))
        sent += events[start:stop]
        if restarts and draw(st.booleans()):
            restarts -= 1
            start = draw(st.integers(0, stop - 1))
        else:
            start = stop
    messages = []
    for event in sent:
        messages.append(json.dumps(wrapped(event, MYSQL_FIELDS) if draw(st.booleans()) else event))
        if event["op"] == "d":
            messages.append("null")
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(messages) - 1)), max_size=4)))
    files = [messages[a:b] for a, b in zip([0, *cuts], [*cuts, len(messages)], strict=True)]
    names = draw(st.permutations([f"f{i:02d}.jsonl" for i in range(len(files))]))
    first_run = draw(st.integers(1, len(files)))
    return list(zip(names, files, strict=True)), first_run


def replayed(ops: list) -> tuple[dict[int, str], dict[int, list[str]]]:
    """The source table after the operations, and each key's versions, in order."""
    state: dict[int, str] = {}
    versions: dict[int, list[str]] = {}
    for op, key, _, after in ops:
        if op == "d":
            del state[key]
        else:
            state[key] = after
            versions.setdefault(key, []).append(after)
    return state, versions


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_positions_put_any_delivery_back_in_log_order(data):
    """Converted file by file, arrival numbers going on: the distinct sequences are the
    events, and sorted they give the log's order."""
    connector, ops, events = data.draw(event_histories())
    files, _ = data.draw(deliveries(events))
    rows, arrival = [], 0
    for _, messages in files:
        got, bad = changes_from_messages(
            messages, None, ["id"], positions=list(range(arrival, arrival + len(messages)))
        )
        assert bad == []
        arrival += len(messages)
        rows += got.to_pylist()
    once = {(r["primary_key"], r["sequence"]): r for r in rows}
    if connector == "none":
        assert len(once) >= len(events)  # copies in other files are told apart later
        return
    assert len(once) == len(events)
    per_key: dict[int, list] = {}
    for (_, _), r in sorted(once.items(), key=lambda item: item[0][1]):
        after = json.loads(r["after"]) if r["after"] else {}
        per_key.setdefault(json.loads(r["primary_key"])["id"], []).append(
            (r["operation"], after.get("name"))
        )
    want: dict[int, list] = {}
    for op, key, _, after in ops:
        want.setdefault(key, []).append((OPERATIONS[op], after))
    assert per_key == want


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_scd1_is_the_current_rows_of_scd2(data, tmp_path_factory):
    connector, ops, events = data.draw(event_histories())
    files, first_run = data.draw(deliveries(events))
    root = tmp_path_factory.mktemp("history")
    lh = Lakehouse(root / "warehouse")
    folder = root / "events"
    folder.mkdir()
    pipeline_folder = root / "pipeline"
    sql = """
        SELECT CAST(json_extract(primary_key, '$.id') AS INTEGER) AS id,
               json_extract_string(after, '$.name') AS name, operation, sequence
        FROM bronze.changes
    """
    write_cdc_dataset(pipeline_folder, "state", 1, "id", sql)
    write_cdc_dataset(pipeline_folder, "history", 2, "id", sql)
    pipeline = load_pipeline(pipeline_folder)
    for run in (files[:first_run], files[first_run:]):
        for name, messages in run:
            (folder / name).write_text("\n".join(messages) + "\n")
        report = ingest_folder(lh, folder, "bronze.changes", key_columns=["id"])
        assert report.quarantined == 0
        run_pipeline(lh, pipeline)
        state = lh.sql("SELECT id, name FROM silver.state ORDER BY id").rows()
        current = lh.sql("SELECT id, name FROM silver.history WHERE is_current ORDER BY id")
        assert current.rows() == state
    if connector == "none":
        return  # without positions the files' order decides: no source order to compare
    want_state, want_versions = replayed(ops)
    assert state == sorted(want_state.items())
    history = lh.sql(
        "SELECT id, list(name ORDER BY valid_from) FROM silver.history GROUP BY id"
    ).rows()
    assert dict(history) == want_versions


def test_events_without_a_position_keep_their_files_order_across_runs(tmp_path):
    """Events of a connector without log positions, all handled in one millisecond: the
    arrival numbers go on from file to file and from run to run, and a copy of an event
    landed again from a later file keeps the first one's sequence."""
    lh = Lakehouse(tmp_path / "warehouse")
    folder = tmp_path / "events"
    folder.mkdir()
    src = {"connector": "db2", "db": "shop", "table": "customers", "ts_ms": 0}

    def event(op: str, before: str | None, after: str | None) -> dict:
        image = {"id": 1, "name": before} if before else None
        new = {"id": 1, "name": after} if after else None
        return {"before": image, "after": new, "source": src, "op": op, "ts_ms": 1_717_000_000}

    inserted = event("c", None, "a")
    (folder / "1.jsonl").write_text(lines([inserted, event("u", "a", "b")]))
    (folder / "2.jsonl").write_text(lines([event("u", "b", "c"), inserted]))
    ingest_folder(lh, folder, "bronze.changes", key_columns=["id"])
    (folder / "3.jsonl").write_text(lines([event("u", "c", "d"), inserted]))
    ingest_folder(lh, folder, "bronze.changes", key_columns=["id"])
    pipeline_folder = tmp_path / "pipeline"
    sql = """
        SELECT CAST(json_extract(primary_key, '$.id') AS INTEGER) AS id,
               json_extract_string(after, '$.name') AS name, operation, sequence
        FROM bronze.changes
    """
    write_cdc_dataset(pipeline_folder, "state", 1, "id", sql)
    write_cdc_dataset(pipeline_folder, "history", 2, "id", sql)
    run_pipeline(lh, load_pipeline(pipeline_folder))
    assert lh.sql("SELECT id, name FROM silver.state").rows() == [(1, "d")]
    history = "SELECT name, is_current FROM silver.history ORDER BY valid_from"
    assert lh.sql(history).rows() == [("a", False), ("b", False), ("c", False), ("d", True)]


def test_a_table_with_the_old_integer_sequence_is_refused(tmp_path):
    from lakehouse.errors import LakehouseError
    from lakehouse.ingest.change_rows import CHANGE_SCHEMA, change_table

    lh = Lakehouse(tmp_path / "warehouse")
    lh.write("bronze.changes", change_table([{"table_name": "t", "sequence": 5}], CHANGE_SCHEMA))
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "1.jsonl").write_text(lines(mysql_history()[:1]))
    with pytest.raises(LakehouseError, match="bigint|long") as caught:
        ingest_folder(lh, folder, "bronze.changes", key_columns=["id"])
    assert "land the events in a new table" in str(caught.value.hint)
    assert lh.table("bronze.changes").count() == 1


def test_messages_nested_past_the_parsers_limit_are_quarantined(tmp_path):
    """A line, a .json document or a JSON column nested deeper than a JSON parser can
    recurse is a bad message with its reason, not a crash of the ingestion."""
    deep = b"[" * 100_000 + b"]" * 100_000
    events = tmp_path / "events"
    events.mkdir()
    (events / "a.jsonl").write_bytes(deep + b"\n")
    (events / "b.json").write_bytes(deep)
    lh = Lakehouse(tmp_path / "warehouse")
    report = ingest_folder(lh, events, "bronze.db_changes", key_columns=["id"])
    assert report.quarantined == 2 and report.changes == 0
    reasons = lh.sql("SELECT reason FROM bronze.db_changes_quarantine ORDER BY 1").rows()
    assert all("nested too deeply" in r for (r,) in reasons), reasons
