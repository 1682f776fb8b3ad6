"""Opening Iceberg tables: pyiceberg's SQL catalog on the warehouse's own catalog database,
and a table at one of the platform's integer versions.

Version N of an Iceberg table is the N-th snapshot its writers committed; every snapshot
records its number (``lakehouse.version``) in its summary, so expiring old snapshots does
not renumber the rest. Version 0 is the empty table as created, before any snapshot."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table as IcebergTable
from pyiceberg.table.snapshots import Snapshot as IcebergSnapshot
from sqlalchemy import select

from lakehouse.errors import CatalogError, LakehouseError, VersionNotFoundError
from lakehouse.names import TableName
from lakehouse.storage import Locations
from lakehouse.tables.snapshot import iceberg_metadata_in, is_local, local_path

VERSION = "lakehouse.version"
TRANSACTIONS = "lakehouse.transactions"  # every app's last number, carried from snapshot on
OPERATION = "lakehouse.operation"
USER = "lakehouse.user"
OPTIONS = "lakehouse.options"  # a table property: the options the table was created with
CONSTRAINT = "lakehouse.constraint."  # table properties: CHECK constraints by name

# The warehouse's storage options (object_store's names) as pyiceberg's FileIO names them.
_FILE_IO = {
    "AWS_ENDPOINT_URL": "s3.endpoint",
    "AWS_ENDPOINT": "s3.endpoint",
    "AWS_ACCESS_KEY_ID": "s3.access-key-id",
    "AWS_SECRET_ACCESS_KEY": "s3.secret-access-key",
    "AWS_SESSION_TOKEN": "s3.session-token",
    "AWS_REGION": "s3.region",
    "AWS_DEFAULT_REGION": "s3.region",
}

_catalogs: dict[str, SqlCatalog] = {}
_lock = threading.Lock()


def catalog_of(where: Locations) -> SqlCatalog:
    """pyiceberg's SQL catalog in the database the warehouse's catalog uses (its tables
    ``iceberg_tables`` and ``iceberg_namespace_properties`` beside the platform's)."""
    owner: Any = where
    url = getattr(getattr(owner, "catalog", None), "url", None)
    if not isinstance(url, str):
        raise LakehouseError("an Iceberg table needs the warehouse's catalog database")
    with _lock:
        found = _catalogs.get(url)
        if found is None:
            options: dict[str, str] = {"uri": url}
            for key, value in (where.storage_options or {}).items():
                options[_FILE_IO.get(key.upper(), key)] = value
            found = SqlCatalog("lakehouse", **options)
            _catalogs[url] = found
    return found


def ident(name: TableName) -> tuple[str, str]:
    return (name.layer, name.name)


def on_disk(where: Locations, name: TableName) -> bool:
    """Whether the catalog holds the table and, for a local table, Iceberg metadata lies
    at its location."""
    uri = where.table_uri(name)
    if is_local(uri) and not iceberg_metadata_in(uri):
        return False
    return bool(catalog_of(where).table_exists(ident(name)))


@dataclass
class IcebergHandle:
    """An Iceberg table at one version: ``snapshot`` None is version 0 (no rows)."""

    table: IcebergTable
    snapshot: IcebergSnapshot | None
    latest: bool

    @property
    def version(self) -> int:
        return version_of(self.snapshot)

    @property
    def location(self) -> str:
        return str(self.table.metadata.location)


def version_of(snapshot: IcebergSnapshot | None) -> int:
    if snapshot is None:
        return 0
    summary = snapshot.summary
    value = summary.additional_properties.get(VERSION) if summary is not None else None
    if value is None:
        raise LakehouseError(
            f"Iceberg snapshot {snapshot.snapshot_id} has no {VERSION}",
            "the table was written by another engine; Lakehouse reads only tables it wrote",
        )
    return int(value)


def properties(snapshot: IcebergSnapshot | None) -> dict[str, str]:
    if snapshot is None or snapshot.summary is None:
        return {}
    return dict(snapshot.summary.additional_properties)


def transactions(snapshot: IcebergSnapshot | None) -> dict[str, int]:
    text = properties(snapshot).get(TRANSACTIONS)
    return {k: int(v) for k, v in json.loads(text).items()} if text else {}


def chain(table: IcebergTable) -> list[IcebergSnapshot]:
    """The snapshots of the main branch still kept, oldest first."""
    current = table.current_snapshot()
    out: list[IcebergSnapshot] = []
    while current is not None:
        out.append(current)
        parent = current.parent_snapshot_id
        current = table.snapshot_by_id(parent) if parent is not None else None
    return out[::-1]


def metadata_location(where: Locations, name: TableName) -> str | None:
    """The table's current metadata file as the catalog records it (one row read, no
    file): it changes with every commit and schema change, so a reader holding the table
    loaded from it need not load it again."""
    catalog = catalog_of(where)
    query = select(IcebergTables.metadata_location).where(
        IcebergTables.catalog_name == catalog.name,
        IcebergTables.table_namespace == name.layer,
        IcebergTables.table_name == name.name,
    )
    with catalog.engine.connect() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else str(found)


def open_table(where: Locations, name: TableName) -> IcebergTable | None:
    """The table as the catalog's metadata location gives it; None if there is none. A
    catalog entry whose metadata file is missing while the table's other metadata is
    there is refused (neither read nor written over) with ``CatalogError``."""
    try:
        return catalog_of(where).load_table(ident(name))
    except NoSuchTableError:
        return None
    except FileNotFoundError:
        uri = where.table_uri(name)
        if not is_local(uri) or not iceberg_metadata_in(uri):
            return None  # dropped: its files are gone, the catalog row is stale
        missing = metadata_location(where, name)
        raise CatalogError(
            f"{name}: the Iceberg catalog names the metadata file {missing}, which is "
            "missing; the table is neither read nor written until it is back",
            "restore the file from a backup, or drop the table "
            f"(its other metadata files are in {local_path(uri)}/metadata)",
        ) from None


def at_version(table: IcebergTable, name: TableName, version: int | None) -> IcebergHandle:
    current = table.current_snapshot()
    if version is None:
        return IcebergHandle(table, current, latest=True)
    if version == 0:
        return IcebergHandle(table, None, latest=current is None)
    kept = chain(table)
    for snapshot in kept:
        if version_of(snapshot) == version:
            return IcebergHandle(table, snapshot, latest=snapshot is current)
    if kept and 0 < version < version_of(kept[0]):
        first, last = version_of(kept[0]), version_of(current)
        readable = (
            f"only version {last} can still be read"
            if first >= last
            else f"versions {first} to {last} can still be read"
        )
        raise VersionNotFoundError(
            f"{name} version {version} cannot be read any more: its snapshot and files were "
            f"removed by vacuum (it is older than the table's time travel window); {readable}",
            f"read a version from {first} on, or see `lakehouse history {name}`; "
            "maintenance.vacuum_after sets how long removed files are kept",
        )
    raise VersionNotFoundError(
        f"{name} has no version {version} (latest is {version_of(current)})",
        f"see `lakehouse history {name}`",
    )


def arrow_schema(handle: IcebergHandle) -> pa.Schema:
    """The table's schema at the version: the current one at the latest (a schema change
    makes no snapshot), the snapshot's own before."""
    metadata = handle.table.metadata
    if handle.latest or handle.snapshot is None or handle.snapshot.schema_id is None:
        schema = handle.table.schema()
    else:
        schema = next(
            (s for s in metadata.schemas if s.schema_id == handle.snapshot.schema_id),
            handle.table.schema(),
        )
    return plain(schema_to_pyarrow(schema, include_field_ids=False))


FIELD_ID = b"PARQUET:field_id"
MAPPED_ID = b"delta.columnMapping.id"  # the read path's key for a column's field id


def schema_with_ids(handle: IcebergHandle) -> pa.Schema:
    """The version's schema with each field's Iceberg field id (nested ones too) under the
    read path's key: data files are read by field id, as pyiceberg writes a column whose
    name parquet cannot hold under another name."""
    metadata = handle.table.metadata
    schema = handle.table.schema()
    if not handle.latest and handle.snapshot is not None and handle.snapshot.schema_id is not None:
        schema = next(
            (s for s in metadata.schemas if s.schema_id == handle.snapshot.schema_id), schema
        )
    arrow = schema_to_pyarrow(schema, include_field_ids=True)
    return pa.schema([_id_field(f) for f in arrow])


def _id_field(f: pa.Field) -> pa.Field:
    t = f.type
    if pa.types.is_struct(t):
        t = pa.struct([_id_field(c) for c in t])
    elif pa.types.is_large_list(t) or pa.types.is_list(t):
        t = pa.list_(_id_field(t.value_field))
    elif pa.types.is_map(t):
        t = pa.map_(_id_field(t.key_field), _id_field(t.item_field))
    else:
        t = _plain_type(t)
    meta = f.metadata or {}
    ids = {MAPPED_ID: meta[FIELD_ID]} if FIELD_ID in meta else {}
    return pa.field(f.name, t, f.nullable, metadata=ids or None)


def plain(schema: pa.Schema) -> pa.Schema:
    """Large Arrow types as the platform's plain ones (pyiceberg reads strings as large)."""
    return pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in schema])


def _plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_plain_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain_type(f.type), f.nullable) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_plain_type(t.key_type), _plain_type(t.item_type))
    return t
