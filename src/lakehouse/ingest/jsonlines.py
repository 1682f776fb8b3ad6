"""JSON lines into rows for a table: each line one JSON object.

Arrow parses the lines whole; if a line is not a JSON object, DuckDB finds the lines that
are not and those are returned as bad lines (with the reason Python's parser gives), the
rest is parsed whole. Only data whose values do not fit one type per column (or the
table's types) is read line by line in Python, so that single values can be rescued: a
value that does not fit its column's type is kept, as JSON, in ``_rescued_data``.

Files, Kafka messages and HTTP bodies all land through here, so a record is read the same
way whichever way it came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakehouse import nesting
from lakehouse.tables.prepared import METADATA_COLUMNS

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

RESCUED = "_rescued_data"
BLOCK_SIZE = 16 << 20  # Arrow parses JSON in blocks; a line must fit in one


@dataclass
class BadLine:
    index: int  # the line's position, from 0
    raw: str
    reason: str


@dataclass
class Parsed:
    """Lines read, not yet shaped for a table (see ``shape``)."""

    data: pa.Buffer  # the lines a parser may read (refused lines left blank)
    rows: pa.Table | list[dict[str, Any]] | None  # None: not read yet (whole reading gave up)
    bad: list[BadLine]
    refused: list[BadLine] = field(default_factory=list)  # nested too deeply to parse


@dataclass
class Records:
    """Lines read and shaped for a table."""

    rows: pa.Table
    rescued: int
    bad: list[BadLine]


LOOK = object()  # a schema argument's default: look the table up


def read(lh: Lakehouse, table: str, data: bytes | pa.Buffer, schema: Any = LOOK) -> Records:
    """The lines of ``data`` as rows for ``table`` (which may not exist yet). ``schema``
    is the table's when the caller has it (None: no table yet)."""
    schema = table_schema(lh, table, schema)
    return shape(lh, table, parse(data, text_columns(schema)), schema)


def table_schema(lh: Lakehouse, table: str, schema: Any = LOOK) -> pa.Schema | None:
    if schema is not LOOK:
        return schema
    return lh.table(table).schema if lh.exists(table) else None


def text_columns(schema: pa.Schema | None) -> tuple[str, ...]:
    """The table's text columns (read as text at once: no type guessing to undo)."""
    if schema is None:
        return ()
    return tuple(
        f.name
        for f in schema
        if f.name not in METADATA_COLUMNS
        and f.name != RESCUED
        and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    )


def parse(data: bytes | pa.Buffer, text: tuple[str, ...] = ()) -> Parsed:
    """The lines read whole by Arrow where it reads them as Python would; else left for
    ``shape`` to read line by line. Needs no table, so it can run ahead of a write;
    ``text`` names columns known to hold text."""
    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    buffer, refused = _without_deep_lines(buffer)
    whole = _read_whole(buffer, text)
    if whole is None:
        return Parsed(buffer, None, [], refused)
    return Parsed(buffer, whole[0], whole[1], refused)


def shape(lh: Lakehouse, table: str, parsed: Parsed, schema: Any = LOOK) -> Records:
    rows = parsed.rows
    schema = table_schema(lh, table, schema)
    if isinstance(rows, pa.Table):
        fitted = fit_arrow(lh, table, rows, schema)
        if fitted is not None:
            return Records(fitted, 0, _merged(parsed.bad, parsed.refused))
    good, bad = per_line(parsed.data.to_pybytes())
    fitted, rescued = fit_rows(lh, table, good, schema)
    return Records(fitted, rescued, _merged(bad, parsed.refused))


def _merged(bad: list[BadLine], refused: list[BadLine]) -> list[BadLine]:
    return sorted(bad + refused, key=lambda b: b.index) if refused else bad


def _without_deep_lines(data: pa.Buffer) -> tuple[pa.Buffer, list[BadLine]]:
    """The lines with those no parser may read left blank (so that every other line keeps
    its number), and those lines as bad lines: lines nested deeper than
    ``nesting.MAX_DEPTH`` (parsers recurse once per level, and Arrow's crashes the
    process past some thousands), and lines whose brackets do not balance (invalid JSON,
    which Arrow, reading on at the next line, would nest deeper with every such line)."""
    raw = np.frombuffer(data, np.uint8)
    if raw.size == 0:
        return data, []
    # Lines end as Python's splitlines ends them (the per-line reader's numbering).
    ends = raw == 10
    ends[:-1] |= (raw[:-1] == 13) & (raw[1:] != 10)
    ends[-1] |= raw[-1] == 13
    starts = np.concatenate([[0], np.flatnonzero(ends) + 1])
    starts = starts[:-1] if starts[-1] == raw.size else starts
    deepest, unbalanced = nesting.segment_depths(raw, starts)
    refused = np.flatnonzero((deepest > nesting.MAX_DEPTH) | unbalanced)
    if refused.size == 0:
        return data, []
    blanked = raw.copy()
    bounds = np.append(starts, raw.size)
    bad: list[BadLine] = []
    for i in refused.tolist():
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        line = raw[lo:hi].tobytes().rstrip(b"\r\n")
        blanked[lo : lo + len(line)] = 32
        if deepest[i] > nesting.MAX_DEPTH:
            reason = nesting.too_deep_message(int(deepest[i]), "the line")
        else:  # as deep as a parser may go: Python's gives the reason
            reason = _reason(line) or "invalid JSON: its brackets do not balance"
        bad.append(BadLine(i, line.decode(errors="replace"), reason))
    return pa.py_buffer(blanked), bad


def _reason(line: bytes) -> str | None:
    """Why Python's parser refuses a line as a record; None if it reads an object."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"invalid JSON: {exc}"
    return None if isinstance(record, dict) else "not a JSON object"


def per_line(text: bytes) -> tuple[list[dict[str, Any]], list[BadLine]]:
    """Each line parsed by Python; empty lines are skipped."""
    good: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    for index, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            bad.append(BadLine(index, line.decode(errors="replace"), f"invalid JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            bad.append(BadLine(index, line.decode(errors="replace"), "not a JSON object"))
            continue
        good.append(record)
    return good, bad


def _read_whole(
    data: pa.Buffer, text: tuple[str, ...] = ()
) -> tuple[pa.Table, list[BadLine]] | None:
    """JSON lines read whole: the records as Arrow, typed as the per-line reader would
    type them, and the lines that are not JSON objects, with the per-line reader's
    reasons. None when only the per-line reader can say what the lines hold: a column with
    values of several types, nested values, a line Arrow and Python disagree on."""
    raw = np.frombuffer(data, np.uint8)
    if raw.size == 0:
        return None
    starts = np.concatenate([[0], np.flatnonzero(raw == 10) + 1])
    starts = starts[:-1] if starts[-1] == raw.size else starts
    large = raw.size >= 2**31  # the lines as one string array (64-bit offsets if large)
    offsets = np.append(starts, raw.size).astype(np.int64 if large else np.int32)
    kind = pa.LargeStringArray if large else pa.StringArray
    lines = kind.from_buffers(len(starts), pa.py_buffer(offsets), data)
    try:  # Arrow's JSON parser takes any bytes; Python's rejects what is not UTF-8
        lines.validate(full=True)
    except pa.ArrowInvalid:
        return None
    # Arrow is given only lines that start an object: a line that starts with a bare
    # value (`null`...) can crash its reader (apache/arrow#47409). The others go through
    # DuckDB's check first. Arrow also reads two objects on one line; Python does not. When
    # every line starts an object and there are as many rows as lines, each line was one.
    table = None
    if (raw[starts] == ord("{")).all():
        table = _parse_json_lines(data, text)
        if table is not None and table.num_rows == starts.size:
            return table, []
    found = _without_bad_lines(data, raw, offsets, lines)
    if found is None:
        return None
    good, bad = found
    if not bad and table is not None:  # each line one object: Arrow read them
        return table, []
    table = _parse_json_lines(good, text) if len(good) else None
    return None if table is None else (table, bad)


def _parse_json_lines(data: pa.Buffer, text: tuple[str, ...] = ()) -> pa.Table | None:
    # A column of the table missing from every line reads as nulls: the same rows. A value
    # that is not text: every type inferred instead.
    table = _read_json(data, text) if text else None
    if table is None:
        text = ()
        table = _read_json(data)
        if table is None:
            return None
    # Arrow reads text that looks like a time as a timestamp; Python's json keeps text.
    timed = [f.name for f in table.schema if _is_time(f.type)]
    if timed:
        order = table.column_names
        table = _read_json(data, (*text, *timed))
        if table is None or not set(order) <= set(table.column_names):
            return None
        table = table.select(order)
    if table.num_columns == 0 or any(_unlike_python(c) for c in table.columns):
        return None
    return table


def _read_json(data: pa.Buffer, text: tuple[str, ...] = ()) -> pa.Table | None:
    """Arrow's reading of the lines (``text`` columns as text); None where it gives up."""
    import pyarrow.json as pajson

    try:
        return pajson.read_json(
            pa.BufferReader(data),
            read_options=pajson.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=_as_text(text) if text else None,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None


def _as_text(columns: tuple[str, ...]) -> Any:
    import pyarrow.json as pajson

    return pajson.ParseOptions(
        explicit_schema=pa.schema([pa.field(c, pa.string()) for c in dict.fromkeys(columns)]),
        unexpected_field_behavior="infer",
    )


def _is_time(t: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t))


def _unlike_python(column: pa.ChunkedArray) -> bool:
    """A column the per-line reader would type differently: nested values (typed from
    Python objects another way), or numbers beyond 64-bit integers (Arrow makes them
    floats, the per-line reader keeps such a column as text)."""
    t = column.type
    if pa.types.is_nested(t) or _is_time(t):
        return True
    if pa.types.is_floating(t) and column.null_count < len(column):
        import pyarrow.compute as pc

        largest = pc.max(pc.abs(column)).as_py()
        return largest is not None and not largest < 2.0**63
    return False


def _without_bad_lines(
    data: pa.Buffer, raw: np.ndarray, offsets: np.ndarray, lines: pa.Array
) -> tuple[pa.Buffer, list[BadLine]] | None:
    """The lines without those that are not JSON objects, and those lines as quarantine
    records. DuckDB checks every line; Python's parser then gives the reason for the few
    it rejected (and has the last word: if it reads one as an object, the lines are left
    to the per-line reader). None also when line numbers could differ from the per-line
    reader's (a carriage return that ends a line alone)."""
    returns = np.count_nonzero(raw == 13)
    if returns and returns != np.count_nonzero((raw[:-1] == 13) & (raw[1:] == 10)):
        return None
    suspects = _not_objects(lines)
    bad: list[BadLine] = []
    for i in suspects.tolist():
        line = data[int(offsets[i]) : int(offsets[i + 1])].to_pybytes().rstrip(b"\n")
        line = line[:-1] if line.endswith(b"\r") else line
        if not line.strip():
            continue  # an empty line: skipped, as the per-line reader does
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            bad.append(BadLine(i, line.decode(errors="replace"), f"invalid JSON: {exc}"))
            continue
        if isinstance(record, dict):
            return None
        bad.append(BadLine(i, line.decode(errors="replace"), "not a JSON object"))
    keep = np.ones(len(lines), bool)
    keep[suspects] = False
    kept = lines.filter(pa.array(keep))
    ends = np.frombuffer(kept.buffers()[1], offsets.dtype)[
        kept.offset : kept.offset + len(kept) + 1
    ]
    return kept.buffers()[2][int(ends[0]) : int(ends[-1])], bad


def _not_objects(lines: pa.Array) -> np.ndarray:
    """The positions of the lines that are not one JSON object each (empty ones too)."""
    import duckdb

    numbered = pa.table({"i": pa.array(np.arange(len(lines)), pa.int64()), "line": lines})  # noqa: F841
    con = duckdb.connect()
    try:
        found = con.sql(
            """
            SELECT i FROM numbered
            WHERE NOT coalesce(
                CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END, false)
            ORDER BY i
            """
        ).fetchnumpy()["i"]
    finally:
        con.close()
    return np.asarray(found, np.int64)


def fit_arrow(lh: Lakehouse, table: str, data: pa.Table, schema: Any = LOOK) -> pa.Table | None:
    """Records read whole, shaped as the per-line reader shapes them; None when a column's
    values do not all fit the table's type for it (only the per-line reader can rescue a
    single value)."""
    schema = table_schema(lh, table, schema)
    types = {f.name: f.type for f in schema} if schema is not None else {}
    columns: dict[str, pa.ChunkedArray | pa.Array] = {}
    for column, values in zip(data.column_names, data.columns, strict=True):
        if column in METADATA_COLUMNS or column == RESCUED:
            continue
        target = types.get(column)
        if target is None and pa.types.is_null(values.type):
            continue  # a new column of nulls only: it gets a type with its first value
        if target is None or values.type == target:
            columns[column] = values
        elif pa.types.is_null(values.type):
            columns[column] = pa.nulls(len(values), target)
        elif pa.types.is_integer(values.type) and (
            pa.types.is_integer(target) or pa.types.is_floating(target)
        ):
            try:  # a safe cast fails where Python's conversion would
                columns[column] = values.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None
        else:
            return None
    if not columns:
        return None
    if RESCUED in types:
        columns[RESCUED] = pa.nulls(data.num_rows, pa.string())
    return pa.table(columns)


def fit_rows(
    lh: Lakehouse, table: str, rows: pa.Table | list[dict[str, Any]], schema: Any = LOOK
) -> tuple[pa.Table, int]:
    """Rows shaped for the table: a value its column's type cannot hold is moved to
    ``_rescued_data`` (JSON of column: value) and the column left null. A column the table
    does not have whose values are all null is left out (it has no type to take yet)."""
    if isinstance(rows, pa.Table):
        return _typed_nulls(rows, table_schema(lh, table, schema)), 0
    schema = table_schema(lh, table, schema)
    types = {f.name: f.type for f in schema} if schema is not None else {}
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    columns.pop(RESCUED, None)
    arrays: dict[str, pa.Array] = {}
    rescued: list[dict[str, Any]] = [{} for _ in rows]
    for column in columns:
        if column in METADATA_COLUMNS:
            continue
        values = [row.get(column) for row in rows]
        target = types.get(column)
        try:
            array = pa.array(values, type=target)
            if not pa.types.is_null(array.type):  # a new column of nulls only: no type yet
                arrays[column] = array
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        if target is None:  # a new column whose values disagree: keep it as text
            target = pa.string()
            values = [None if v is None else _text(v) for v in values]
            arrays[column] = pa.array(values, type=target)
            continue
        kept = []
        for i, value in enumerate(values):
            try:
                pa.array([value], type=target)
                kept.append(value)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                rescued[i][column] = value
                kept.append(None)
        arrays[column] = pa.array(kept, type=target)
    count = sum(1 for r in rescued if r)
    if count or RESCUED in types:
        arrays[RESCUED] = pa.array(
            [json.dumps(r, default=str) if r else None for r in rescued], pa.string()
        )
    return pa.table(arrays), count


def _typed_nulls(rows: pa.Table, schema: pa.Schema | None) -> pa.Table:
    """Columns read (from CSV, say) as nothing but nulls: typed as the table's column, or
    left out when the table has none (it gets a type with its first value)."""
    types = {f.name: f.type for f in schema} if schema is not None else {}
    for column in [f.name for f in rows.schema if pa.types.is_null(f.type)]:
        i = rows.schema.get_field_index(column)
        if column in types:
            rows = rows.set_column(i, column, pa.nulls(rows.num_rows, types[column]))
        else:
            rows = rows.remove_column(i)
    return rows


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
