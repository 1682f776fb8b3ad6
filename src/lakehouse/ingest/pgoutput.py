"""pgoutput's binary messages (protocol version 1) decoded into change rows.

PostgreSQL's built-in logical decoding plugin sends, per transaction, Begin, the changes
(Insert, Update, Delete, Truncate, each after the Relation message describing its table)
and Commit. ``decode`` turns the complete transactions among them into ``change_rows``;
a column's text (as the server writes it) becomes its JSON value (``json_value``).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.ingest.change_rows import change_row, qualified

# -- pgoutput messages (protocol version 1) -----------------------------------------------------
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class Column:
    name: str
    type_oid: int
    is_key: bool


@dataclass
class Relation:
    oid: int
    schema: str
    name: str
    identity: str  # d default, f full, i index, n nothing
    columns: list[Column]
    keys: list[str] = field(default_factory=list)  # the replica identity's (or primary) key


@dataclass
class Transaction:
    xid: int
    commit_time: datetime
    end_lsn: int = 0  # where the commit record ends: the slot moves here once it is stored
    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


class _Message:
    """A cursor over one binary message (network byte order, C strings; text in the
    database's encoding, which SQL-read messages are not converted from)."""

    def __init__(self, data: bytes, codec: str) -> None:
        self.data = data
        self.codec = codec
        self.at = 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from("!" + fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def text(self) -> str:
        end = self.data.index(b"\0", self.at)
        value = self.data[self.at : end].decode(self.codec, "replace")
        self.at = end + 1
        return value

    def tuple(self) -> list[tuple[str, str | None]]:
        """TupleData: per column n (null), u (unchanged TOASTed value, not sent) or t."""
        values: list[tuple[str, str | None]] = []
        for _ in range(self.take("h")):
            kind = chr(self.take("B"))
            if kind == "t":
                size = self.take("i")
                values.append((kind, self.data[self.at : self.at + size].decode(self.codec)))
                self.at += size
            elif kind in "nu":
                values.append((kind, None))
            else:  # 'b' (binary) is only sent when asked for
                raise LakehouseError(f"pgoutput sent a column in an unknown format {kind!r}")
        return values


def decode(
    messages: list[tuple[int, bytes]],
    database: str,
    primary_key: Callable[[int], list[str]],
    codec: str = "utf-8",
) -> list[Transaction]:
    """The complete transactions among pgoutput messages (change LSN, message), in commit
    order, with their change rows. ``primary_key(oid)`` names a table's primary key columns
    (needed for REPLICA IDENTITY FULL tables, whose every column is flagged as key);
    ``codec`` is the database's encoding."""
    relations: dict[int, Relation] = {}
    done: list[Transaction] = []
    current: Transaction | None = None
    for lsn, data in messages:
        m = _Message(data, codec)
        kind = chr(m.take("B"))
        if kind == "B":
            m.take("Q")  # the commit's LSN, given again by the commit message
            micros, xid = m.take("q"), m.take("I")
            current = Transaction(xid, PG_EPOCH + timedelta(microseconds=micros))
        elif kind == "C":
            m.take("B")
            m.take("Q")
            end_lsn = m.take("Q")
            if current is not None:
                current.end_lsn = end_lsn
                done.append(current)
            current = None
        elif kind == "R":
            relation = _relation(m)
            if relation.identity == "f":
                relation.keys = primary_key(relation.oid) or [c.name for c in relation.columns]
            else:
                relation.keys = [c.name for c in relation.columns if c.is_key]
            relations[relation.oid] = relation
        elif kind in "IUD" and current is not None:
            relation = relations[m.take("I")]
            current.rows += _changes(kind, m, relation, lsn, current, database)
        elif kind == "T" and current is not None:
            count = m.take("i")
            m.take("B")  # CASCADE / RESTART IDENTITY: the rows are gone either way
            for _ in range(count):
                relation = relations[m.take("I")]
                current.truncated.append(qualified(relation.schema, relation.name))
                current.rows.append(_row(relation, "truncate", None, None, lsn, current, database))
        # Y (type), O (origin) and M (message) carry nothing a change row needs.
    return done


def _relation(m: _Message) -> Relation:
    oid = m.take("I")
    schema, name = m.text() or "pg_catalog", m.text()
    identity = chr(m.take("B"))
    columns = []
    for _ in range(m.take("h")):
        flags = m.take("B")
        column = m.text()
        type_oid = m.take("I")
        m.take("i")  # type modifier
        columns.append(Column(column, type_oid, bool(flags & 1)))
    return Relation(oid, schema, name, identity, columns)


def _changes(
    kind: str, m: _Message, relation: Relation, lsn: int, txn: Transaction, database: str
) -> list[dict[str, Any]]:
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    unchanged: list[str] = []
    marker = chr(m.take("B"))
    if marker in "KO":  # the old row: its key columns only (K), or all of it (O)
        old, _ = _image(relation, m.tuple(), key_only=marker == "K")
        marker = chr(m.take("B")) if m.at < len(m.data) else ""  # a delete ends here
    if marker == "N":
        new, unchanged = _image(relation, m.tuple())
    if kind == "I":
        return [_row(relation, "insert", None, new, lsn, txn, database)]
    if kind == "D":
        return [_row(relation, "delete", old, None, lsn, txn, database)]
    assert new is not None
    if old is not None and unchanged:  # a full old row holds what the new one left out
        known = {**old, **new}
        new = {c.name: known[c.name] for c in relation.columns if c.name in known}
        unchanged = [c for c in unchanged if c not in old]
    if old is not None and _key(relation, old) != _key(relation, new):
        # The key itself changed: the old key's row is gone and a new key's row appears.
        return [
            _row(relation, "delete", old, None, lsn, txn, database),
            _row(relation, "insert", None, new, lsn, txn, database, unchanged),
        ]
    return [_row(relation, "update", old, new, lsn, txn, database, unchanged)]


def _image(
    relation: Relation, values: list[tuple[str, str | None]], key_only: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """A row image as JSON-ready values, and the columns left out because PostgreSQL did
    not send their (unchanged, TOASTed) values."""
    image: dict[str, Any] = {}
    unchanged: list[str] = []
    for column, (kind, text) in zip(relation.columns, values, strict=True):
        if key_only and column.name not in relation.keys:
            continue
        if kind == "u":
            unchanged.append(column.name)
        else:
            image[column.name] = None if text is None else json_value(column.type_oid, text)
    return image, unchanged


def _key(relation: Relation, image: dict[str, Any]) -> dict[str, Any]:
    return {k: image.get(k) for k in relation.keys}


def _row(
    relation: Relation,
    operation: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    lsn: int,
    txn: Transaction,
    database: str,
    unchanged: list[str] | None = None,
) -> dict[str, Any]:
    image = after if after is not None else before
    return change_row(
        qualified(relation.schema, relation.name),
        operation,
        primary_key=_key(relation, image) if image is not None and relation.keys else None,
        before=before,
        after=after,
        sequence=lsn,
        changed_at=txn.commit_time.isoformat(),
        schema_name=relation.schema,
        database_name=database,
        transaction_id=str(txn.xid),
        lsn=lsn,
        unchanged=unchanged,
    )


# -- values: PostgreSQL's text output as JSON ----------------------------------------------------
INTEGERS = {20, 21, 23, 26}  # int8, int2, int4, oid
FLOATS = {700, 701}
BOOL, TIMESTAMP, TIMESTAMPTZ, JSON, JSONB = 16, 1114, 1184, 114, 3802
_OFFSET = re.compile(r"([+-]\d\d)$")


def json_value(type_oid: int, text: str) -> Any:
    """A column's text (as the server writes it with DateStyle ISO, TimeZone UTC) as a JSON
    value: integers and floats as numbers, booleans as true/false, json/jsonb as their JSON
    value, timestamps as ISO 8601 text; numeric (exact) and everything else as the text."""
    if type_oid in INTEGERS:
        return int(text)
    if type_oid in FLOATS:
        number = float(text)
        return number if number - number == 0 else text  # NaN, Infinity are not JSON numbers
    if type_oid == BOOL:
        return text == "t"
    if type_oid in (JSON, JSONB):
        return json.loads(text)
    if type_oid in (TIMESTAMP, TIMESTAMPTZ) and text[:1].isdigit() and not text.endswith("BC"):
        iso = text.replace(" ", "T", 1)
        return _OFFSET.sub(r"\1:00", iso) if type_oid == TIMESTAMPTZ else iso
    return text
