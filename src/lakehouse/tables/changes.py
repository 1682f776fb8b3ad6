"""Rows a table gained between two versions, read as Delta's own streaming readers do.

The commits in the range are read from the log: files added with ``dataChange`` are the new
rows; files rewritten by compaction (``dataChange: false``) carry no new rows and are
ignored, so optimizing a table does not make its rows look new. A commit that removed rows
(delete, overwrite, merge) means the range is not append-only: a reader that wants only new
rows must then recompute; a restore that only took away rows added after the range's start
(a failed run rolled back) leaves it append-only: the files added since are then read.
"""

from __future__ import annotations

import json
import os
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.tables.format import NotAppendOnly
from lakehouse.tables.snapshot import (
    DataFile,
    Snapshot,
    is_local,
    local_path,
    mapping_mode,
    snapshot_of,
)


def appended(
    dt: DeltaTable,
    table: str,
    since: int,
    until: int,
    storage_options: dict[str, str] | None = None,
) -> Snapshot:
    """The files holding the rows added in versions ``since + 1`` to ``until``; ``dt`` is
    loaded at ``until``."""
    schema = pa.schema(dt.schema().to_arrow())
    partition_columns = tuple(dt.metadata().partition_columns)
    mode = mapping_mode(dt.table_uri, dt.protocol(), dt.metadata().configuration)
    root = local_path(dt.table_uri).rstrip("/")
    if since >= until:
        return Snapshot(until, schema, partition_columns, (), True, mode, root)
    if not is_local(dt.table_uri):
        return _by_difference(dt, table, since, until, storage_options)
    physical = _physical_names(schema) if mode != "none" else {}
    files: list[DataFile] = []
    for version in range(since + 1, until + 1):
        log = os.path.join(root, "_delta_log", f"{version:020d}.json")
        try:
            with open(log, encoding="utf-8") as handle:
                actions = [json.loads(line) for line in handle if line.strip()]
        except FileNotFoundError:  # cleaned up after a checkpoint: compare snapshots
            return _by_difference(dt, table, since, until, storage_options)
        operation = next(
            (a["commitInfo"].get("operation", "?") for a in actions if "commitInfo" in a), "?"
        )
        for action in actions:
            remove = action.get("remove")
            if remove is not None and remove.get("dataChange", True):
                if operation.upper() == "RESTORE":
                    # A restore (a failed run rolled back, say) may only have taken away
                    # rows added after ``since``: then the range still only added rows.
                    try:
                        return _by_difference(dt, table, since, until, storage_options)
                    except NotAppendOnly:
                        pass
                raise NotAppendOnly(table, version, operation)
            add = action.get("add")
            if add is None or not add.get("dataChange", True):
                continue
            if add.get("deletionVector"):
                raise NotAppendOnly(table, version, operation)
            values = add.get("partitionValues") or {}
            stats = json.loads(add["stats"]) if add.get("stats") else {}
            rel = add["path"]
            files.append(
                DataFile(
                    path=rel if "://" in rel else os.path.join(root, unquote(rel)),
                    partition=tuple((c, values.get(physical.get(c, c))) for c in partition_columns),
                    num_records=stats.get("numRecords"),
                    size_bytes=int(add.get("size", 0)),
                )
            )
    return Snapshot(until, schema, partition_columns, tuple(files), True, mode, root)


def _physical_names(schema: pa.Schema) -> dict[str, str]:
    """Logical -> physical names of the top-level columns (the log's partition values are
    keyed by physical name under column mapping)."""
    key = b"delta.columnMapping.physicalName"
    return {f.name: f.metadata[key].decode() for f in schema if f.metadata and key in f.metadata}


def _by_difference(
    dt: DeltaTable,
    table: str,
    since: int,
    until: int,
    storage_options: dict[str, str] | None,
) -> Snapshot:
    """Without the commits at hand: the files of ``until`` that ``since`` lacks, valid only
    when no file of ``since`` went away (compaction included, which cannot be told apart
    here)."""
    now = snapshot_of(dt)
    old_dt = DeltaTable(dt.table_uri, storage_options=storage_options)
    old_dt.load_as_version(since)
    before = {f.path for f in snapshot_of(old_dt).files}
    current = {f.path for f in now.files}
    if before - current:
        raise NotAppendOnly(table, until, "files rewritten")
    files = tuple(f for f in now.files if f.path not in before)
    return Snapshot(
        until, now.schema, now.partition_columns, files, now.direct, now.mapping, now.root
    )
