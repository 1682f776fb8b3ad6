"""How incoming data fits a table's schema: safe casts, new columns, widened types."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from lakehouse.errors import SchemaMismatchError

_INT_ORDER = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]
_FLOAT_ORDER = [pa.float32(), pa.float64()]


def widens_to(narrow: pa.DataType, wide: pa.DataType) -> bool:
    """True when every value of ``narrow`` is exactly representable in ``wide``
    (the widenings Delta's type-widening feature allows)."""
    if narrow == wide:
        return True
    if pa.types.is_null(narrow):
        return True
    if narrow in _INT_ORDER and wide in _INT_ORDER:
        return _INT_ORDER.index(narrow) <= _INT_ORDER.index(wide)
    if narrow in _FLOAT_ORDER and wide in _FLOAT_ORDER:
        return _FLOAT_ORDER.index(narrow) <= _FLOAT_ORDER.index(wide)
    if narrow in _INT_ORDER[:3] and wide == pa.float64():
        return True
    if pa.types.is_decimal(narrow) and pa.types.is_decimal(wide):
        return bool(
            wide.scale >= narrow.scale
            and wide.precision - wide.scale >= narrow.precision - narrow.scale
        )
    if narrow in _INT_ORDER and pa.types.is_decimal(wide):
        digits = {pa.int8(): 3, pa.int16(): 5, pa.int32(): 10, pa.int64(): 20}[narrow]
        return bool(wide.precision - wide.scale >= digits)
    if pa.types.is_date32(narrow) and pa.types.is_timestamp(wide) and wide.tz is None:
        return True
    if pa.types.is_timestamp(narrow) and pa.types.is_timestamp(wide):
        # Naive timestamps are taken as UTC, so both directions keep the instant.
        return True
    if pa.types.is_string(narrow) and pa.types.is_string(wide):
        return True
    return False


@dataclass
class SchemaPlan:
    """What a write must do to fit its data into the table."""

    target: pa.Schema  # schema of the batches handed to the Delta writer
    new_columns: list[str] = field(default_factory=list)
    widened: dict[str, pa.DataType] = field(default_factory=dict)

    @property
    def changes_schema(self) -> bool:
        return bool(self.new_columns or self.widened)


def plan_schema(table: str, current: pa.Schema | None, data: pa.Schema, evolve: bool) -> SchemaPlan:
    """Decide the schema of the write; raise ``SchemaMismatchError`` naming the column if the
    data cannot go in as asked."""
    if current is None:
        for f in data:
            if pa.types.is_null(f.type):
                raise SchemaMismatchError(
                    table,
                    f.name,
                    None,
                    "null",
                    hint="the column holds only nulls, so its type is unknown: cast it to a type",
                )
        return SchemaPlan(target=data)

    fields: list[pa.Field] = []
    widened: dict[str, pa.DataType] = {}
    given = {f.name: f for f in data}
    for f in current:
        g = given.get(f.name)
        if g is None:
            if not f.nullable:
                raise SchemaMismatchError(table, f.name, type_name(f.type), None)
            fields.append(f)
        elif widens_to(g.type, f.type):
            fields.append(f)
        elif evolve and widens_to(f.type, g.type):
            widened[f.name] = g.type
            fields.append(pa.field(f.name, g.type, nullable=f.nullable))
        else:
            hint = None
            if widens_to(f.type, g.type):
                hint = "pass evolve=True to widen the column, or cast the data to the table's type"
            else:
                hint = "cast the data to the table's type"
            raise SchemaMismatchError(table, f.name, type_name(f.type), type_name(g.type), hint)
    known = set(current.names)
    new_columns = [f.name for f in data if f.name not in known]
    for name in new_columns:
        g = given[name]
        if not evolve:
            raise SchemaMismatchError(table, name, None, type_name(g.type))
        if pa.types.is_null(g.type):
            raise SchemaMismatchError(
                table,
                name,
                None,
                "null",
                hint="the new column holds only nulls, so its type is unknown: cast it to a type",
            )
        fields.append(pa.field(name, g.type, nullable=True))
    return SchemaPlan(target=pa.schema(fields), new_columns=new_columns, widened=widened)


def type_name(t: pa.DataType) -> str:
    """Type names as Delta and SQL users know them."""
    simple = {
        pa.int8(): "byte",
        pa.int16(): "short",
        pa.int32(): "integer",
        pa.int64(): "long",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.string(): "string",
        pa.large_string(): "string",
        pa.string_view(): "string",
        pa.bool_(): "boolean",
        pa.binary(): "binary",
        pa.date32(): "date",
        pa.null(): "null",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz else "timestamp_ntz"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    return str(t)


def schema_columns(schema: pa.Schema) -> list[dict[str, object]]:
    """The schema as the catalog records it."""
    return [{"name": f.name, "type": type_name(f.type), "nullable": f.nullable} for f in schema]
