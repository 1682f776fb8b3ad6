"""A database table into bronze: whole (``full``: one overwrite commit) or incrementally,
by a column that grows with every change (an id, an ``updated_at``), exactly once.

An incremental load commits two Delta transaction identifiers with its rows, in the same
commit (as Kafka offsets are): ``db:<source>:<column>`` whose number is the high-water
mark (the largest value of the column landed: an integer as is, a timestamp in
microseconds since 1970, a date in days), and ``db:<source>:load``, the load's sequence
number. The next load reads the rows at or past the mark (inclusive: rows changed at the
mark's exact value after the last read are not missed) and drops those whose content the
table already holds at the mark (by ``_record_hash``), so none is doubled. A load killed
anywhere before its commit leaves nothing; the next one reads the same rows again; two
loads that read the same mark cannot both commit (the sequence number is taken once).

Rows carry the bronze metadata columns (``_source`` is the source without password). New
source columns are added to the table (``evolve``). Rows whose incremental column is NULL
are never read by an incremental load (a full load takes them).
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import LakehouseError
from lakehouse.ingest import db_source, db_types
from lakehouse.ingest.db_source import Column, DbSource, parse_source
from lakehouse.names import parse_table_name
from lakehouse.quoting import ident, string

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

EPOCH = dt.datetime(1970, 1, 1)
# A table read in key ranges side by side when it holds at least this many rows (by the
# database's estimate) and has an integer primary key; see ``parallel`` below.
PARALLEL_ROWS = 2_000_000


@dataclass
class DbReport:
    table: str
    source: str
    mode: str  # full or incremental
    rows: int = 0  # rows landed
    read: int = 0  # rows read from the source
    already_held: int = 0  # rows read at the mark whose content the table holds
    version: int | None = None  # the table's version after the load (None: no commit)
    mark: Any = None  # the high-water mark after the load
    previous_mark: Any = None
    schema_changes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("mark", "previous_mark"):
            if isinstance(out[key], dt.date):
                out[key] = out[key].isoformat()
        return out


def mark_id(source: DbSource, column: str) -> str:
    return f"db:{source.shown}:{column}"


def load_id(source: DbSource) -> str:
    return f"db:{source.shown}:load"


def ingest_table(
    lh: Lakehouse,
    url: str,
    table: str,
    into: str,
    *,
    incremental_column: str | None = None,
    full: bool = False,
    source_system: str | None = None,
    parallel: int | None = None,
) -> DbReport:
    """Load the source ``table`` (``SCHEMA.TABLE``) of the database at ``url`` into the
    bronze table ``into``. ``parallel``: how many key ranges to read side by side (None:
    by the table's size; 1: one read)."""
    name = parse_table_name(into)
    if name.layer != "bronze":
        raise LakehouseError(f"database tables are ingested into bronze, not {name.layer}")
    if full and incremental_column:
        raise LakehouseError("--full and --incremental-column exclude each other")
    source = parse_source(url, table)
    declared = db_source.columns(source)
    if incremental_column is None:
        return _full(lh, source, declared, str(name), source_system, parallel)
    return _incremental(
        lh, source, declared, str(name), incremental_column, source_system, parallel
    )


def _full(
    lh: Lakehouse,
    source: DbSource,
    declared: list[Column],
    into: str,
    source_system: str | None,
    parallel: int | None,
) -> DbReport:
    report = DbReport(into, source.shown, "full")
    data = _read(source, declared, None, parallel)
    report.read = report.rows = data.num_rows
    written = lh.write(
        into,
        data,
        mode="overwrite",
        evolve=True,
        source_system=source_system,
        source=source.shown,
    )
    report.version = written.version
    report.schema_changes = written.schema_changes
    return report


def _incremental(
    lh: Lakehouse,
    source: DbSource,
    declared: list[Column],
    into: str,
    column: str,
    source_system: str | None,
    parallel: int | None,
) -> DbReport:
    names = [c.name for c in declared]
    if column not in names:
        raise LakehouseError(
            f"{source.qualified_name} has no column {column!r}",
            "the columns are " + ", ".join(names),
        )
    report = DbReport(into, source.shown, "incremental")
    marks, loads = mark_id(source, column), load_id(source)
    held, sequence, kind = None, 0, None
    if lh.exists(into):
        t = lh.table(into)
        held = t.transaction_version(marks)
        sequence = t.transaction_version(loads) or 0
        if held is not None and column in t.schema.names:
            kind = t.schema.field(column).type
    mark = _decode(held, kind) if held is not None and kind is not None else None
    report.previous_mark = mark
    where = None
    if mark is not None:
        where = f"{source.quote(column)} >= {db_source.sql_literal(source, mark)}"
    data = _read(source, declared, where, parallel)
    report.read = data.num_rows
    values = data.column(column)
    _check_kind(source, column, values.type)
    if data.num_rows == 0 or values.null_count == data.num_rows:
        report.mark = mark
        return report
    top = pc.max(values).as_py()
    if mark is not None:
        data, report.already_held = _drop_held(lh, into, source, data, column, mark)
    report.mark = top
    if data.num_rows == 0:
        return report
    written = lh.write(
        into,
        data,
        evolve=True,
        source_system=source_system,
        source=source.shown,
        txn=[(loads, sequence + 1), (marks, _encode(top))],
    )
    if written.skipped:  # another load of the same mark committed first
        raise LakehouseError(
            f"another load of {source.shown} into {into} committed first",
            "nothing was written: run the load again to take what is newer",
        )
    report.rows = data.num_rows
    report.version = written.version
    report.schema_changes = written.schema_changes
    return report


def _check_kind(source: DbSource, column: str, kind: pa.DataType) -> None:
    if not (pa.types.is_integer(kind) or pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        raise LakehouseError(
            f"{source.qualified_name}.{column} is of type {kind}: an incremental column must "
            "be an integer, a date or a timestamp",
            "use a column that grows with every change (an id, an updated_at), or --full",
        )


def _encode(value: Any) -> int:
    """A mark as a transaction number: integers as they are, timestamps in microseconds
    since 1970 (UTC for those with a time zone), dates in days."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return int((value - EPOCH) // dt.timedelta(microseconds=1))
    if isinstance(value, dt.date):
        return (value - EPOCH.date()).days
    return int(value)


def _decode(number: int, kind: pa.DataType) -> Any:
    if pa.types.is_timestamp(kind):
        value = EPOCH + dt.timedelta(microseconds=number)
        return value.replace(tzinfo=dt.UTC) if kind.tz else value
    if pa.types.is_date(kind):
        return EPOCH.date() + dt.timedelta(days=number)
    return number


def _drop_held(
    lh: Lakehouse, into: str, source: DbSource, data: pa.Table, column: str, mark: Any
) -> tuple[pa.Table, int]:
    """The rows without those at the mark whose content the table holds."""
    values = data.column(column)
    at_mark = pc.fill_null(pc.equal(values, pa.scalar(mark, values.type)), False)
    if not pc.any(at_mark).as_py():
        return data, 0
    col, src = ident(column), string(source.shown)
    # The rows the table holds at the committed mark (the files whose statistics leave the
    # mark out are not read): not the whole column, to find its largest value again.
    held = lh.sql(
        f"SELECT DISTINCT _record_hash FROM {into} WHERE _source = {src} AND {col} = "
        f"{_literal(mark)}"
    ).to_arrow()
    ties = data.filter(at_mark)
    seen = pc.is_in(record_hashes(ties), held.column(0))
    # Rows landed before new source columns came have their hash over the old ones.
    known = [c for c in data.schema.names if c in lh.table(into).schema.names]
    if len(known) < len(data.schema.names):
        seen = pc.or_(seen, pc.is_in(record_hashes(ties.select(known)), held.column(0)))
    drop = pc.fill_null(at_mark, False)
    index = pc.indices_nonzero(drop)
    keep_ties = pc.invert(seen)
    mask = drop.to_pylist()
    for i, keep in zip(index.to_pylist(), keep_ties.to_pylist(), strict=True):
        mask[i] = not keep
    drop = pa.array(mask)
    dropped = pc.sum(drop.cast(pa.int64())).as_py() or 0
    return data.filter(pc.invert(drop)), dropped


def _literal(mark: Any) -> str:
    """A mark (see ``_decode``) as a SQL literal of its type."""
    if isinstance(mark, dt.datetime):
        kind = "TIMESTAMPTZ" if mark.tzinfo is not None else "TIMESTAMP"
        return f"CAST({string(mark.isoformat())} AS {kind})"
    if isinstance(mark, dt.date):
        return f"CAST({string(mark.isoformat())} AS DATE)"
    return str(int(mark))


def record_hashes(data: pa.Table) -> pa.ChunkedArray:
    """Each row's ``_record_hash``, as the bronze writer computes it."""
    from lakehouse.scratch import scratch
    from lakehouse.tables.convert import cast_batches, normalize_schema

    given = normalize_schema(data.schema)
    rows = pa.Table.from_batches(list(cast_batches(data, given)), given)  # noqa: F841
    fields = ", ".join(f"{ident(c)} := {ident(c)}" for c in data.schema.names)
    con = scratch()
    try:
        out = con.sql(f"SELECT md5(to_json(struct_pack({fields}))) FROM rows").to_arrow_table()
    finally:
        con.close()
    return out.column(0)


# -- reading -------------------------------------------------------------------------------
def _read(
    source: DbSource, declared: list[Column], where: str | None, parallel: int | None
) -> pa.Table:
    select = ", ".join(source.quote(c.name) for c in declared)
    base = f"SELECT {select} FROM {source.from_clause}"
    ranges = _ranges(source, where, parallel)
    if len(ranges) <= 1:
        sql = base + (f" WHERE {where}" if where else "")
        return db_types.to_bronze(db_source.read_arrow(source, sql), declared, source)
    queries = [base + " WHERE " + " AND ".join(x for x in (where, r) if x) for r in ranges]
    with ThreadPoolExecutor(len(queries)) as pool:
        parts = list(pool.map(lambda q: db_source.read_arrow(source, q), queries))
    parts = [db_types.to_bronze(p, declared, source) for p in parts]
    schema = parts[0].schema
    return pa.concat_tables([p.cast(schema) for p in parts])


def _ranges(source: DbSource, where: str | None, parallel: int | None) -> list[str]:
    """Conditions splitting the table into ranges of its integer primary key, to be read
    side by side; none for a small table, one without such a key, or ``parallel=1``."""
    if parallel == 1 or source.dialect != "postgresql":
        return []
    rel = f"{string(source.schema or 'public')}||'.'||{string(source.table)}"
    found = db_source.query_rows(
        source,
        "SELECT c.reltuples::bigint AS estimate, a.attname AS key, t.typname AS kind "
        "FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
        "JOIN pg_type t ON t.oid = a.atttypid "
        f"WHERE c.oid = to_regclass({rel}) AND i.indnkeyatts = 1",
    )
    if not found or found[0]["kind"] not in ("int2", "int4", "int8"):
        return []
    key = source.quote(found[0]["key"])
    estimate = found[0]["estimate"]
    if where and not parallel and estimate >= PARALLEL_ROWS:
        # An incremental read: what counts is the rows past the mark (found through the
        # column's index when it has one), not the table's size.
        estimate = db_source.query_rows(
            source, f"SELECT count(*) AS n FROM {source.from_clause} WHERE {where}"
        )[0]["n"]
    workers = parallel or (min(os.cpu_count() or 1, 4) if estimate >= PARALLEL_ROWS else 1)
    if workers <= 1:
        return []
    # OFFSET 0 keeps the condition's own plan: without it PostgreSQL may walk the key's
    # index from one end until a row meets the condition (most of a table loaded before).
    inner = f"SELECT {key} AS k FROM {source.from_clause}" + (f" WHERE {where}" if where else "")
    bounds = db_source.query_rows(
        source, f"SELECT min(k) AS lo, max(k) AS hi FROM ({inner} OFFSET 0) AS s"
    )[0]
    lo, hi = bounds["lo"], bounds["hi"]
    if lo is None or hi - lo < workers:
        return []
    step = (hi - lo + workers) // workers
    cuts = [lo + i * step for i in range(workers)] + [hi + 1]
    return [f"{key} >= {a} AND {key} < {b}" for a, b in zip(cuts, cuts[1:], strict=False)]
