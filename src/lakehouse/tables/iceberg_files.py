"""The data files of an Iceberg version and their rows: what the read path scans, and what
copy-on-write changes (delete, replace where, merge, compaction) read back and rewrite."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import DataFile as IcebergDataFile
from pyiceberg.manifest import DataFileContent

from lakehouse.errors import LakehouseError
from lakehouse.tables.convert import cast_batch
from lakehouse.tables.iceberg_tables import IcebergHandle, schema_with_ids
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
    """The rows of ``files``, each fitted to ``schema`` (columns added since are null)."""
    batches: list[pa.RecordBatch] = []
    io = handle.table.io
    for f in files:
        with io.new_input(str(f.file_path)).open() as stream:
            table = pq.read_table(stream)
        batches += [cast_batch(b, schema) for b in table.to_batches()]
    return pa.Table.from_batches(batches, schema)
