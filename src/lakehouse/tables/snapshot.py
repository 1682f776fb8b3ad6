"""A table at one version, described for a reader: its schema and its live data files.

Reading the live file list and handing it to the SQL engine reads at raw-parquet speed;
the Delta log stays the source of truth for which files and partition values belong to the
version, which rows of a file its deletion vector removes (``log.py``) and, with column
mapping, which physical column of a file is which column of the table. Remote tables are
marked so the reader falls back to delta-rs's own scan. A reader feature of the protocol
this reader does not implement is refused by name: rows are never guessed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from threading import Lock
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.errors import LakehouseError
from lakehouse.quoting import ident, string_list
from lakehouse.scratch import scratch
from lakehouse.tables.deletion_vectors import Descriptor
from lakehouse.tables.log import deletion_vectors

# Reader features (Delta protocol, "Table Features") whose files this reader reads right.
READABLE = frozenset(
    {"columnMapping", "deletionVectors", "timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"}
)


class UnsupportedFeatureError(LakehouseError):
    """A table whose protocol needs a reader feature this reader does not implement."""

    def __init__(self, table: str, features: list[str]) -> None:
        self.features = features
        super().__init__(
            f"{table} needs the Delta reader feature(s) {', '.join(features)}, "
            "which Lakehouse cannot read",
            "read an earlier version (VERSION AS OF) or rewrite the table without the feature",
        )


def refused_features(exc: Exception) -> list[str]:
    """The protocol features a delta-rs refusal to load a table names (none: another
    error)."""
    text = str(exc)
    features = re.findall(r"[Ff]eatures? '([^']+)'", text)
    for group in re.findall(r"features(?: required)?: [{\[]([^}\]]*)[}\]]", text):
        features += [f.strip(" '\"") for f in group.split(",") if f.strip(" '\"")]
    return sorted(set(features))


@dataclass(frozen=True)
class DataFile:
    path: str
    partition: tuple[tuple[str, Any], ...]
    num_records: int | None
    size_bytes: int
    deletion: Descriptor | None = None  # rows the version no longer has


@dataclass(frozen=True)
class Snapshot:
    version: int
    schema: pa.Schema
    partition_columns: tuple[str, ...]
    files: tuple[DataFile, ...]
    direct: bool  # files can be read as plain parquet
    mapping: str = "none"  # column mapping mode: none, name or id
    root: str = ""  # the table's folder, for deletion vectors stored beside the data

    @property
    def row_count(self) -> int:
        return sum(
            f.num_records - (f.deletion.cardinality if f.deletion else 0)
            for f in self.files
            if f.num_records is not None
        )

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
    if "deletionVectors" in (dt.protocol().reader_features or []) and is_local(dt.table_uri):
        rows -= sum(f.deletion.cardinality for f in snapshot_of(dt).files if f.deletion)
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
        select = ", ".join(ident(n) if n in present else "NULL" for n in names)
        rows = con.sql(f"SELECT {select} FROM actions").fetchall()
    finally:
        con.close()
    protocol = dt.protocol()
    mode = mapping_mode(dt.table_uri, protocol, dt.metadata().configuration)
    local = is_local(dt.table_uri)
    root = local_path(dt.table_uri).rstrip("/")
    vectors: dict[str, Descriptor] = {}
    if local and "deletionVectors" in (protocol.reader_features or []):
        vectors = deletion_vectors(root, dt.version(), {row[0] for row in rows})
    files = tuple(
        DataFile(
            path=rel if "://" in rel else os.path.join(root, unquote(rel)),
            partition=tuple(zip(partition_columns, row[3:], strict=True)),
            num_records=row[2],
            size_bytes=row[1],
            deletion=vectors.get(rel),
        )
        for row in rows
        for rel in (row[0],)
    )
    return Snapshot(
        version=dt.version(),
        schema=schema,
        partition_columns=partition_columns,
        files=files,
        direct=local,
        mapping=mode,
        root=root,
    )


def mapping_mode(uri: str, protocol: Any, configuration: dict[str, str]) -> str:
    """The column mapping mode a reader must honour, after refusing any reader feature it
    cannot read. The table property counts on reader version 2, or on 3 when the protocol
    lists ``columnMapping``."""
    reader = protocol.min_reader_version
    features = list(protocol.reader_features or [])
    if reader > 3:
        raise UnsupportedFeatureError(f"the Delta table at {uri}", [f"reader version {reader}"])
    missing = sorted(set(features) - READABLE) if reader == 3 else []
    if missing:
        raise UnsupportedFeatureError(f"the Delta table at {uri}", missing)
    if reader == 2 or (reader == 3 and "columnMapping" in features):
        mode = (configuration.get("delta.columnMapping.mode") or "none").lower()
        if mode not in ("none", "name", "id"):
            raise UnsupportedFeatureError(
                f"the Delta table at {uri}", [f"column mapping mode {mode!r}"]
            )
        return mode
    return "none"


@dataclass(frozen=True)
class Column:
    """One element of a parquet file's schema tree."""

    name: str
    field_id: int | None
    kind: str | None  # the converted type: LIST and MAP wrap their repeated group
    children: tuple[Column, ...]


_trees_cache: dict[str, tuple[Column, ...]] = {}
_cache_lock = Lock()


def file_trees(paths: list[str]) -> dict[str, tuple[Column, ...]]:
    """The columns of each parquet file, nested ones under theirs. Data files never change
    once written, so the answer is cached for the life of the process."""
    missing = [p for p in paths if p not in _trees_cache]
    if missing:
        found = _read_trees(missing)
        with _cache_lock:
            _trees_cache.update(found)
    return {p: _trees_cache[p] for p in paths}


def file_columns(paths: list[str]) -> dict[str, frozenset[str]]:
    """Top-level column names of each parquet file."""
    return {p: frozenset(c.name for c in tree) for p, tree in file_trees(paths).items()}


def _read_trees(paths: list[str]) -> dict[str, tuple[Column, ...]]:
    """DuckDB's parquet_schema lists each file's schema tree depth first, root first."""
    con = scratch()
    try:
        listing = string_list(paths)
        rows = con.sql(
            "SELECT file_name, name, field_id, converted_type, coalesce(num_children, 0) "
            f"FROM parquet_schema({listing})"
        ).fetchall()
    finally:
        con.close()
    by_file: dict[str, list[tuple[Any, ...]]] = {}
    for file_name, *element in rows:
        by_file.setdefault(file_name, []).append(tuple(element))
    out: dict[str, tuple[Column, ...]] = {}
    for file_name, elements in by_file.items():
        root, _ = _subtree(elements, 0)
        out[file_name] = root.children
    return out


def _subtree(elements: list[tuple[Any, ...]], i: int) -> tuple[Column, int]:
    name, field_id, kind, count = elements[i]
    i += 1
    children = []
    for _ in range(count):
        child, i = _subtree(elements, i)
        children.append(child)
    return Column(name, field_id, kind, tuple(children)), i


def delta_log_in(uri: str) -> bool:
    """Whether a Delta log lies in the local table folder ``uri``."""
    return os.path.isdir(os.path.join(local_path(uri), "_delta_log"))


def iceberg_metadata_in(uri: str) -> bool:
    """Whether Iceberg metadata files lie in the local table folder ``uri``."""
    try:
        found = os.listdir(os.path.join(local_path(uri), "metadata"))
    except OSError:
        return False
    return any(f.endswith(".metadata.json") for f in found)
