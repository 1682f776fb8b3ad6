"""A query's result: Arrow underneath, handed out as Arrow, pandas, Polars or rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


class Result:
    def __init__(self, table: pa.Table, sql: str, seconds: float = 0.0) -> None:
        self._table = table
        self.sql = sql
        self.seconds = seconds

    @property
    def columns(self) -> list[str]:
        return self._table.column_names

    @property
    def schema(self) -> pa.Schema:
        return self._table.schema

    def __len__(self) -> int:
        return self._table.num_rows

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
        return self._table.to_pylist()

    def scalar(self) -> Any:
        """The single value of a one-row, one-column result."""
        if self._table.num_rows != 1 or self._table.num_columns != 1:
            raise ValueError(
                f"scalar() needs a 1x1 result, got {self._table.num_rows}x{self._table.num_columns}"
            )
        return self._table.column(0)[0].as_py()

    def __repr__(self) -> str:
        return f"<Result {self._table.num_rows} rows x {self._table.num_columns} columns>"
