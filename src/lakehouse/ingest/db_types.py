"""Database types as bronze column types: what the drivers return, made faithful and
storable in Delta.

- numeric/decimal(p, s) (p <= 38): decimal(p, s); a NUMERIC without precision, or wider
  than 38 digits, keeps its exact text (a string).
- timestamps without time zone stay naive; with a time zone they are UTC instants.
- JSON and JSONB: their text; UUID: the canonical text; arrays: lists; binary: binary.
- time of day: its text (Delta has no time type).
- MySQL: BOOLEAN (tinyint(1)) is boolean, BIGINT UNSIGNED decimal(20, 0); TIMESTAMP and
  DATETIME values are naive, as the server shows them in the session's time zone.
- intervals, durations and other types Delta cannot hold are refused, by column and type.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import LakehouseError
from lakehouse.ingest.db_source import Column, DbSource


def to_bronze(data: pa.Table, declared: Sequence[Column], source: DbSource) -> pa.Table:
    """The rows with every column in its bronze type."""
    by_name = {c.name: c for c in declared}
    arrays, fields = [], []
    for field, column in zip(data.schema, data.columns, strict=True):
        info = by_name.get(field.name)
        array, kind = _convert(column, field.type, info, source, field.name)
        arrays.append(array)
        fields.append(pa.field(field.name, kind))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _convert(
    column: pa.ChunkedArray, t: pa.DataType, info: Column | None, source: DbSource, name: str
) -> tuple[pa.ChunkedArray, pa.DataType]:
    if isinstance(t, pa.BaseExtensionType):
        ext = t.extension_name
        storage = pa.chunked_array([c.storage for c in column.chunks], t.storage_type)
        if ext == "arrow.uuid":
            return _uuid_text(storage), pa.string()
        if ext == "arrow.opaque":
            type_name = getattr(t, "type_name", "")
            if type_name == "numeric":
                return _numeric(storage, info)
            if type_name in ("interval",):
                raise _unsupported(source, name, type_name)
        if pa.types.is_string(t.storage_type) or pa.types.is_large_string(t.storage_type):
            return storage.cast(pa.string()), pa.string()  # JSON and other text forms
        return _convert(storage, t.storage_type, info, source, name)
    if pa.types.is_interval(t) or pa.types.is_duration(t) or pa.types.is_union(t):
        raise _unsupported(source, name, info.declared if info else str(t))
    if pa.types.is_uint64(t):  # past the largest signed 64-bit integer: exact decimals
        kind = pa.decimal128(20, 0)
        return column.cast(kind), kind
    if pa.types.is_int8(t) and info is not None and info.declared.startswith("tinyint(1)"):
        return column.cast(pa.bool_()), pa.bool_()  # MySQL's BOOLEAN
    if pa.types.is_time(t):
        return column.cast(pa.string()), pa.string()
    if pa.types.is_decimal(t) and info is not None and info.precision and info.scale is not None:
        if info.precision <= 38 and (t.precision, t.scale) != (info.precision, info.scale):
            kind = pa.decimal128(info.precision, info.scale)
            return column.cast(kind), kind
    if pa.types.is_timestamp(t) and t.tz is not None and t.tz != "UTC":
        kind = pa.timestamp("us", tz="UTC")
        return column.cast(kind), kind
    if source.dialect == "sqlite" and info is not None and column.null_count == len(column):
        kind = _sqlite_affinity(info.declared)  # no value to tell the type by: the declared
        if kind is not None and kind != t:
            return pa.chunked_array([pa.nulls(len(column), kind)]), kind
    if pa.types.is_null(t):
        return column.cast(pa.string()), pa.string()
    return column, t


def _sqlite_affinity(declared: str) -> pa.DataType | None:
    """The type of a SQLite column by its declared type's affinity (SQLite's rules)."""
    if "int" in declared:
        return pa.int64()
    if any(s in declared for s in ("char", "clob", "text")):
        return pa.string()
    if "blob" in declared or not declared:
        return pa.binary()
    if any(s in declared for s in ("real", "floa", "doub")):
        return pa.float64()
    return None


def _numeric(storage: pa.ChunkedArray, info: Column | None) -> tuple[pa.ChunkedArray, pa.DataType]:
    text = storage.cast(pa.string())
    if info is None or not info.precision or info.scale is None or info.precision > 38:
        return text, pa.string()  # no fixed precision: the exact digits, as text
    kind = pa.decimal128(info.precision, info.scale)
    special = pc.is_in(text, pa.array(["NaN", "Infinity", "-Infinity"]))
    if pc.any(special).as_py():
        return text, pa.string()  # NaN has no decimal form
    return text.cast(kind), kind


def _uuid_text(storage: pa.ChunkedArray) -> pa.ChunkedArray:
    """16-byte UUIDs as their canonical text, without a Python object per value."""
    return pa.chunked_array([_uuid_chunk(c) for c in storage.chunks], pa.string())


def _uuid_chunk(chunk: pa.Array) -> pa.Array:
    if not pa.types.is_fixed_size_binary(chunk.type) or chunk.type.byte_width != 16:
        import uuid

        return pa.array(
            [None if b is None else str(uuid.UUID(bytes=b)) for b in chunk.to_pylist()],
            pa.string(),
        )
    n, start = len(chunk), chunk.offset * 16
    digits = chunk.buffers()[1].to_pybytes()[start : start + 16 * n].hex().encode()
    hexed = pa.Array.from_buffers(pa.binary(32), n, [None, pa.py_buffer(digits)])
    text = hexed.cast(pa.binary()).cast(pa.string())
    parts = [pc.utf8_slice_codeunits(text, a, b) for a, b in _UUID_PARTS]
    out = pc.binary_join_element_wise(*parts, "-")
    if chunk.null_count:
        out = pc.if_else(chunk.is_null(), pa.scalar(None, pa.string()), out)
    return out


_UUID_PARTS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))


def _unsupported(source: DbSource, column: str, type_name: str) -> LakehouseError:
    return LakehouseError(
        f"{source.qualified_name}.{column} is of type {type_name}, which bronze cannot hold",
        f"read a view that casts it, e.g. CAST({column} AS text), or leave the column out",
    )
