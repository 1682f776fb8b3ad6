"""Which table format a table is in: the one place that chooses. Delta is the only
format so far; a second one is added to ``FORMATS`` and chosen here."""

from __future__ import annotations

from typing import Any

from lakehouse.names import TableName
from lakehouse.storage import Locations
from lakehouse.tables.delta_format import DELTA
from lakehouse.tables.format import TableFormat

FORMATS: tuple[TableFormat[Any, Any], ...] = (DELTA,)


def format_of(where: Locations, name: TableName) -> TableFormat[Any, Any]:
    """The format of the table ``name`` (of a table still to be made: the default)."""
    for found in FORMATS[1:]:
        if found.exists(where, name):
            return found
    return DELTA


def holds_table(where: Locations, name: TableName) -> bool:
    """Whether a table of any format lies at the table's location (registered or not)."""
    return any(f.exists(where, name) for f in FORMATS)
