"""The platform's SQL run by Spark over pinned table versions: translated (``translate``),
its inputs read by Spark from their files (``inputs``), its result handed back as Arrow in
the column types DuckDB gives the same query, so a table is the same whichever engine
wrote it."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.spark.inputs import register
from lakehouse.spark.session import spark_session
from lakehouse.spark.translate import to_spark
from lakehouse.tables.staged import StagedFiles

if TYPE_CHECKING:
    from lakehouse.settings.model import SparkSettings
    from lakehouse.sql.engine_api import Engine


class SparkQueryFailed(LakehouseError):
    """Spark (its driver or an executor) failed to run a query."""


class SparkEngine:
    """Runs SQL on the process's Spark session (``session.spark_session``)."""

    name = "spark"

    def __init__(self, engine: Engine, settings: SparkSettings, master: str | None = None) -> None:
        self.engine = engine  # the warehouse's reader: pinned views, schemas, fallbacks
        self.settings = settings
        self.master = master
        self.last_seconds: dict[str, float] = {}  # where the last query's time went
        self.frames: dict[Any, Any] = {}  # DataFrames of pinned versions read from files
        self._frames_of: Any = None  # the session ``frames`` belong to

    def session(self) -> Any:
        return spark_session(self.settings, self.master)

    def frame(self, sql: str, pins: dict[str, str] | None = None) -> tuple[Any, list[str]]:
        """``sql`` as a Spark DataFrame over the ``pins`` (table -> the DuckDB engine's
        view of the version to read; tables not pinned are read at their newest version),
        and the Spark views it reads, to drop when done."""
        started = time.perf_counter()
        spark = self.session()
        if spark is not self._frames_of:  # DataFrames belong to the session that made them
            self.frames, self._frames_of = {}, spark
        self.last_seconds = {"session": time.perf_counter() - started}
        pins = {**self._unpinned(sql, pins or {}), **(pins or {})}
        started = time.perf_counter()
        inputs = register(spark, self.engine, pins, self.frames)
        self.last_seconds["inputs"] = time.perf_counter() - started
        started = time.perf_counter()
        arrays = set().union(*(i.list_columns for i in inputs.values())) if inputs else set()
        text = to_spark(sql, {t: i.view for t, i in inputs.items()}, arrays)
        self.last_seconds["translate"] = time.perf_counter() - started
        try:
            return spark.sql(text), [i.view for i in inputs.values()]
        except Exception as exc:  # noqa: BLE001 - Spark's analysis errors
            self.drop([i.view for i in inputs.values()])
            raise failed(exc, text) from exc

    def query(self, sql: str, pins: dict[str, str] | None = None) -> pa.Table:
        """``sql``'s rows, computed by Spark, in the types DuckDB gives them."""
        frame, views = self.frame(sql, pins)
        started = time.perf_counter()
        try:
            rows = frame.toArrow()
        except Exception as exc:  # noqa: BLE001 - a stage failed on the driver or an executor
            raise failed(exc, sql) from exc
        finally:
            self.drop(views)
        self.last_seconds["compute"] = time.perf_counter() - started
        return fit(rows, self.expected_schema(sql, pins))

    def write_files(
        self,
        sql: str,
        pins: dict[str, str] | None,
        root: str,
        table: pa.Schema,
        partitions: dict[str, tuple[str, str | None]] | None = None,
    ) -> StagedFiles | None:
        """``sql``'s rows written by the executors into ``root`` (a table's folder) in the
        types DuckDB gives them, when those and the ``partitions`` (column -> its source
        column and date granularity, None: as it is) are the ``table``'s columns (None:
        they are not, or cannot be known before: the rows are to be written as data)."""
        from lakehouse.spark.outputs import write_staged
        from lakehouse.tables.staged import same_columns

        partitions = partitions or {}
        expected = self.expected_schema(sql, pins)
        if expected is None:
            return None
        derived = [c for c, (_, grain) in partitions.items() if grain is not None]
        shaped = expected
        for column in derived:
            if column in expected.names or column not in table.names:
                return None
            shaped = shaped.append(table.field(column))
        sources = [source for source, _ in partitions.values()]
        if not same_columns(shaped, table) or any(s not in expected.names for s in sources):
            return None
        frame, views = self.frame(sql, pins)
        started = time.perf_counter()
        try:
            staged = write_staged(frame, root, expected, partitions, table)
        except Exception as exc:  # noqa: BLE001 - a stage failed on the driver or an executor
            raise failed(exc, sql) from exc
        finally:
            self.drop(views)
        self.last_seconds["write"] = time.perf_counter() - started
        return staged

    def expected_schema(self, sql: str, pins: dict[str, str] | None) -> pa.Schema | None:
        """The columns DuckDB gives ``sql`` (bound over the same inputs, no rows read)."""
        try:
            schema: pa.Schema = self.engine.query(
                f"SELECT * FROM ({sql}) AS __lh_spark LIMIT 0", pins
            ).schema
        except LakehouseError:
            return None
        return schema

    def drop(self, views: list[str]) -> None:
        spark = self.session()
        for view in views:
            spark.catalog.dropTempView(view)

    def _unpinned(self, sql: str, pins: dict[str, str]) -> dict[str, str]:
        """The tables ``sql`` names that ``pins`` lacks, each at its newest version."""
        from lakehouse.spark.routing import newest_pins

        return newest_pins(self.engine, sql, pins)


def fit(rows: pa.Table, expected: pa.Schema | None) -> pa.Table:
    """Spark's result in DuckDB's column types (Spark counts a list's size in 32 bits, for
    one), column by column where a cast is exact."""
    if expected is None or expected.names != rows.column_names:
        return rows
    columns = []
    for field, column in zip(expected, rows.columns, strict=True):
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns.append(column)
    return pa.Table.from_arrays(columns, names=rows.column_names)


def failed(exc: Exception, sql: str) -> SparkQueryFailed:
    """A Spark error as the platform's: its first line, without the JVM's stack."""
    text = str(exc).strip()
    # Spark's own error classes ([NAME] message) say more than the Java call around them
    classed = re.search(r"\[[A-Z][A-Z_.]+\][^\n]*", text)
    first = (
        classed.group(0)
        if classed
        else next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    )
    if "UNRESOLVED_ROUTINE" in text or "cannot be found" in text:
        hint = "a function Spark does not have: lakehouse validate --engine spark shows where"
    elif "Executor" in text or "Lost task" in text or "Task" in text and "failed" in text:
        hint = "a task failed on an executor (see the Spark worker's log); nothing was kept"
    else:
        hint = "see the Spark message; the same query runs on DuckDB with --engine duckdb"
    return SparkQueryFailed(f"Spark failed: {first[:500]}", hint)
