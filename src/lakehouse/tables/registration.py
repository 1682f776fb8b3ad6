"""The catalog hook: a table is registered on its first commit, and every commit records
the table's new figures and schema. ``register_found`` is the one repair step for tables
a writer killed between its commit and the catalog left unregistered."""

from __future__ import annotations

from typing import Any

from lakehouse.config import TableOptions, options_for
from lakehouse.errors import LakehouseError
from lakehouse.names import TableName, parse_table_name
from lakehouse.storage import Storage
from lakehouse.tables.commits import user
from lakehouse.tables.format import TableFormat
from lakehouse.tables.formats import format_of, holds_table
from lakehouse.tables.options import options_at_creation, options_dict
from lakehouse.tables.schema import schema_columns


def after_commit(
    storage: Storage,
    name: TableName,
    handle: Any,
    opts: TableOptions | None = None,
    change: str | None = None,
) -> int:
    """Register the table on its first commit and record its new figures and schema."""
    fmt = format_of(storage, name)
    snap = fmt.figures(handle)
    columns = schema_columns(snap.schema)
    info = storage.catalog.get(str(name))
    if info is None:
        defaults = storage.layer_defaults
        o = opts or _created_with(fmt, handle) or options_for(name.layer, None, defaults)
        storage.catalog.register(
            name=str(name),
            layer=name.layer,
            location=storage.table_uri(name),
            fmt=fmt.name,
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


def _created_with(fmt: TableFormat[Any, Any], handle: Any) -> TableOptions | None:
    try:
        history = fmt.history(handle)
    except Exception:  # noqa: BLE001 - an unreadable history: fall back to the defaults
        return None
    return options_at_creation(history)


def register_found(storage: Storage, name: str) -> bool:
    """Register a table found in the warehouse but unknown to the catalog (written
    by another engine, by a writer killed before it registered it, or before the catalog
    was reset). Whether there is such a table (registered now, or already)."""
    try:
        parsed = parse_table_name(name)
    except LakehouseError:
        return False
    if storage.catalog.get(str(parsed)) is not None:
        return True
    if not holds_table(storage, parsed):
        return False
    try:
        latest = format_of(storage, parsed).load(storage, parsed)
    except LakehouseError:
        return True  # its latest version cannot be opened: reading it says why
    after_commit(storage, parsed, latest)
    return True
