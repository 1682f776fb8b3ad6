"""A table at one version, described for a reader: its schema and its live data files.

Reading the live file list and handing it to the SQL engine reads at raw-parquet speed;
the Delta log stays the source of truth for which files and partition values belong to the
version. Tables whose files cannot be read as plain parquet (deletion vectors, column
mapping, remote storage) are marked so the reader falls back to delta-rs's own scan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from threading import Lock
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.scratch import scratch


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


@dataclass(frozen=True)
class Figures:
    """What the catalog records of a version: counted in DuckDB, with no object a file."""

    version: int
    schema: pa.Schema
    row_count: int
    size_bytes: int
    num_files: int


def figures_of(dt: DeltaTable) -> Figures:
    """The version ``dt`` is loaded at, counted. A writer records these after every commit,
    so their cost must not grow with the table: a stream that commits every second has
    tens of thousands of files before it is compacted."""
    actions = dt.get_add_actions(flatten=True)  # noqa: F841 - scanned by DuckDB below
    con = scratch()
    try:
        present = set(con.sql("SELECT * FROM actions LIMIT 0").columns)
        records = "num_records" if "num_records" in present else "NULL"
        ((files, size, rows),) = con.sql(
            f"SELECT count(*), coalesce(sum(size_bytes), 0), coalesce(sum({records}), 0) "
            "FROM actions"
        ).fetchall()
    finally:
        con.close()
    return Figures(
        version=dt.version(),
        schema=pa.schema(dt.schema().to_arrow()),
        row_count=int(rows),
        size_bytes=int(size),
        num_files=int(files),
    )


def snapshot_of(dt: DeltaTable) -> Snapshot:
    """The version ``dt`` is loaded at. The log's add actions are read with DuckDB straight
    from delta-rs's Arrow export: turning them into pyarrow tables would import pandas,
    50 MiB a query process does not otherwise need."""
    schema = pa.schema(dt.schema().to_arrow())
    partition_columns = tuple(dt.metadata().partition_columns)
    actions = dt.get_add_actions(flatten=True)  # noqa: F841 - scanned by DuckDB below
    names = ["path", "size_bytes", "num_records"] + [f"partition.{c}" for c in partition_columns]
    con = scratch()
    try:
        present = set(con.sql("SELECT * FROM actions LIMIT 0").columns)
        select = ", ".join(
            '"' + n.replace('"', '""') + '"' if n in present else "NULL" for n in names
        )
        rows = con.sql(f"SELECT {select} FROM actions").fetchall()
        protocol = dt.protocol()
        features = set(protocol.reader_features or [])
        direct = is_local(dt.table_uri) and "columnMapping" not in features
        if direct and "deletionVectors" in features:
            vectors = dt.deletion_vectors()  # noqa: F841 - scanned by DuckDB below
            direct = con.sql("SELECT count(*) FROM vectors").fetchone()[0] == 0
    finally:
        con.close()
    root = local_path(dt.table_uri).rstrip("/")
    files = tuple(
        DataFile(
            path=rel if "://" in rel else os.path.join(root, unquote(rel)),
            partition=tuple(zip(partition_columns, row[3:], strict=True)),
            num_records=row[2],
            size_bytes=row[1],
        )
        for row in rows
        for rel in (row[0],)
    )
    return Snapshot(
        version=dt.version(),
        schema=schema,
        partition_columns=partition_columns,
        files=files,
        direct=direct,
    )


_columns_cache: dict[str, frozenset[str]] = {}
_cache_lock = Lock()


def file_columns(paths: list[str]) -> dict[str, frozenset[str]]:
    """Top-level column names of each parquet file. Data files never change once written,
    so the answer is cached for the life of the process."""
    missing = [p for p in paths if p not in _columns_cache]
    if missing:
        found = _read_top_level_names(missing)
        with _cache_lock:
            _columns_cache.update(found)
    return {p: _columns_cache[p] for p in paths}


def _read_top_level_names(paths: list[str]) -> dict[str, frozenset[str]]:
    """DuckDB's parquet_schema lists each file's schema tree depth first, root first; the
    root's children are the columns."""
    con = scratch()
    try:
        listing = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
        rows = con.sql(
            f"SELECT file_name, name, coalesce(num_children, 0) FROM parquet_schema({listing})"
        ).fetchall()
    finally:
        con.close()
    by_file: dict[str, list[tuple[str, int]]] = {}
    for file_name, name, children in rows:
        by_file.setdefault(file_name, []).append((name, children))
    out: dict[str, frozenset[str]] = {}
    for file_name, tree in by_file.items():
        names, i = [], 1
        for _ in range(tree[0][1]):
            names.append(tree[i][0])
            pending = 1
            while pending:  # skip the column's whole subtree
                pending += tree[i][1] - 1
                i += 1
        out[file_name] = frozenset(names)
    return out
