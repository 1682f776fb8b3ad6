"""A table at one version, described for a reader: its schema and its live data files.

Reading the live file list and handing it to the SQL engine reads at raw-parquet speed;
the Delta log stays the source of truth for which files and partition values belong to the
version. Tables whose files cannot be read as plain parquet (deletion vectors, column
mapping, remote storage) are marked so the reader falls back to delta-rs's own scan.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Lock
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable


@dataclass(frozen=True)
class DataFile:
    path: str
    partition: tuple[tuple[str, Any], ...]
    num_records: int | None
    size_bytes: int


@dataclass(frozen=True)
class Snapshot:
    version: int
    schema: pa.Schema
    partition_columns: tuple[str, ...]
    files: tuple[DataFile, ...]
    direct: bool  # files can be read as plain parquet

    @property
    def row_count(self) -> int:
        return sum(f.num_records or 0 for f in self.files)

    @property
    def size_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    return uri.removeprefix("file://")


def snapshot_of(dt: DeltaTable) -> Snapshot:
    schema = pa.schema(dt.schema().to_arrow())
    partition_columns = tuple(dt.metadata().partition_columns)
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    root = local_path(dt.table_uri).rstrip("/")
    files = []
    part_keys = [f"partition.{c}" for c in partition_columns]
    n = len(actions.get("path", []))
    for i in range(n):
        rel = actions["path"][i]
        path = rel if "://" in rel else os.path.join(root, unquote(rel))
        files.append(
            DataFile(
                path=path,
                partition=tuple(
                    (c, actions[k][i]) for c, k in zip(partition_columns, part_keys, strict=True)
                ),
                num_records=actions["num_records"][i] if "num_records" in actions else None,
                size_bytes=actions["size_bytes"][i],
            )
        )
    protocol = dt.protocol()
    features = set(protocol.reader_features or [])
    direct = is_local(dt.table_uri) and "columnMapping" not in features
    if direct and "deletionVectors" in features:
        direct = pa.table(dt.deletion_vectors()).num_rows == 0
    return Snapshot(
        version=dt.version(),
        schema=schema,
        partition_columns=partition_columns,
        files=tuple(files),
        direct=direct,
    )


_columns_cache: dict[str, frozenset[str]] = {}
_cache_lock = Lock()


def file_columns(paths: list[str]) -> dict[str, frozenset[str]]:
    """Top-level column names of each parquet file. Data files never change once written,
    so the answer is cached for the life of the process."""
    missing = [p for p in paths if p not in _columns_cache]
    if missing:
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(lambda p: frozenset(pq.read_schema(p).names), missing))
        with _cache_lock:
            _columns_cache.update(zip(missing, found, strict=True))
    return {p: _columns_cache[p] for p in paths}
