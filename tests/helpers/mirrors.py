"""Comparing a serving-store mirror with its table."""

from __future__ import annotations

import pyarrow as pa


def no_null_lists(table: pa.Table) -> pa.Table:
    """ClickHouse has no null array: a null list is mirrored as an empty one."""
    for i, field in enumerate(table.schema):
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            values = [v if v is not None else [] for v in table.column(i).to_pylist()]
            table = table.set_column(i, field, pa.array(values, field.type))
    return table
