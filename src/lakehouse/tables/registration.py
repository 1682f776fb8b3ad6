"""The catalog hook: a table is registered on its first commit, and every commit records
the table's new figures and schema. ``register_found`` is the one repair step for tables
a writer killed between its commit and the catalog left unregistered."""

from __future__ import annotations

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakehouse.config import TableOptions, options_for
from lakehouse.errors import LakehouseError
from lakehouse.names import TableName, parse_table_name
from lakehouse.storage import Storage
from lakehouse.tables.commits import user
from lakehouse.tables.options import options_at_creation, options_dict
from lakehouse.tables.schema import schema_columns
from lakehouse.tables.snapshot import figures_of


def after_commit(
    storage: Storage,
    name: TableName,
    dt: DeltaTable,
    opts: TableOptions | None = None,
    change: str | None = None,
) -> int:
    """Register the table on its first commit and record its new figures and schema."""
    snap = figures_of(dt)
    columns = schema_columns(snap.schema)
    info = storage.catalog.get(str(name))
    if info is None:
        o = opts or options_at_creation(dt) or options_for(name.layer, None)
        storage.catalog.register(
            name=str(name),
            layer=name.layer,
            location=storage.table_uri(name),
            fmt="delta",
            columns=columns,
            options=options_dict(o),
            owner=o.owner or user(),
            description=o.description,
            tags=list(o.tags),
            column_tags={k: list(v) for k, v in o.column_tags.items()},
            retention_days=o.retention_days,
            version=snap.version,
        )
    storage.catalog.record_commit(
        str(name),
        version=snap.version,
        row_count=snap.row_count,
        size_bytes=snap.size_bytes,
        num_files=snap.num_files,
        columns=columns,
        change=change,
    )
    return snap.version


def register_found(storage: Storage, name: str) -> bool:
    """Register a Delta table found in the warehouse but unknown to the catalog (written
    by another engine, by a writer killed before it registered it, or before the catalog
    was reset). Whether there is such a table (registered now, or already)."""
    try:
        parsed = parse_table_name(name)
    except LakehouseError:
        return False
    if storage.catalog.get(str(parsed)) is not None:
        return True
    if not storage.holds_table(parsed):
        return False
    try:
        latest = DeltaTable(storage.table_uri(parsed), storage_options=storage.storage_options)
    except DeltaError:
        return True  # its latest version cannot be opened: reading it says why
    after_commit(storage, parsed, latest)
    return True
