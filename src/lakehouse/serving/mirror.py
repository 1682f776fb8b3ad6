"""Refreshing one mirror: the rows of exactly one version of a table (or of a view over
pinned versions of its tables) built in a stage table, then swapped in with one atomic
``EXCHANGE TABLES``. A reader sees the old rows or the new ones, never a mix; a refresh
killed at any point leaves the live mirror as it was and a stage the next refresh drops.

Rows reach ClickHouse the fastest way the store allows: an embedded store reads a local
table's parquet files itself (partition values added as constants); otherwise (a
ClickHouse server, deletion vectors, column mapping, object storage, a view) the
lakehouse engine reads the version and the rows are handed over as Arrow."""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from lakehouse.errors import LakehouseError
from lakehouse.serving.store import STAGE, Held, ServingError, Store, now_text, string_literal
from lakehouse.serving.types import column_type, quote_name, structure
from lakehouse.sql.engine_api import Engine
from lakehouse.tables.convert import normalize_schema
from lakehouse.tables.snapshot import DataFile, Snapshot

_GLOB = set("*?{}[],'\\")


@dataclass(frozen=True)
class Source:
    """What a mirror is made from: a stored table, or a view's SQL over stored tables."""

    name: str
    view_sql: str | None  # None: a stored table
    bases: tuple[str, ...]  # the stored tables it reads (itself, for a table)


def refresh(
    store: Store,
    engine: Engine,
    source: Source,
    versions: dict[str, int],
    snapshot: Snapshot | None,
    scratch: str,
) -> Held:
    """Make the mirror of ``source`` hold ``versions`` of its tables. ``snapshot`` is the
    table's version as files (None for a view)."""
    layer, table = source.name.split(".", 1)
    store.ensure_database(layer)
    live = f"{quote_name(layer)}.{quote_name(table)}"
    stage = f"{quote_name(layer)}.{quote_name(STAGE + table)}"
    at = now_text()
    if snapshot is not None and _direct(store, snapshot):
        schema = normalize_schema(snapshot.schema)
        expected: int | None = (
            snapshot.row_count if all(f.num_records is not None for f in snapshot.files) else None
        )
        _create(store, stage, schema, _held(source, versions, expected, at))
        _load_files(store, stage, schema, snapshot)
    else:
        rows = _read(engine, source, versions)
        expected = rows.num_rows
        _create(store, stage, rows.schema, _held(source, versions, expected, at))
        _load_arrow(store, stage, rows, scratch)
    counted = int(store.query(f"SELECT count() AS n FROM {stage}").column(0)[0].as_py())
    if expected is not None and counted != expected:
        raise ServingError(
            f"{source.name}: the mirror being built has {counted} rows, the version "
            f"{expected}; the live mirror is left as it was",
            "run `lakehouse serving refresh` again",
        )
    held = _held(source, versions, counted, at)
    if expected is None:  # the stage was made before its rows were known
        store.command(f"ALTER TABLE {stage} MODIFY COMMENT {string_literal(held.comment())}")
    exists = store.query(f"EXISTS TABLE {live}")
    if int(exists.column(0)[0].as_py()):
        store.command(f"EXCHANGE TABLES {stage} AND {live}")
        store.command(f"DROP TABLE IF EXISTS {stage} SYNC")
    else:
        store.command(f"RENAME TABLE {stage} TO {live}")
    return held


def _direct(store: Store, snap: Snapshot) -> bool:
    """Whether ClickHouse can read the version's files itself."""
    return (
        store.embedded
        and snap.direct
        and snap.mapping == "none"
        and not any(_has_struct(f.type) for f in snap.schema)  # read as Nullable(Tuple)
        and all(f.deletion is None and "://" not in f.path for f in snap.files)
    )


def _has_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_struct(kind.value_type)
    if pa.types.is_map(kind):
        return _has_struct(kind.key_type) or _has_struct(kind.item_type)
    return False


def _held(source: Source, versions: dict[str, int], rows: int | None, at: str) -> Held:
    return Held(source.name, dict(versions), rows or 0, at)


def _create(store: Store, stage: str, schema: pa.Schema, held: Held) -> None:
    """The stage, made anew (a stage a failed refresh left behind is replaced), its
    comment saying what it will hold once its rows are counted."""
    if not len(schema):
        raise LakehouseError("a table without columns cannot be mirrored")
    store.command(
        f"CREATE OR REPLACE TABLE {stage} ({structure(schema)}) ENGINE = MergeTree "
        f"ORDER BY tuple() COMMENT {string_literal(held.comment())}"
    )


def _load_files(store: Store, stage: str, schema: pa.Schema, snap: Snapshot) -> None:
    """One INSERT per partition and folder, ClickHouse reading the parquet files."""
    names = schema.names
    data = [c for c in names if c not in snap.partition_columns]
    shape = string_literal(structure(pa.schema([schema.field(c) for c in data])))
    into = ", ".join(quote_name(c) for c in names)
    groups: dict[tuple[Any, ...], list[DataFile]] = defaultdict(list)
    for f in snap.files:
        groups[(f.partition, os.path.dirname(f.path))].append(f)
    for (partition, folder), files in groups.items():
        values = dict(partition)
        picked = []
        for c in names:
            if c in values:
                kind = column_type(schema.field(c).type)
                value = "NULL" if values[c] is None else string_literal(str(values[c]))
                picked.append(f"CAST({value} AS {kind})")
            else:
                picked.append(quote_name(c))
        bare = [os.path.basename(f.path) for f in files]
        if any(ch in _GLOB for ch in folder) or any(ch in _GLOB for n in bare for ch in n):
            patterns = [f.path for f in files]  # read one by one: a name glob would misread
            if any(ch in "*?{}[]" for p in patterns for ch in p):
                raise LakehouseError(f"{folder}: a data file name holds glob characters")
        else:
            patterns = [
                os.path.join(folder, "{" + ",".join(bare[i : i + 500]) + "}")
                for i in range(0, len(bare), 500)
            ]
        for pattern in patterns:
            store.command(
                f"INSERT INTO {stage} ({into}) SELECT {', '.join(picked)} "
                f"FROM file({string_literal(pattern)}, 'Parquet', {shape})"
            )


def _read(engine: Engine, source: Source, versions: dict[str, int]) -> pa.Table:
    """The rows through the lakehouse engine, every table pinned at its version."""
    pinned = {b: engine.version_view(b, versions[b]) for b in source.bases}
    if source.view_sql is None:
        return engine.read(source.name, versions[source.name])
    return engine.query(source.view_sql, tables=pinned).to_arrow()


def _load_arrow(store: Store, stage: str, rows: pa.Table, scratch: str) -> None:
    if not rows.num_rows:
        return
    if not store.embedded:
        store.insert_arrow(stage, rows)
        return
    # The embedded store reads an Arrow file faster than rows handed over in memory.
    os.makedirs(scratch, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".arrow", dir=scratch)
    try:
        with os.fdopen(fd, "wb") as out, ipc.new_file(out, rows.schema) as writer:
            writer.write_table(rows)
        store.command(f"INSERT INTO {stage} SELECT * FROM file({string_literal(path)}, 'Arrow')")
    finally:
        os.unlink(path)
