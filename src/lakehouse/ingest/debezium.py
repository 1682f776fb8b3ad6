"""Debezium change events into bronze change rows (``change_rows``, as PostgreSQL capture).

A message value is Debezium's envelope ``{before, after, op, source, ts_ms}``, bare or
wrapped by Kafka Connect's JSON converter as ``{"schema": ..., "payload": {...}}``. A null
value (a tombstone, which only tells Kafka compaction to drop the key) and ``op: m``
(a logical decoding message, no row change) are skipped. The primary key comes from the
message key (``{"id": 5}``, also wrapped or not) or, without one, from the key columns
the caller names, read from the row image.

With a schema, Debezium's encodings are turned back into the values the row holds:
timestamps, dates and times as ISO 8601 text, decimals (base64 bytes) as exact decimal
text, JSON columns as JSON. Without one the values stay as the connector wrote them.

A row's ``sequence`` is the event's position in the source's log as sortable text
(``debezium_order``): the same however the events are cut into files or batches, and the
same for an event delivered twice.

``changes_from_messages`` (and ``convert_messages``, which also tells which message each
row came from) is pure: a stream calls it per micro-batch. ``ingest_folder``
lands files of JSON lines (one envelope per line) each exactly once, like file ingestion.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.ingest.change_rows import CHANGE_SCHEMA, change_row, change_table, qualified
from lakehouse.ingest.debezium_order import (
    WIDTH,
    PositionError,
    arrival_key,
    handled_nanos,
    position_key,
)
from lakehouse.ingest.folder import FolderFile, take_in_each
from lakehouse.ingest.landing import LandingPath, landing_of, read_all
from lakehouse.names import parse_table_name
from lakehouse.tables.formats import format_of
from lakehouse.tables.schema import type_name

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

OPERATIONS = {"c": "insert", "r": "insert", "u": "update", "d": "delete", "t": "truncate"}
UNAVAILABLE = "__debezium_unavailable_value"  # an unchanged TOASTed value, not sent
EXTENSIONS = {".jsonl", ".ndjson", ".json"}
# Change rows of Debezium events: the shared shape, with the events' sortable position
# text as the sequence.
SEQUENCE = pa.field("sequence", pa.string())
DEBEZIUM_SCHEMA = CHANGE_SCHEMA.set(CHANGE_SCHEMA.get_field_index("sequence"), SEQUENCE)


# Key columns for every table (["id"]), or per table ({"customers": ["id"]}; "*": the rest).
KeyColumns = list[str] | dict[str, list[str]]


class BadMessage(Exception):
    """A message that is not a Debezium change event; its text is the reason."""


@dataclass
class _Change:
    row: dict[str, Any]
    op: str
    source: dict[str, Any]
    nanos: int | None  # when the connector handled it: orders it when it has no position


@dataclass
class Converted:
    """Messages converted: the change rows, for each row the index of its message, the bad
    messages (index, reason), and the messages skipped (tombstones, ``op: m``)."""

    rows: pa.Table
    indexes: list[int]
    bad: list[tuple[int, str]]
    skipped: list[int]


def changes_from_messages(
    values: Sequence[bytes | str | None],
    keys: Sequence[bytes | str | None] | None = None,
    key_columns: KeyColumns | None = None,
    *,
    positions: list[int] | None = None,
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Change rows (``DEBEZIUM_SCHEMA``) from Debezium message values, and ``(index,
    reason)`` for each message that is not a change event. Tombstones and ``op: m`` give
    neither (``convert_messages`` also says which message each row came from).

    ``keys`` are the messages' Kafka keys (None where a message has none); ``key_columns``
    name the key when a message has no key: a list for every table, or a dict from
    table_name (or the bare table) to its key columns, ``"*"`` for the others.

    A row's ``sequence`` is the event's position in the source's log (``debezium_order``).
    ``positions`` number the messages in the order they arrived (Kafka offsets: a key's
    messages share a partition; or a count that goes on from one call to the next): they
    order the events that have no log position, after the connector's time. Without them
    the messages are numbered from 0 in each call."""
    converted = convert_messages(values, keys, key_columns, positions=positions)
    return converted.rows, converted.bad


def convert_messages(
    values: Sequence[bytes | str | None],
    keys: Sequence[bytes | str | None] | None = None,
    key_columns: KeyColumns | None = None,
    *,
    positions: list[int] | None = None,
) -> Converted:
    """``changes_from_messages``, with the message index of each row and of each message
    skipped: a stream lines its rows up with its messages' offsets with them."""
    if keys is not None and len(keys) != len(values):
        raise LakehouseError("keys must have one entry per message (None for no key)")
    if positions is not None and len(positions) != len(values):
        raise LakehouseError("positions must have one entry per message")
    found: list[tuple[int, _Change]] = []
    bad: list[tuple[int, str]] = []
    skipped: list[int] = []
    # An event without a log position delivered twice in the messages: its first arrival.
    first: dict[tuple[Any, ...], str] = {}
    for i, value in enumerate(values):
        try:
            change = _change(value, keys[i] if keys is not None else None, key_columns)
            if change is None:
                skipped.append(i)
                continue
            change.row["sequence"] = position_key(change.op, change.source)
        except (BadMessage, PositionError) as exc:
            bad.append((i, str(exc)))
            continue
        if change.row["sequence"] is None:
            arrival = positions[i] if positions is not None else i
            if isinstance(arrival, bool) or not isinstance(arrival, int) or arrival < 0:
                raise LakehouseError(f"position {arrival!r} is not a non-negative integer")
            same = (change.nanos, *(change.row[c] for c in IDENTITY))
            sequence = arrival_key(change.op, change.source, change.nanos, arrival)
            change.row["sequence"] = first.setdefault(same, sequence)
        found.append((i, change))
    rows = change_table([c.row for _, c in found], DEBEZIUM_SCHEMA)
    return Converted(rows, [i for i, _ in found], bad, skipped)


# What tells a redelivered event without a log position from another event of its time.
IDENTITY = ("table_name", "operation", "primary_key", "before", "after", "transaction_id")


def quarantine_records(
    values: Sequence[bytes | str | None], bad: list[tuple[int, str]]
) -> list[dict[str, str]]:
    """The bad messages as ``<table>_quarantine`` rows: raw_payload and reason."""
    return [{"raw_payload": _as_text(values[i]), "reason": reason} for i, reason in bad]


def _as_text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _parse(value: bytes | str, what: str) -> Any:
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage(f"invalid JSON in the {what}: {exc}") from exc
    except RecursionError as exc:  # the parser recursed past Python's limit
        raise BadMessage(f"the {what} is JSON nested too deeply to read") from exc


def _unwrap(message: Any) -> tuple[Any, dict[str, Any] | None]:
    """A converter's {"schema", "payload"} wrapping taken off: the payload and its schema."""
    if (
        isinstance(message, dict)
        and "payload" in message
        and set(message)
        <= {
            "schema",
            "payload",
        }
    ):
        schema = message.get("schema")
        return message["payload"], schema if isinstance(schema, dict) else None
    return message, None


def _change(
    value: bytes | str | None, key: bytes | str | None, key_columns: KeyColumns | None
) -> _Change | None:
    if value is None or not (value.strip() if isinstance(value, str | bytes) else value):
        return None  # a tombstone
    envelope, schema = _unwrap(_parse(value, "message"))
    if envelope is None:
        return None  # a tombstone written as JSON null
    if not isinstance(envelope, dict):
        raise BadMessage(f"not a change event: a JSON {type(envelope).__name__}, not an object")
    op = envelope.get("op")
    if op is None:
        raise BadMessage("not a change event: no 'op' field")
    if op == "m":
        return None
    if op not in OPERATIONS:
        raise BadMessage(f"unknown op {op!r} (Debezium's are c, r, u, d, t)")
    operation = OPERATIONS[op]
    source = envelope.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("table"), str):
        raise BadMessage("no source.table: which table changed is unknown")
    fields = _image_fields(schema)
    before = _image(envelope, "before", fields)
    after = _image(envelope, "after", fields)
    if operation in ("insert", "update") and after is None:
        raise BadMessage(f"op {op!r} without an 'after' row")
    if operation == "delete" and before is None and key is None:
        raise BadMessage("op 'd' without a 'before' row or a message key")
    unchanged = []
    if after is not None:
        for column in [c for c, v in after.items() if v == UNAVAILABLE]:
            if before is not None and before.get(column, UNAVAILABLE) != UNAVAILABLE:
                after[column] = before[column]
            else:
                del after[column]
                unchanged.append(column)
    table_name = qualified(_text(source.get("schema")), source["table"])
    primary_key = None
    if operation != "truncate":
        columns = _columns_for(key_columns, table_name, source["table"])
        primary_key = _primary_key(key, columns, after if after is not None else before)
    lsn = _integer(source.get("lsn"))
    row = change_row(
        table_name,
        operation,
        primary_key=primary_key,
        before=before,
        after=after,
        sequence=None,  # set by the caller: the event's position
        changed_at=_changed_at(source, envelope),
        schema_name=_text(source.get("schema")),
        database_name=_text(source.get("db")),
        transaction_id=_transaction(source, envelope),
        lsn=lsn,
        unchanged=unchanged,
    )
    return _Change(row, op, source, handled_nanos(envelope, source))


def _image(
    envelope: dict[str, Any], side: str, fields: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    image = envelope.get(side)
    if image is None:
        return None
    if not isinstance(image, dict):
        raise BadMessage(f"'{side}' is not a row (a JSON object)")
    return {column: _value(v, fields.get(column), column) for column, v in image.items()}


def _image_fields(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The column schemas of the envelope's row images (before and after share them)."""
    if schema is None:
        return {}
    for part in schema.get("fields") or []:
        if isinstance(part, dict) and part.get("field") in ("after", "before"):
            return _fields(part)
    return {}


def _fields(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not isinstance(schema, dict):
        return {}
    return {
        f["field"]: f
        for f in schema.get("fields") or []
        if isinstance(f, dict) and isinstance(f.get("field"), str)
    }


def _columns_for(key_columns: KeyColumns | None, table_name: str, table: str) -> list[str] | None:
    if key_columns is None or isinstance(key_columns, list):
        return key_columns
    for name in (table_name, table, "*"):
        if name in key_columns:
            return key_columns[name]
    return None


def _primary_key(
    key: bytes | str | None, key_columns: list[str] | None, image: dict[str, Any] | None
) -> dict[str, Any]:
    if key is not None and (key.strip() if isinstance(key, str | bytes) else key):
        payload, schema = _unwrap(_parse(key, "message key"))
        if isinstance(payload, dict) and payload:
            fields = _fields(schema)
            return {c: _value(v, fields.get(c), c) for c, v in payload.items()}
        if payload is not None and not isinstance(payload, dict | list) and key_columns:
            if len(key_columns) == 1:  # a bare key value: the one key column's
                return {key_columns[0]: payload}
        raise BadMessage("the message key is not a JSON object of the key columns")
    if not key_columns:
        raise BadMessage("no key: the message has no key and no key columns were named")
    if image is None:
        raise BadMessage("no row image to read the key columns from")
    missing = [c for c in key_columns if c not in image]
    if missing:
        raise BadMessage(f"key column(s) {', '.join(missing)} not in the row")
    return {c: image[c] for c in key_columns}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _transaction(source: dict[str, Any], envelope: dict[str, Any]) -> str | None:
    for value in (source.get("txId"), source.get("gtid")):
        if value is not None:
            return str(value)
    block = envelope.get("transaction")
    if isinstance(block, dict) and block.get("id") is not None:
        return str(block["id"])
    return None


def _changed_at(source: dict[str, Any], envelope: dict[str, Any]) -> str | None:
    """The commit time at the source (its clock), else when the connector saw the change."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    micros = _integer(source.get("ts_us"))
    if micros:
        return (epoch + timedelta(microseconds=micros)).isoformat()
    for millis in (_integer(source.get("ts_ms")), _integer(envelope.get("ts_ms"))):
        if millis:  # 0 is no time: snapshots and some connector versions write it
            return (epoch + timedelta(milliseconds=millis)).isoformat(timespec="milliseconds")
    return None


# -- Debezium's encodings back into values -------------------------------------------------------
EPOCH = datetime(1970, 1, 1)
TIMESTAMPS = {
    "io.debezium.time.Timestamp": 1_000,  # the value's units per second
    "org.apache.kafka.connect.data.Timestamp": 1_000,
    "io.debezium.time.MicroTimestamp": 1_000_000,
    "io.debezium.time.NanoTimestamp": 1_000_000_000,
}
TIMES = {
    "io.debezium.time.Time": 1_000,
    "org.apache.kafka.connect.data.Time": 1_000,
    "io.debezium.time.MicroTime": 1_000_000,
    "io.debezium.time.NanoTime": 1_000_000_000,
}
DATES = {"io.debezium.time.Date", "org.apache.kafka.connect.data.Date"}
DECIMAL = "org.apache.kafka.connect.data.Decimal"
VARIABLE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
JSON_TEXT = "io.debezium.data.Json"


def _value(value: Any, schema: dict[str, Any] | None, column: str) -> Any:
    """A column's value as the row holds it, by its field schema's semantic type name."""
    if value is None or value == UNAVAILABLE or schema is None:
        return value
    name = schema.get("name")
    try:
        if name in TIMESTAMPS:
            return _since_epoch(value, TIMESTAMPS[name]).isoformat()
        if name in TIMES:
            return (datetime(2000, 1, 1) + _duration(value, TIMES[name])).time().isoformat()
        if name in DATES:
            return (date(1970, 1, 1) + timedelta(days=int(value))).isoformat()
        if name == DECIMAL and isinstance(value, str):
            scale = int((schema.get("parameters") or {}).get("scale", 0))
            return _decimal(value, scale)
        if name == VARIABLE_DECIMAL and isinstance(value, dict):
            return _decimal(value["value"], int(value["scale"]))
        if name == JSON_TEXT and isinstance(value, str):
            return json.loads(value)
    except RecursionError as exc:
        raise BadMessage(f"column {column}: JSON nested too deeply to read") from exc
    except (TypeError, ValueError, KeyError, OverflowError, binascii.Error) as exc:
        raise BadMessage(f"column {column}: {value!r} is not a valid {name}: {exc}") from exc
    return value


def _duration(value: Any, per_second: int) -> timedelta:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    seconds, rest = divmod(value, per_second)
    return timedelta(seconds=seconds, microseconds=rest * 1_000_000 // per_second)


def _since_epoch(value: Any, per_second: int) -> datetime:
    return EPOCH + _duration(value, per_second)


def _decimal(encoded: str, scale: int) -> str:
    """Kafka Connect's decimal: the unscaled value's big-endian two's complement bytes, in
    base64; as exact decimal text."""
    unscaled = int.from_bytes(base64.b64decode(encoded, validate=True), "big", signed=True)
    return format(Decimal(unscaled).scaleb(-scale), "f")


# -- files -----------------------------------------------------------------------------------
@dataclass
class DebeziumReport:
    table: str
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    changes: int = 0
    quarantined: int = 0


def ingest_folder(
    lh: Lakehouse,
    folder: str | Path,
    table: str,
    *,
    key_columns: KeyColumns | None = None,
    source_system: str | None = None,
    on_file: Callable[[LandingPath, int], None] | None = None,
) -> DebeziumReport:
    """Land each file of Debezium events under ``folder`` (.jsonl and .ndjson: an event per
    line; .json: the same, or one JSON document holding an event or an array of them;
    names starting with _ or . are left alone) in the bronze ``table``, exactly once: a
    file's change rows commit with a transaction identifier naming its content. Messages that
    are not change events go to ``<table>_quarantine`` with the reason. Messages number on
    from the table's last arrival number (for events without a log position)."""
    name = parse_table_name(table)
    if name.layer != "bronze":
        raise LakehouseError(f"change events are ingested into bronze, not {name.layer}")
    landing = landing_of(folder, lh.storage_options)
    report = DebeziumReport(str(name))
    fmt = format_of(lh.storage, name)
    target = fmt.open(lh.storage, name)
    arrival = _next_arrival(lh, str(name), None if target is None else fmt.schema(target))
    landed = target is not None  # the table exists: it may hold a file's events already

    def skip(file: FolderFile) -> None:
        report.files_skipped.append(str(file.path))

    def land(file: FolderFile, read: tuple[list[str], list[bytes]]) -> int:
        nonlocal arrival, landed
        numbers, messages = read
        # Numbered on from the files landed before: their order of arrival, for events
        # without a log position.
        positions = list(range(arrival, arrival + len(messages)))
        arrival += len(messages)
        rows, bad = changes_from_messages(messages, None, key_columns, positions=positions)
        if landed:
            rows = as_landed_before(lh, str(name), rows)
        source = str(file.path)
        if bad:  # first, under the file's id too: a crash before the rows repeats neither
            quarantine = quarantine_records(messages, bad)
            for record, (i, _) in zip(quarantine, bad, strict=True):
                record["reason"] = f"{numbers[i]}: {record['reason']}"
            written = lh.write(
                f"{name}_quarantine",
                quarantine,
                source_system=source_system,
                source=source,
                txn=file.txn,
            )
            report.quarantined += 0 if written.skipped else len(quarantine)
        # Written even without rows: the file's id then marks it as done.
        written = lh.write(
            str(name), rows, source_system=source_system, source=source, txn=file.txn
        )
        landed = True
        if written.skipped:
            report.files_skipped.append(source)
            return 0
        changes: int = rows.num_rows
        report.files_ingested.append(source)
        report.changes += changes
        return changes

    def read(path: LandingPath) -> tuple[list[str], list[bytes]]:
        return _messages(path.suffix, read_all(landing, path).to_pybytes())

    take_in_each(lh, name, landing, EXTENSIONS, read=read, land=land, skip=skip, on_file=on_file)
    return report


def _next_arrival(lh: Lakehouse, table: str, schema: pa.Schema | None) -> int:
    """The number after the last arrival number of the table's rows (0 for a new table,
    ``schema`` None). Only events without a log position keep theirs (the sequence's last
    digits)."""
    if schema is None:
        return 0
    field = schema.field(schema.get_field_index("sequence")) if "sequence" in schema.names else None
    sequence = None if field is None else type_name(field.type)
    if field is None:
        raise LakehouseError(
            f"{table} is not a table of change rows: it has no sequence column",
            "land Debezium events in a table of their own",
        )
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        raise LakehouseError(
            f"{table} holds Debezium changes with a {sequence} sequence, written by an "
            "earlier version that ordered events by their time only",
            "land the events in a new table (or drop this one and land the files again): "
            "the sequence is now the events' position in the source's log, as text",
        )
    found = lh.sql(
        f"SELECT max(CAST(right(sequence, {WIDTH}) AS DECIMAL(38, 0))) FROM {table} "
        "WHERE substr(sequence, 2, 1) IN ('t', 'a')"
    ).scalar()
    return 0 if found is None else int(found) + 1


def as_landed_before(lh: Lakehouse, table: str, rows: pa.Table) -> pa.Table:
    """The rows, where one without a log position is an event the table (which exists)
    holds already, delivered again by a later file or message, with the sequence it has
    there: the CDC apply then counts it once, as it does an event with a position
    delivered twice."""
    sequences = rows["sequence"].to_pylist()
    unplaced = [i for i, s in enumerate(sequences) if s[1] in ("t", "a")]
    if not unplaced:
        return rows
    candidates = rows.take(unplaced).select(list(IDENTITY) + ["sequence"])
    candidates = candidates.append_column("__lh_index", pa.array(unplaced, pa.int64()))
    same = " AND ".join(f"b.{c} IS NOT DISTINCT FROM n.{c}" for c in IDENTITY)
    # The same time (the sequence up to its arrival number), then the first arrival.
    prefix = f"left(n.sequence, length(n.sequence) - {WIDTH})"
    con = lh.engine.cursor()
    con.register("__lh_debezium_new", candidates)
    try:
        found = lh.engine.query(
            f"SELECT n.__lh_index, min(b.sequence) FROM __lh_debezium_new n JOIN {table} b "
            f"ON {same} AND starts_with(b.sequence, {prefix}) "
            "AND length(b.sequence) = length(n.sequence) GROUP BY n.__lh_index"
        ).rows()
    finally:
        con.unregister("__lh_debezium_new")
    if not found:
        return rows
    for index, sequence in found:
        sequences[index] = sequence
    column = rows.schema.get_field_index("sequence")
    return rows.set_column(column, SEQUENCE, pa.array(sequences, pa.string()))


def _messages(suffix: str, data: bytes) -> tuple[list[str], list[bytes]]:
    """A file's messages (``data``; ``suffix``: its name's) and where each is ("line 3"):
    one per line, or, for a .json file holding one JSON document (an event, or an array of
    events), its events."""
    if suffix.lower() == ".json":
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            document = None  # not one document: JSON lines, then
        if isinstance(document, dict):
            return ["document"], [data]
        if isinstance(document, list):
            items = [json.dumps(item).encode() for item in document]
            return [f"item {i}" for i in range(1, len(items) + 1)], items
    lines = [(n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
    return [f"line {n}" for n, _ in lines], [line for _, line in lines]
