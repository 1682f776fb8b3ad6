"""Rows pushed to a bronze table (the body of ``POST /ingest/{table}``), each push once.

A push is JSON lines, read by ``jsonlines`` as files and messages are. The lines that are
not JSON objects go to ``<table>_quarantine`` (raw text, reason with the line number),
then the rows to the table, with the bronze metadata columns: ``_source_system`` as the
caller says (``http`` by default) and ``_source`` the push's request id.

With an idempotency key both writes commit with a Delta transaction identifier derived
from the key, so a push retried after a lost answer, a crash or a kill between the two
writes lands exactly once: a write whose identifier is in its table already is skipped,
and a push whose every write was skipped is a duplicate. Without a key each call lands.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.errors import InvalidNameError, LakehouseError, SchemaMismatchError
from lakehouse.ingest import jsonlines
from lakehouse.ingest.jsonlines import RESCUED, BadLine
from lakehouse.names import TableName, parse_table_name
from lakehouse.tables.prepared import METADATA_COLUMNS

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

SOURCE_SYSTEM = "http"
QUARANTINE = "_quarantine"
MAX_KEY = 255
MAX_SOURCE_SYSTEM = 255


@dataclass
class PushResult:
    table: str
    request_id: str
    accepted: int = 0  # rows this call landed in the table
    rescued: int = 0  # of those, rows with a value kept in _rescued_data
    quarantined: int = 0  # lines that are not JSON objects (in the quarantine table)
    bad: list[BadLine] = field(default_factory=list)
    version: int | None = None  # the table's version holding the rows
    duplicate: bool = False  # the key's push had landed before: nothing was written


def bronze_table(table: str) -> TableName:
    """The bronze table a push lands in: a landing table, not a quarantine table (whose
    name ends with ``_quarantine``); its quarantine table's name must be valid too."""
    name = parse_table_name(table)
    if name.layer != "bronze":
        raise LakehouseError(
            f"cannot push rows into {name}: pushed rows land in the bronze layer",
            f"push to bronze.{name.name}, and let a pipeline build {name} from it",
        )
    if name.name.endswith(QUARANTINE):
        landing = name.name[: -len(QUARANTINE)]
        raise LakehouseError(
            f"cannot push rows into {name}: it is a quarantine table, which holds only the "
            "lines its landing table refused",
            f"push to bronze.{landing}: lines that are not JSON objects go to {name} by themselves",
        )
    try:
        parse_table_name(f"{name}{QUARANTINE}")
    except InvalidNameError as exc:
        limit = 128 - len(QUARANTINE)
        raise LakehouseError(
            f"cannot push rows into {name}: its quarantine table's name would be too long",
            f"pushed tables have names of at most {limit} characters",
        ) from exc
    return name


def check_key(key: str) -> str:
    """An idempotency key: 1 to 255 printable ASCII characters."""
    return _printable(
        key,
        MAX_KEY,
        "Idempotency-Key",
        "use a UUID, or any ID of the batch that stays the same when the push is retried",
    )


def check_source_system(value: str) -> str:
    return _printable(
        value,
        MAX_SOURCE_SYSTEM,
        "source system",
        "name the system the rows come from, e.g. X-Source-System: shop-frontend",
    )


def _printable(value: str, most: int, what: str, hint: str) -> str:
    if not (1 <= len(value) <= most and all(" " <= c <= "~" for c in value)):
        raise LakehouseError(
            f"invalid {what}: it must be 1 to {most} printable ASCII characters", hint
        )
    return value


def request_id(key: str | None) -> str:
    """The push's id, kept in ``_source``: derived from the key (so a retry has the same
    id), or new for a push without one. With a key it is the transaction's app id too."""
    if key is None:
        return f"http:{uuid.uuid4()}"
    return "http:" + hashlib.sha256(key.encode()).hexdigest()[:32]


class Push:
    """One body read and shaped for its table, ready to land in two writes: first its bad
    lines into the quarantine table, then its rows into the table."""

    def __init__(
        self,
        lh: Lakehouse,
        table: str,
        data: bytes,
        *,
        key: str | None = None,
        source_system: str = SOURCE_SYSTEM,
    ) -> None:
        self.lh = lh
        self.name = bronze_table(table)
        self.key = None if key is None else check_key(key)
        self.source_system = check_source_system(source_system)
        self.request_id = request_id(self.key)
        # The key's transaction id; a push without a key writes without one (each Delta
        # transaction id stays in the table's state for good).
        self.txn = (self.request_id, 1) if self.key is not None else None
        if not data.strip():
            raise LakehouseError(
                "the body holds no lines", 'send one JSON object per line, e.g. {"id": 1}'
            )
        self.data = data
        schema = jsonlines.table_schema(lh, str(self.name))
        self.parsed = jsonlines.parse(data, jsonlines.text_columns(schema))
        self.records = self._shape()
        self.result = PushResult(str(self.name), self.request_id, bad=self.records.bad)
        self._skipped: list[bool] = []

    def _shape(self) -> jsonlines.Records:
        records = jsonlines.shape(self.lh, str(self.name), self.parsed)
        if records.rows.num_rows == 0:
            # Objects without one typed value ({} or nulls only) give no columns, hence no
            # rows: they still land, as rows of metadata and nulls.
            lines = sum(1 for line in self.data.splitlines() if line.strip())
            objects = lines - len(records.bad)
            if objects > 0:
                records.rows = pa.table({RESCUED: pa.nulls(objects, pa.string())})
        _check_columns(self.lh, self.name, records.rows)
        return records

    def quarantine(self) -> None:
        """The lines that are not JSON objects into ``<table>_quarantine``."""
        bad = self.records.bad
        if not bad:
            return
        rows = [{"raw_payload": b.raw, "reason": f"line {b.index + 1}: {b.reason}"} for b in bad]
        written = self.lh.write(
            f"{self.name}{QUARANTINE}",
            rows,
            source_system=self.source_system,
            source=self.request_id,
            txn=self.txn,
        )
        self._skipped.append(written.skipped)
        self.result.quarantined = len(bad)  # in the quarantine, by this call or an earlier

    def land(self) -> None:
        """The rows into the table, new columns added as they come."""
        if self.records.rows.num_rows == 0:
            return
        for attempt in range(2):
            try:
                written = self.lh.write(
                    str(self.name),
                    self.records.rows,
                    evolve=True,
                    source_system=self.source_system,
                    source=self.request_id,
                    txn=self.txn,
                )
                break
            except SchemaMismatchError:
                # Another push changed a column's type since the rows were shaped (two
                # pushes creating one table, say): shaped again, a value that does not
                # fit is rescued instead.
                if attempt:
                    raise
                self.records = self._shape()
        self._skipped.append(written.skipped)
        self.result.version = written.version
        if not written.skipped:
            self.result.accepted = self.records.rows.num_rows
            self.result.rescued = self.records.rescued

    def finish(self) -> PushResult:
        """The outcome: a push whose every write was skipped had landed before."""
        if self._skipped and all(self._skipped):
            self.result.duplicate = True
            self.result.accepted = self.result.rescued = self.result.quarantined = 0
        return self.result


def land(
    lh: Lakehouse,
    table: str,
    data: bytes,
    *,
    key: str | None = None,
    source_system: str = SOURCE_SYSTEM,
) -> PushResult:
    """Land a body of JSON lines in the bronze ``table`` (created on the first push), at
    most once per ``key``. Bad lines go to the quarantine table; ``bad`` lists them."""
    push = Push(lh, table, data, key=key, source_system=source_system)
    push.quarantine()
    push.land()
    return push.finish()


def _check_columns(lh: Lakehouse, name: TableName, rows: pa.Table) -> None:
    """Refuse, before anything is written, fields Delta cannot store: column names are
    case-insensitive, so a field that differs only in case from another field, a column
    of the table or a metadata column cannot be a column of its own; Parquet has no
    empty structs."""
    known = {c.lower(): c for c in (*METADATA_COLUMNS, RESCUED)}
    # The catalog's copy of the schema (recorded with every commit) spares a read of the
    # Delta log; shaping the rows registered a table the catalog did not know yet.
    info = lh.catalog.get(str(name))
    if info is not None:
        known.update({c["name"].lower(): c["name"] for c in info.columns})
    seen: dict[str, str] = {}
    for column in rows.column_names:
        if not column:
            raise LakehouseError(
                "a line has a field with an empty name, which cannot be a column",
                "give every field of the objects a name",
            )
        lower = column.lower()
        other = seen.get(lower) or known.get(lower)
        if other is not None and other != column:
            raise LakehouseError(
                f"field {column!r} differs only in case from {other!r}: column names of "
                f"{name} are case-insensitive",
                f"use one spelling of the name in every line (the table's is {other!r})"
                if other in known.values()
                else "use one spelling of the name in every line",
            )
        seen[lower] = column
        if _has_empty_struct(rows.schema.field(column).type):
            raise LakehouseError(
                f"field {column!r} holds only empty objects ({{}}) in this body, which a "
                "Parquet file cannot store",
                "leave the field out, or send null, where it has nothing",
            )


def _has_empty_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return t.num_fields == 0 or any(_has_empty_struct(f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_empty_struct(t.value_type)
    if pa.types.is_map(t):
        return _has_empty_struct(t.key_type) or _has_empty_struct(t.item_type)
    return False
