"""Which engine runs a dataset: the one asked for (the run's ``--engine``, the dataset's
``engine:``, its pipeline's, the settings' default), and for ``auto`` the sizes of the input
versions the run pins against the thresholds of the ``engine`` settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.pipeline.model import Dataset, Pipeline
    from lakehouse.settings.model import EngineSettings, Settings
    from lakehouse.sql.engine_api import Engine

ENGINES = ("duckdb", "spark", "auto")


@dataclass(frozen=True)
class Choice:
    engine: str  # duckdb | spark
    why: str


def requested(run: str | None, ds: Dataset, pipeline: str, settings: Settings) -> tuple[str, str]:
    """The engine asked for and who asked: the run, the dataset, its pipeline's settings,
    else the settings' default."""
    if run is not None:
        return run, "the run's --engine"
    if ds.engine is not None:
        return ds.engine, f"engine: in {ds.file.name}"
    own = settings.pipelines.get(pipeline)
    if own is not None and own.engine is not None:
        return own.engine, f"pipelines.{pipeline}.engine"
    return settings.engine.default, "engine.default"


def choose(
    wanted: str,
    source: str,
    sql: str | None,
    engine: Engine,
    pins: dict[str, str],
    settings: EngineSettings,
) -> Choice:
    """The engine of one dataset's query over its pinned inputs."""
    if sql is None:
        return Choice("duckdb", "Python datasets run in the process")
    if wanted != "auto":
        return Choice(wanted, source)
    from lakehouse.spark.translate import problems

    untranslatable = problems(sql)
    if untranslatable:
        return Choice("duckdb", f"auto: not translatable to Spark ({untranslatable[0].message})")
    size, rows = input_size(engine, pins)
    figures = f"inputs {_size(size)}, {rows:,} rows"
    if size >= settings.spark_above:
        return Choice("spark", f"auto: {figures} >= spark_above {_size(settings.spark_above)}")
    if settings.spark_above_rows is not None and rows >= settings.spark_above_rows:
        return Choice("spark", f"auto: {figures} >= spark_above_rows {settings.spark_above_rows:,}")
    return Choice("duckdb", f"auto: {figures} < spark_above {_size(settings.spark_above)}")


def input_size(engine: Engine, pins: dict[str, str]) -> tuple[int, int]:
    """Bytes of data files and rows the pinned inputs hold."""
    size = rows = 0
    for view in pins.values():
        snap = engine.pinned(view)
        if snap is not None and all(f.num_records is not None for f in snap.files):
            size += sum(f.size_bytes for f in snap.files)
            rows += snap.row_count
        else:
            rows += engine.row_count(view)
    return size, rows


def _size(value: int) -> str:
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"


def explain(
    engine: Engine, settings: Settings, pipeline: Pipeline, name: str, run: str | None
) -> tuple[str, str]:
    """The engine a dataset would run on now and why: for ``auto``, from the newest
    versions of its inputs (a run reads those or fewer rows)."""
    ds = pipeline.datasets[name]
    if ds.sql is None:
        return "-", "no query"
    wanted, source = requested(run, ds, pipeline.name, settings)
    if wanted != "auto":
        return wanted, source
    from lakehouse.errors import LakehouseError

    pins = {}
    for table in ds.inputs:
        try:
            pins[table] = engine.version_view(table, engine.snapshot(table).version)
        except LakehouseError:  # not made yet (a dataset of this pipeline), or a view
            continue
    choice = choose(wanted, source, ds.sql, engine, pins, settings.engine)
    return choice.engine, choice.why


def newest_pins(engine: Engine, sql: str, pins: dict[str, str] | None = None) -> dict[str, str]:
    """The ``layer.table`` names ``sql`` reads that ``pins`` lacks, each pinned at its
    newest version (a SQL view: its name, read through DuckDB)."""
    import sqlglot
    from sqlglot import exp

    from lakehouse.errors import LakehouseError
    from lakehouse.names import LAYERS

    pins = pins or {}
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return {}
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    found = {}
    for table in tree.find_all(exp.Table):
        name = f"{table.db}.{table.name}".lower()
        if not table.db or table.db.lower() not in LAYERS or name in pins or name in ctes:
            continue
        try:
            found[name] = engine.version_view(name, engine.snapshot(name).version)
        except LakehouseError:  # a SQL view
            found[name] = name
    return found


def choose_query(engine: Engine, sql: str, settings: EngineSettings) -> Choice:
    """``engine: auto`` for an ad-hoc query: by the newest versions of the tables it reads."""
    return choose("auto", "auto", sql, engine, newest_pins(engine, sql), settings)
