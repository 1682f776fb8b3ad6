"""Reading the platform's Iceberg tables with pyiceberg alone: its own SQL catalog on the
warehouse's catalog database, its own scan."""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from lakehouse import Lakehouse


def iceberg_table(lh: Lakehouse, name: str) -> Table:
    layer, table = name.split(".")
    catalog = SqlCatalog("lakehouse", uri=lh.catalog.url)  # the catalog name the warehouse uses
    return catalog.load_table((layer, table))


def iceberg_versions(lh: Lakehouse, name: str) -> list[int]:
    """The versions pyiceberg sees: 0 (created, no snapshot) and each snapshot's number."""
    table = iceberg_table(lh, name)
    return [0] + sorted(
        int(s.summary.additional_properties["lakehouse.version"])
        for s in table.snapshots()
        if s.summary is not None
    )


def iceberg_rows(lh: Lakehouse, name: str, version: int | None) -> pa.Table:
    """The rows of a version (None: the current one) by pyiceberg's own scan."""
    table = iceberg_table(lh, name)
    if version is None:
        return table.scan().to_arrow()
    if version == 0:
        return table.scan(snapshot_id=None).to_arrow().slice(0, 0)
    for snap in table.snapshots():
        if snap.summary and snap.summary.additional_properties.get("lakehouse.version") == str(
            version
        ):
            return table.scan(snapshot_id=snap.snapshot_id).to_arrow()
    raise LookupError(f"{name} has no version {version}")
