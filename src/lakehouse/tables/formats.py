"""Which table format a table is in: the one place that chooses. An existing table's
format is told by what lies at its location (or in the catalog); a table still to be made
takes the format its options name, else the warehouse's default (Delta).

The Iceberg format (pyiceberg, which brings pyarrow's datasets and pandas: over a second
to import) is loaded the first time an Iceberg table is met or made, so that commands on a
Delta warehouse do not pay for it."""

from __future__ import annotations

from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.names import TableName
from lakehouse.storage import Locations
from lakehouse.tables.delta_format import DELTA
from lakehouse.tables.format import TableFormat
from lakehouse.tables.snapshot import delta_log_in, iceberg_metadata_in, is_local

ICEBERG_NAME = "iceberg"
FORMAT_NAMES = (DELTA.name, ICEBERG_NAME)


def iceberg() -> TableFormat[Any, Any]:
    """The Iceberg format (imported on first use)."""
    from lakehouse.tables.iceberg_format import ICEBERG

    return ICEBERG


def _iceberg_here(where: Locations, name: TableName) -> bool:
    """Whether an Iceberg table lies at the table's location: its metadata files on a
    local disk (no import needed) and no Delta log, else what the Iceberg catalog says.

    On a local disk the Delta log decides first: a conversion to Iceberg writes the
    Iceberg table beside the Delta log and switches by moving the log away; a conversion
    to Delta moves a finished log in last (``reformat.py``)."""
    uri = where.table_uri(name)
    if is_local(uri):
        return not delta_log_in(uri) and iceberg_metadata_in(uri)
    return iceberg().exists(where, name)


def format_of(where: Locations, name: TableName) -> TableFormat[Any, Any]:
    """The format of the table ``name`` (of a table still to be made: the default)."""
    return iceberg() if _iceberg_here(where, name) else DELTA


def named(fmt: str | None) -> TableFormat[Any, Any]:
    """The format called ``fmt`` (None: Delta), for a table to be made."""
    if fmt is None or fmt == DELTA.name:
        return DELTA
    if fmt == ICEBERG_NAME:
        return iceberg()
    raise LakehouseError(f"unknown table format {fmt!r}", f"use one of {', '.join(FORMAT_NAMES)}")


def holds_table(where: Locations, name: TableName) -> bool:
    """Whether a table of any format lies at the table's location (registered or not).
    Iceberg metadata the Iceberg catalog does not know (a creation killed between its
    first metadata file and its catalog row) is no table: the next write makes it."""
    if DELTA.exists(where, name):
        return True
    return _iceberg_here(where, name) and iceberg().exists(where, name)
