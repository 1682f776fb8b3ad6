"""A dataset's rows for a run: its query (or function) over the inputs as the run pins
them, with a flag column per row check, split by the checks. The query runs on the engine
``spark/routing.py`` picks: DuckDB in the process, or Spark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from lakehouse.pipeline.kinds.checks import count_split
from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.kinds.relations import registered
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.python import Context
from lakehouse.pipeline.quality import Split, needs_columns, split_rows, with_flags
from lakehouse.pipeline.records import DatasetRun
from lakehouse.tables.convert import to_arrow

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

PRODUCED = "__lh_py_out"  # what a Python dataset's function returned


def compute(ctx: RunContext, ds: Dataset, pins: dict[str, str], item: DatasetRun) -> Split:
    """The dataset's rows from the pinned inputs, with its row checks applied."""
    lh = ctx.lh
    item.rows_read += rows_in(lh, ds, pins)
    if ds.function is not None:
        context = Context(lh, ds, pins, ctx.spark)
        try:
            table = as_arrow(ds.function(context))
        finally:
            if context.spark_views:
                ctx.spark().drop(context.spark_views)
        if context.spark_views:
            item.engine, item.engine_why = "spark", "the function asked for Spark DataFrames"
        with registered(lh.engine.cursor(), PRODUCED, table) as produced:
            flagged = with_flags(f"SELECT * FROM {produced}", ds.expectations, table.column_names)
            batch = lh.engine.query(flagged, pins).to_arrow()
    else:
        assert ds.sql is not None
        columns = query_columns(lh, ds, pins) if needs_columns(ds.expectations) else None
        flagged = with_flags(ds.sql, ds.expectations, columns)
        batch = run_query(ctx, ds, flagged, pins, item)
    return count_split(ds, item, split_rows(batch, ds.expectations))


def staged(ctx: RunContext, ds: Dataset, pins: dict[str, str], item: DatasetRun) -> Any:
    """The dataset's rows written by Spark's executors into its table's folder
    (``StagedFiles``, for ``write`` to commit as they are), when it runs on Spark, has no
    expectations (nothing to split or count on the driver) and its table is a local,
    Delta table, unpartitioned or partitioned by a column of the query or by the date
    partition derived from its ``date_column``; else None."""
    if ds.sql is None or ds.expectations or not ctx.lh.local:
        return None
    info = ctx.lh.catalog.get(ds.name)
    if info is None or info.format != "delta" or ctx.existing(ds.name) is None:
        return None
    table = ctx.lh.engine.snapshot(ds.name)
    partitions = partition_plan(table.partition_columns, info.options)
    if partitions is None or route(ctx, ds, pins, item) != "spark":
        return None
    from lakehouse.names import parse_table_name

    root = ctx.lh.storage.table_uri(parse_table_name(ds.name)).removeprefix("file://")
    files = ctx.spark().write_files(ds.sql, pins, root, table.schema, partitions)
    if files is not None:
        item.rows_read += rows_in(ctx.lh, ds, pins)
    return files


def partition_plan(
    columns: tuple[str, ...], options: dict[str, Any]
) -> dict[str, tuple[str, str | None]] | None:
    """How each partition column of a table comes from a dataset's rows: (the column,
    None) for a column of the query, (the date column, granularity) for the derived date
    partition, as the write path derives it; None when the table has another kind."""
    date, grain = options.get("date_column"), options.get("granularity")
    plan: dict[str, tuple[str, str | None]] = {}
    for column in columns:
        if date and grain and column == f"{date}_{grain}":
            plan[column] = (str(date), str(grain))
        else:
            plan[column] = (column, None)
    return plan


def route(ctx: RunContext, ds: Dataset, pins: dict[str, str], item: DatasetRun) -> str:
    """The engine of the dataset's query over ``pins``; it and why in ``item``."""
    from lakehouse.spark.routing import choose, requested

    settings = ctx.lh.settings
    wanted, source = requested(ctx.engine, ds, ctx.pipeline.name, settings)
    choice = choose(wanted, source, ds.sql, ctx.lh.engine, pins, settings.engine)
    item.engine, item.engine_why = choice.engine, choice.why
    return choice.engine


def run_query(
    ctx: RunContext, ds: Dataset, sql: str, pins: dict[str, str], item: DatasetRun
) -> pa.Table:
    """``sql`` over ``pins`` on the dataset's engine; the engine and why in ``item``."""
    if route(ctx, ds, pins, item) == "spark":
        rows: pa.Table = ctx.spark().query(sql, pins)
        return rows
    return ctx.lh.engine.query(sql, pins).to_arrow()


def query_columns(lh: Lakehouse, ds: Dataset, pins: dict[str, str]) -> list[str]:
    """The columns of the dataset's query."""
    assert ds.sql is not None
    return lh.engine.query(f"SELECT * FROM ({ds.sql}) AS __lh LIMIT 0", pins).columns


def rows_in(lh: Lakehouse, ds: Dataset, pins: dict[str, str]) -> int:
    """The rows of the dataset's inputs as the run reads them."""
    return sum(lh.engine.row_count(pins[t]) for t in ds.inputs if t in pins)


def as_arrow(produced: Any) -> pa.Table:
    """What a Python dataset's function returned, as an Arrow table."""
    from lakehouse.sql.result import Result

    if isinstance(produced, Result):
        return produced.to_arrow()
    if isinstance(produced, duckdb.DuckDBPyRelation):
        return produced.to_arrow_table()
    if type(produced).__module__.startswith("pyspark."):  # a Spark DataFrame
        rows: pa.Table = produced.toArrow()
        return rows
    data = to_arrow(produced)
    return data.read_all() if isinstance(data, pa.RecordBatchReader) else data
