"""A run's pinned inputs as Spark views: Spark reads the exact parquet files of each
table version (or of the commits a range added), with the version's partition values as
constant columns and its schema, so it needs no table-format library of its own.

A version Spark cannot read as plain parquet (deletion vectors, column mapping, files on
an object store, a view the run built in DuckDB) is read by the platform's own reader
and handed to Spark as Arrow: the same rows, through the driver."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.tables.snapshot import DataFile, Snapshot

if TYPE_CHECKING:
    from lakehouse.sql.engine_api import Engine


@dataclass(frozen=True)
class Input:
    table: str  # layer.name
    view: str  # the Spark temporary view
    files: bool  # read from the table's files (False: handed over as Arrow)
    list_columns: frozenset[str]  # columns that are lists


def spark_view_name(table: str, pinned: str) -> str:
    """A Spark temporary view name for one pinned input (Spark names have no dots)."""
    digest = abs(hash((table, pinned))) % 10**10
    return f"__lh_{table.replace('.', '__')}_{digest}"


def register(
    spark: Any, engine: Engine, pins: dict[str, str], frames: dict[Any, Any] | None = None
) -> dict[str, Input]:
    """A Spark view per pinned input (table -> the engine's view of it). ``frames`` keeps
    the DataFrames of versions read from their files, for the next query of the run that
    reads the same version (a version's files never change)."""
    made = {}
    frames = {} if frames is None else frames
    for table, pinned in pins.items():
        name = spark_view_name(table, pinned)
        snap = engine.pinned(pinned)
        frame = None
        if snap is not None and readable(snap):
            key = (pinned, snap.version, tuple(f.path for f in snap.files))
            frame = frames.get(key)
            if frame is None:
                frame = frames[key] = files_frame(spark, snap)
        from_files = frame is not None
        if frame is None:
            rows = engine.query(f"SELECT * FROM {pinned}").to_arrow()
            frame = arrow_frame(spark, rows)
            schema = rows.schema
        else:
            assert snap is not None
            schema = snap.schema
        frame.createOrReplaceTempView(name)
        lists = frozenset(
            f.name for f in schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)
        )
        made[table] = Input(table, name, from_files, lists)
    return made


def readable(snap: Snapshot) -> bool:
    """Whether Spark reads the snapshot's files as they are."""
    return (
        snap.direct
        and snap.mapping == "none"
        and all(f.deletion is None and _local(f.path) for f in snap.files)
    )


def files_frame(spark: Any, snap: Snapshot) -> Any:
    """The snapshot's rows as a Spark DataFrame read from its files (None: its schema has
    a type Spark cannot be given)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    try:
        full = from_arrow_schema(snap.schema)
        data = from_arrow_schema(
            pa.schema([f for f in snap.schema if f.name not in snap.partition_columns])
        )
    except (TypeError, ValueError, NotImplementedError):
        return None
    names = snap.schema.names
    if not snap.files:
        return spark.createDataFrame([], full)
    groups: dict[tuple[Any, ...], list[DataFile]] = defaultdict(list)
    for f in snap.files:
        groups[f.partition].append(f)
    frames = []
    for partition, group in groups.items():
        frame = spark.read.schema(data).parquet(*[_uri(f.path) for f in group])
        values = dict(partition)
        for column in snap.partition_columns:
            kind = full[column].dataType
            frame = frame.withColumn(column, F.lit(values.get(column)).cast(kind))
        frames.append(frame.select(*names))
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def arrow_frame(spark: Any, rows: pa.Table) -> Any:
    """Arrow rows as a Spark DataFrame (through the driver)."""
    return spark.createDataFrame(rows)


def _local(path: str) -> bool:
    return path.startswith("/") or path.startswith("file:")


def _uri(path: str) -> str:
    return path if path.startswith("file:") else f"file://{path}"
