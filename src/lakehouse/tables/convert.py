"""Turn whatever a user hands to ``write`` into Arrow that Delta Lake and every reader accept.

Delta has no unsigned integers, no nanosecond timestamps, no views or dictionaries; other
engines mis-read ``string_view`` and copied ``PARQUET:field_id`` metadata. Everything is
normalised here, once, on the one write path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from lakehouse.errors import InvalidDataError

_UNSIGNED = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.int64(),
}


def normalize_type(t: pa.DataType) -> pa.DataType:
    """The Delta-friendly Arrow type a value of type ``t`` is stored as."""
    if pa.types.is_string_view(t) or pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_binary_view(t) or pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return normalize_type(t.value_type)
    if t in _UNSIGNED:
        return _UNSIGNED[t]
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        tz = t.tz
        if tz is not None and tz.upper() not in ("UTC", "+00:00", "Z"):
            tz = "UTC"
        return pa.timestamp("us", tz=tz if tz is None else "UTC")
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_decimal256(t) and t.precision <= 38:
        return pa.decimal128(t.precision, t.scale)
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_list_view(t)
        or (pa.types.is_large_list_view(t))
    ):
        return pa.list_(_plain_field(t.value_field))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_plain_field(t.value_field))
    if pa.types.is_struct(t):
        return pa.struct([_plain_field(t.field(i)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(normalize_type(t.key_type), _plain_field(t.item_field))
    return t


def _plain_field(f: pa.Field) -> pa.Field:
    return pa.field(f.name, normalize_type(f.type), nullable=f.nullable)


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """Same columns, Delta-friendly types, no field or schema metadata."""
    return pa.schema([_plain_field(f) for f in schema])


def to_arrow(data: Any) -> pa.Table | pa.RecordBatchReader:
    """Accept Arrow tables/batches/readers, pandas, Polars, DuckDB relations, lists of dicts,
    dicts of lists, or anything that exports the Arrow C stream interface."""
    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        frame = data.collect() if hasattr(data, "collect") else data
        return frame.to_arrow()
    if module in ("duckdb", "_duckdb") and hasattr(data, "to_arrow_table"):
        return data.to_arrow_table()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    if hasattr(data, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(data)])
    if isinstance(data, Mapping):
        try:
            return pa.table(dict(data))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidDataError(f"cannot turn the dict of columns into a table: {exc}") from exc
    if isinstance(data, list | tuple):
        if data and all(isinstance(b, pa.RecordBatch) for b in data):
            return pa.Table.from_batches(list(data))
        if all(isinstance(row, Mapping) for row in data):
            return _rows_to_table(data)
    raise InvalidDataError(
        f"cannot write data of type {type(data).__name__}",
        "pass a pyarrow Table or batches, a pandas or Polars DataFrame, or a list of dicts",
    )


def _rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    rows = list(rows)
    try:
        return pa.Table.from_pylist(rows, schema=None) if rows else pa.table({})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        # Columns whose values are of mixed types: find the culprit to say which one.
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        for name in names:
            try:
                pa.array([row.get(name) for row in rows])
            except (pa.ArrowInvalid, pa.ArrowTypeError) as col_exc:
                raise InvalidDataError(
                    f"column {name!r} mixes values of different types: {col_exc}",
                    "give every row the same type for this column",
                ) from exc
        raise InvalidDataError(f"cannot turn the rows into a table: {exc}") from exc


def cast_batches(
    source: pa.Table | pa.RecordBatchReader, target: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Batches of ``source`` cast to ``target`` (same column names, order of ``target``)."""
    batches = source.to_batches() if isinstance(source, pa.Table) else source
    for batch in batches:
        yield cast_batch(batch, target)


def cast_batch(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    columns = []
    for field in target:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, field.type))
            continue
        column = batch.column(index)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidDataError(
                    f"column {field.name!r}: cannot convert {column.type} to {field.type}: {exc}"
                ) from exc
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=target)
