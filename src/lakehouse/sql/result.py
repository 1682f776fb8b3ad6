"""A query's result: Arrow underneath, handed out as Arrow, pandas, Polars or rows; and
the same values for text formats (``as_text_columns``, ``plain``): nested values (lists,
structs, maps, unions) as JSON, binary as hex, intervals as text."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pyarrow as pa


class Result:
    def __init__(self, table: pa.Table, sql: str, seconds: float = 0.0) -> None:
        self._table = table
        self.sql = sql
        self.seconds = seconds
        self.engine = "duckdb"  # which engine computed it
        self.engine_why: str | None = None  # and why, when it was chosen (engine="auto")

    @property
    def columns(self) -> list[str]:
        names: list[str] = self._table.column_names
        return names

    @property
    def schema(self) -> pa.Schema:
        return self._table.schema

    def __len__(self) -> int:
        rows: int = self._table.num_rows
        return rows

    def to_arrow(self) -> pa.Table:
        return self._table

    def to_pandas(self) -> Any:
        return self._table.to_pandas()

    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self._table)

    def rows(self) -> list[tuple[Any, ...]]:
        columns = [c.to_pylist() for c in self._table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def to_dicts(self) -> list[dict[str, Any]]:
        dicts: list[dict[str, Any]] = self._table.to_pylist()
        return dicts

    def scalar(self) -> Any:
        """The single value of a one-row, one-column result."""
        if self._table.num_rows != 1 or self._table.num_columns != 1:
            raise ValueError(
                f"scalar() needs a 1x1 result, got {self._table.num_rows}x{self._table.num_columns}"
            )
        return self._table.column(0)[0].as_py()

    def __repr__(self) -> str:
        return f"<Result {self._table.num_rows} rows x {self._table.num_columns} columns>"


def needs_text(t: pa.DataType) -> bool:
    """Whether a text format (CSV, a terminal grid) cannot show the type's values as they
    are: nested types, binary, intervals and durations."""
    return bool(
        pa.types.is_nested(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_interval(t)
        or pa.types.is_duration(t)
    )


def as_text_columns(table: pa.Table) -> pa.Table:
    """The table with every column ``needs_text`` as text: nested values as JSON (maps as
    objects), binary as hex, intervals and durations as text."""
    for i, field in enumerate(table.schema):
        if needs_text(field.type):
            values = table.column(i).to_pylist()
            text = [None if v is None else _text(plain(v, field.type)) for v in values]
            column = pa.array(text, pa.string())
            table = table.set_column(i, pa.field(field.name, pa.string()), column)
    return table


def plain(value: Any, t: pa.DataType) -> Any:
    """A value of Arrow type ``t`` (as ``to_pylist`` gives it) as JSON can hold it: maps as
    objects, bytes as hex, intervals as text; other scalars as they are."""
    if value is None:
        return None
    if pa.types.is_map(t):
        return {_key(k): plain(v, t.item_type) for k, v in value}
    if pa.types.is_struct(t):
        return {f.name: plain(value.get(f.name), f.type) for f in t}
    if pa.types.is_union(t):
        return value
    if pa.types.is_nested(t):  # lists of every kind
        return [plain(v, t.value_type) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if pa.types.is_interval(t):
        return _interval(value.months, value.days, value.nanoseconds)
    if isinstance(value, timedelta):
        return _interval(0, value.days, (value.seconds * 10**6 + value.microseconds) * 1000)
    return value


def json_default(value: Any) -> Any:
    """``json.dumps``' fallback for the scalars JSON has no type for."""
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # times as "2026-11-01 10:00:00+00:00", decimals exact


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=json_default, ensure_ascii=False)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else _text(key)


def _interval(months: int, days: int, nanoseconds: int) -> str:
    parts = []
    if months:
        parts.append(f"{months} month{'s' if abs(months) != 1 else ''}")
    if days:
        parts.append(f"{days} day{'s' if abs(days) != 1 else ''}")
    if nanoseconds or not parts:
        sign = "-" if nanoseconds < 0 else ""
        seconds, nanos = divmod(abs(nanoseconds), 10**9)
        clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        parts.append(sign + clock + (f".{nanos:09d}".rstrip("0") if nanos else ""))
    return " ".join(parts)
