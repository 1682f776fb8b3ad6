"""Which table format a table is in: the one place that chooses. An existing table's
format is told by what lies at its location (or in the catalog); a table still to be made
takes the format its options name, else the warehouse's default (Delta)."""

from __future__ import annotations

from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.names import TableName
from lakehouse.storage import Locations
from lakehouse.tables.delta_format import DELTA
from lakehouse.tables.format import TableFormat
from lakehouse.tables.iceberg_format import ICEBERG

FORMATS: tuple[TableFormat[Any, Any], ...] = (DELTA, ICEBERG)
FORMAT_NAMES = tuple(f.name for f in FORMATS)


def format_of(where: Locations, name: TableName) -> TableFormat[Any, Any]:
    """The format of the table ``name`` (of a table still to be made: the default)."""
    for found in FORMATS[1:]:
        if found.exists(where, name):
            return found
    return DELTA


def named(fmt: str | None) -> TableFormat[Any, Any]:
    """The format called ``fmt`` (None: Delta), for a table to be made."""
    for found in FORMATS:
        if found.name == (fmt or DELTA.name):
            return found
    raise LakehouseError(f"unknown table format {fmt!r}", f"use one of {', '.join(FORMAT_NAMES)}")


def holds_table(where: Locations, name: TableName) -> bool:
    """Whether a table of any format lies at the table's location (registered or not)."""
    return any(f.exists(where, name) for f in FORMATS)
