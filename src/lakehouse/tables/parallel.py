"""Large appends and overwrites of unpartitioned local tables, written by pyarrow (quicker
than delta-rs's encoder on one thread) and committed to the Delta log in one transaction.

A write makes one file while its data is under ``TARGET_FILE_BYTES`` in memory (DuckDB
plans a one-file table with its statistics; row groups keep the scan parallel), and
beyond that one file per core, written at once. The add actions carry the same
statistics delta-rs would record (row count, per-column min, max and null count), taken
from the parquet footers, so other readers skip files exactly as they would for
delta-rs's own files.
"""

from __future__ import annotations

import decimal
import json
import math
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties
from deltalake.transaction import AddAction, RemoveAction

MIN_ROWS = 1_000_000  # below this, delta-rs's writer is as quick
TARGET_FILE_BYTES = 1 << 30  # why: see encoding.TARGET_FILE_BYTES
STATS_COLUMNS = 32  # delta.dataSkippingNumIndexedCols default
MAX_STRING_STAT = 64  # longer strings get no min/max rather than a truncated one


def eligible(dt: DeltaTable, rows: int, local: bool) -> bool:
    return (
        local
        and rows >= MIN_ROWS
        and (os.cpu_count() or 1) > 1
        and not dt.metadata().partition_columns
    )


def write_files(
    dt: DeltaTable,
    table: pa.Table,
    *,
    mode: str,
    properties: WriterProperties,
    commit: CommitProperties,
) -> int:
    """Write ``table`` and commit it; returns the version the commit made. The files are
    encoded as delta-rs encodes them with the same ``properties``."""
    import pyarrow.parquet as pq

    options = parquet_options(properties, table.column_names)
    compression = options["compression"]
    root = Path(dt.table_uri.removeprefix("file://"))
    parts = file_count(table)
    size = math.ceil(table.num_rows / parts)
    slices = [table.slice(i * size, size) for i in range(parts)]
    batch = uuid.uuid4()
    names = [f"part-{i:05d}-{batch}-c000.{compression}.parquet" for i in range(parts)]

    def write(i: int) -> AddAction:
        path = root / names[i]
        pq.write_table(slices[i], path, **options)
        meta = pq.ParquetFile(path).metadata
        return AddAction(
            path=names[i],
            size=path.stat().st_size,
            partition_values={},
            modification_time=int(time.time() * 1000),
            data_change=True,
            stats=json.dumps(file_stats(meta, table.schema)),
        )

    with ThreadPoolExecutor(max_workers=parts) as pool:
        actions: list[AddAction | RemoveAction] = list(pool.map(write, range(parts)))
    return _commit(dt, root, actions, mode, table.schema, commit, str(batch))


def commit_files(
    dt: DeltaTable,
    paths: list[str],
    schema: pa.Schema,
    *,
    mode: str,
    commit: CommitProperties,
    partitions: list[dict[str, str | None]] | None = None,
) -> tuple[int, int]:
    """Commit parquet files written elsewhere (by another engine's workers) into the
    table's folder, ``paths`` relative to it, with the statistics of their footers and
    each file's ``partitions`` values; returns the version the commit made and the rows it
    added. The files must hold ``schema``'s columns, the table's (partition columns
    aside)."""
    import pyarrow.parquet as pq

    root = Path(dt.table_uri.removeprefix("file://"))
    actions: list[AddAction | RemoveAction] = []
    rows = 0
    for i, relative in enumerate(paths):
        path = root / relative
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        actions.append(
            AddAction(
                path=relative,
                size=path.stat().st_size,
                partition_values=partitions[i] if partitions else {},
                modification_time=int(path.stat().st_mtime * 1000),
                data_change=True,
                stats=json.dumps(file_stats(meta, schema)),
            )
        )
    return _commit(dt, root, actions, mode, schema, commit, str(uuid.uuid4())), rows


def _commit(
    dt: DeltaTable,
    root: Path,
    actions: list[AddAction | RemoveAction],
    mode: str,
    schema: pa.Schema,
    commit: CommitProperties,
    write_id: str,
) -> int:
    """One Delta transaction of ``actions``, marked with ``write_id`` to find its version."""
    before = dt.version()
    marked = CommitProperties(
        custom_metadata={**(commit.custom_metadata or {}), "lakehouse.write_id": write_id},
        max_commit_retries=commit.max_commit_retries,
        app_transactions=commit.app_transactions,
    )
    dt.create_write_transaction(actions, mode=mode, schema=schema, commit_properties=marked)
    return _committed_version(dt, root, before, write_id)


def file_count(table: pa.Table) -> int:
    """One file up to ``TARGET_FILE_BYTES`` of Arrow data, then up to one per core."""
    nbytes: int = table.nbytes
    rows: int = table.num_rows
    by_size = math.ceil(nbytes / TARGET_FILE_BYTES)
    return max(1, min(os.cpu_count() or 1, by_size, math.ceil(rows / MIN_ROWS)))


def parquet_options(properties: WriterProperties, names: list[str]) -> dict[str, Any]:
    """pyarrow's ``write_table`` arguments for delta-rs's writer properties: the same
    codec and level, row group size, rows per page, dictionary limit and columns without a
    dictionary, and decimals stored as integers (delta-rs does; pyarrow's fixed-length byte
    arrays are larger and slower to scan)."""
    codec, _, level = (properties.compression or "SNAPPY").partition("(")
    options: dict[str, Any] = {
        "compression": "none" if codec == "UNCOMPRESSED" else codec.lower(),
        "store_decimal_as_integer": True,
    }
    if level:
        options["compression_level"] = int(level.rstrip(")"))
    if properties.max_row_group_size is not None:
        options["row_group_size"] = properties.max_row_group_size
    if properties.data_page_row_count_limit is not None:
        options["max_rows_per_page"] = properties.data_page_row_count_limit
    if properties.write_batch_size is not None:
        options["write_batch_size"] = properties.write_batch_size
    if properties.dictionary_page_size_limit is not None:
        options["dictionary_pagesize_limit"] = properties.dictionary_page_size_limit
    plain = {
        name
        for name, column in (properties.column_properties or {}).items()
        if column.dictionary_enabled is False
    }
    if plain:
        options["use_dictionary"] = [name for name in names if name not in plain] or False
    return options


def _committed_version(dt: DeltaTable, root: Path, before: int, write_id: str) -> int:
    """The handle is not moved by the commit and other writers may have committed since,
    so the log's new entries are read for this write's id."""
    dt.update_incremental()
    for version in range(before + 1, dt.version() + 1):
        for line in (root / "_delta_log" / f"{version:020d}.json").read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info is not None and info.get("lakehouse.write_id") == write_id:
                return version
    raise RuntimeError(f"commit {write_id} not found in the log of {root}")


def file_stats(meta: Any, schema: pa.Schema) -> dict[str, Any]:
    """Delta's per-file statistics from a parquet footer, for top-level primitive
    columns; a column whose bounds cannot be stated exactly gets none."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    leaves = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    for field in list(schema)[:STATS_COLUMNS]:
        index = leaves.get(field.name)
        if index is None:  # nested: its leaves have dotted paths
            continue
        chunks = [meta.row_group(g).column(index).statistics for g in range(meta.num_row_groups)]
        if any(c is None or not c.has_null_count for c in chunks):
            continue
        nulls[field.name] = sum(c.null_count for c in chunks)
        bounded = [c for c in chunks if c.has_min_max]
        if not bounded:
            continue
        lo = _stat(field.type, min(_key(field.type, c, "min") for c in bounded), low=True)
        hi = _stat(field.type, max(_key(field.type, c, "max") for c in bounded), low=False)
        if lo is not None and hi is not None:
            mins[field.name], maxs[field.name] = lo, hi
    return {"numRecords": meta.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}


def _key(t: pa.DataType, stats: Any, which: str) -> Any:
    """Comparable bound of one row group; timestamps by their raw microseconds."""
    if pa.types.is_timestamp(t):
        return getattr(stats, f"{which}_raw")
    return getattr(stats, which)


def _stat(t: pa.DataType, value: Any, low: bool) -> Any:
    if pa.types.is_timestamp(t):
        # Delta records milliseconds: round the lower bound down and the upper bound up,
        # so a reader never skips a file that holds a matching row.
        millis = value // 1000 if low else -(-value // 1000)
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
        if t.tz:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else None
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_STAT else None
    return None
