"""The data files of an Iceberg version and their rows: what the read path scans, and what
copy-on-write changes (delete, replace where, merge, compaction) read back and rewrite."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile as IcebergDataFile
from pyiceberg.manifest import DataFileContent
from pyiceberg.table import FileScanTask

from lakehouse.errors import LakehouseError
from lakehouse.tables.convert import cast_batch
from lakehouse.tables.iceberg_tables import IcebergHandle, arrow_schema, schema_with_ids
from lakehouse.tables.snapshot import DataFile, Snapshot, is_local, local_path


class DeleteFilesError(LakehouseError):
    """A version with Iceberg delete files, which this platform neither writes nor reads."""


def live_files(handle: IcebergHandle) -> list[IcebergDataFile]:
    """The version's data files; refuses a version that has delete files (its writers were
    other engines: this platform rewrites files instead, copy-on-write)."""
    snapshot = handle.snapshot
    if snapshot is None:
        return []
    io = handle.table.io
    out: list[IcebergDataFile] = []
    for manifest in snapshot.manifests(io):
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
            if entry.data_file.content != DataFileContent.DATA:
                raise DeleteFilesError(
                    f"the Iceberg table at {handle.location} has delete files at snapshot "
                    f"{snapshot.snapshot_id}, which Lakehouse cannot read",
                    "rewrite the table's data files (compaction by the engine that wrote them)",
                )
            out.append(entry.data_file)
    return out


def path_of(data_file: IcebergDataFile) -> str:
    path = str(data_file.file_path)
    return local_path(path) if is_local(path) else path


def snapshot_of(handle: IcebergHandle) -> Snapshot:
    """Iceberg data files hold every column (partition values too), so the read path reads
    them as plain parquet, columns by name."""
    files = tuple(
        DataFile(
            path=path_of(f),
            partition=(),
            num_records=int(f.record_count),
            size_bytes=int(f.file_size_in_bytes),
        )
        for f in live_files(handle)
    )
    location = handle.location
    return Snapshot(
        version=handle.version,
        schema=schema_with_ids(handle),
        partition_columns=(),
        files=files,
        direct=is_local(location),
        mapping="id",
        root=local_path(location).rstrip("/"),
    )


def read_files(
    handle: IcebergHandle, files: Iterable[IcebergDataFile], schema: pa.Schema
) -> pa.Table:
    """The rows of ``files`` by pyiceberg's own reader (columns found by field id), fitted
    to ``schema`` (columns added since are null)."""
    tasks = [FileScanTask(f) for f in files]
    if not tasks:
        return schema.empty_table()
    table = handle.table
    scan = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue())
    rows = scan.to_table(tasks)
    return pa.Table.from_batches([cast_batch(b, schema) for b in rows.to_batches()], schema)


def plain_names(handle: IcebergHandle) -> bool:
    """Whether every column name (nested ones too) is stored in the data files as it is:
    pyiceberg stores another name for one that parquet and Avro cannot hold."""
    return all(_plain(f) for f in arrow_schema(handle))


def _plain(f: pa.Field) -> bool:
    if not _PLAIN.fullmatch(f.name):
        return False
    t = f.type
    if pa.types.is_struct(t):
        return all(_plain(c) for c in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _plain(t.value_field)
    if pa.types.is_map(t):
        return _plain(t.key_field) and _plain(t.item_field)
    return True


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
