"""Arrow types as ClickHouse column types, for the serving store's mirror tables."""

from __future__ import annotations

import pyarrow as pa

from lakehouse.errors import LakehouseError

_SIMPLE: dict[pa.DataType, str] = {
    pa.bool_(): "Bool",
    pa.int8(): "Int8",
    pa.int16(): "Int16",
    pa.int32(): "Int32",
    pa.int64(): "Int64",
    pa.uint8(): "UInt8",
    pa.uint16(): "UInt16",
    pa.uint32(): "UInt32",
    pa.uint64(): "UInt64",
    pa.float16(): "Float32",
    pa.float32(): "Float32",
    pa.float64(): "Float64",
    pa.string(): "String",
    pa.large_string(): "String",
    pa.string_view(): "String",
    pa.binary(): "String",
    pa.large_binary(): "String",
    pa.binary_view(): "String",
    pa.date32(): "Date32",
    pa.date64(): "Date32",
}


def quote_name(name: str) -> str:
    """A ClickHouse identifier in back quotes."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def column_type(kind: pa.DataType, nullable: bool = True) -> str:
    """The ClickHouse type holding values of ``kind`` (Nullable where ClickHouse allows)."""
    inner = _base(kind)
    # ClickHouse has no null array or map: a null list or map reads as an empty one.
    composite = inner.startswith(("Array(", "Map("))
    return f"Nullable({inner})" if nullable and not composite else inner


def _base(kind: pa.DataType) -> str:
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if pa.types.is_timestamp(kind):
        digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[kind.unit]
        zone = kind.tz
        return f"DateTime64({digits}, 'UTC')" if zone else f"DateTime64({digits})"
    if pa.types.is_decimal(kind):
        return f"Decimal({kind.precision}, {kind.scale})"
    if pa.types.is_fixed_size_binary(kind):
        return f"FixedString({kind.byte_width})"
    if pa.types.is_time(kind):
        return "Int64"  # microseconds of the day: ClickHouse has no time of day
    if pa.types.is_duration(kind):
        return "Int64"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return f"Array({column_type(kind.value_type)})"
    if pa.types.is_map(kind):
        return f"Map({column_type(kind.key_type, False)}, {column_type(kind.item_type)})"
    if pa.types.is_struct(kind):
        fields = ", ".join(
            f"{quote_name(kind.field(i).name)} {column_type(kind.field(i).type)}"
            for i in range(kind.num_fields)
        )
        return f"Tuple({fields})"
    if pa.types.is_dictionary(kind):
        return _base(kind.value_type)
    if pa.types.is_null(kind):
        return "String"
    raise LakehouseError(
        f"the serving store cannot hold a column of type {kind}",
        "tag the table no-serving to leave it out of the serving store",
    )


def structure(schema: pa.Schema) -> str:
    """The column list of a table of ``schema``: "`a` Nullable(Int64), ..."."""
    return ", ".join(f"{quote_name(f.name)} {column_type(f.type)}" for f in schema)
