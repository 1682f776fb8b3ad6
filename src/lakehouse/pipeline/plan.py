"""Everything that can be checked before a run: SQL that parses, tables that exist, no
cycles, and every query bound against the schemas it will see (unknown columns and type
errors show up here, with the file and line)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from lakehouse.errors import LakehouseError
from lakehouse.names import LAYERS
from lakehouse.pipeline.errors import PipelineError, Problem
from lakehouse.pipeline.graph import order
from lakehouse.pipeline.incremental import RefreshKey, refresh_key
from lakehouse.pipeline.model import Dataset, Pipeline
from lakehouse.pipeline.quality import RESCUED
from lakehouse.pipeline.sniff import sniff
from lakehouse.quoting import ident
from lakehouse.sql.names import find_references

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

BRONZE_COLUMNS = (
    ("_ingested_at", "TIMESTAMPTZ"),
    ("_ingest_date", "DATE"),
    ("_source_system", "VARCHAR"),
    ("_source", "VARCHAR"),
    ("_record_hash", "VARCHAR"),
)


@dataclass
class Plan:
    pipeline: Pipeline
    order: list[str]
    strategy: dict[str, str] = field(default_factory=dict)  # dataset -> how it is refreshed
    refresh_keys: dict[str, RefreshKey] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)  # files dataset -> its folder
    unchecked: dict[str, str] = field(default_factory=dict)  # dataset -> why its columns
    # could not be checked (a files dataset with no table and no files yet, what reads it)


def validate(
    pipeline: Pipeline,
    lh: Lakehouse,
    bind: bool = True,
    selection: list[str] | None = None,
    engine: str | None = None,
) -> Plan:
    """The plan of a pipeline, or every problem of it with file and line. With ``bind``
    the folders of files datasets must exist (those of the run's ``selection``, when a run
    selects datasets) and every query is bound (its columns and those of its expectations
    checked); ``Plan.unchecked`` names datasets whose columns could not be known before a
    run. Datasets that run on Spark (``engine``: the run's, else as each dataset, its
    pipeline or the settings say) are checked for constructs Spark cannot run."""
    from lakehouse.pipeline.graph import select

    try:
        chosen = set(select(pipeline, selection)) if selection else None
    except PipelineError:  # a cycle: reported with the other problems below
        chosen = None
    problems: list[Problem] = []
    existing = set(lh.catalog.names())
    folders: dict[str, str] = {}
    for ds in pipeline.datasets.values():
        if ds.sql is not None:
            problems += _parse(ds)
        if ds.kind == "files" and ds.path is not None:
            needed = bind and (chosen is None or ds.name in chosen)
            problems += _folder(pipeline, lh, ds, folders, needed)
        for table in ds.depends_on:
            if table not in pipeline.datasets and table not in existing and not lh.exists(table):
                line = _line_of(ds, table)
                problems.append(
                    Problem(
                        ds.file,
                        line,
                        f"{ds.name} reads {table}, which is neither a dataset of this pipeline "
                        "nor a table of the warehouse",
                        _suggest(table, list(pipeline.datasets) + sorted(existing)),
                    )
                )
        for table in ds.streaming_inputs:
            if table not in ds.inputs:
                problems.append(
                    Problem(
                        ds.file, ds.at("stream"), f"stream names {table}, which it does not read"
                    )
                )
    problems += _spark_problems(pipeline, lh, engine, chosen)
    if problems:
        raise PipelineError(problems)
    plan = Plan(pipeline, order(pipeline), folders=folders)
    for name in plan.order:
        ds = pipeline.datasets[name]
        plan.strategy[name] = _strategy(ds, plan)
    if bind:
        _bind_all(pipeline, lh, plan)
    return plan


def _spark_problems(
    pipeline: Pipeline, lh: Lakehouse, engine: str | None, chosen: set[str] | None
) -> list[Problem]:
    """What the datasets asked to run on Spark have that Spark cannot run (``auto``
    datasets run such a query on DuckDB)."""
    from lakehouse.spark.routing import requested

    spark = [
        ds
        for ds in pipeline.datasets.values()
        if ds.sql is not None
        and (chosen is None or ds.name in chosen)
        and requested(engine, ds, pipeline.name, lh.settings)[0] == "spark"
    ]
    if not spark:
        return []
    from lakehouse.spark.validate import dataset_problems

    return [p for ds in spark for p in dataset_problems(ds)]


def _folder(
    pipeline: Pipeline, lh: Lakehouse, ds: Dataset, folders: dict[str, str], exists: bool
) -> list[Problem]:
    """The folder of a files dataset, its variables expanded; a problem at ``path:`` when
    a variable is not defined or (``exists``) the folder is not there."""
    assert ds.path is not None
    try:
        folder = pipeline.expand(ds.path, lh.root)
    except LakehouseError as exc:
        return [Problem(ds.file, ds.at("path"), exc.message, exc.hint)]
    folders[ds.name] = folder
    from lakehouse.ingest.landing import is_object_store

    if not exists or not lh.local or is_object_store(folder) or Path(folder).is_dir():
        return []  # a prefix of an object store is looked at by the run
    given = f"path {ds.path} is {folder}" if folder != ds.path else f"path {folder}"
    variables = re.findall(r"\$\{(\w+)\}", ds.path)
    hint = "create the folder, or correct path:"
    if variables:
        hint += f" or pass --var {variables[0]}=FOLDER"
    return [Problem(ds.file, ds.at("path"), f"{given}, which does not exist", hint)]


def _parse(ds: Dataset) -> list[Problem]:
    """One SELECT that sqlglot reads; its layer.table references become the inputs."""
    assert ds.sql is not None
    text = ds.sql.strip().rstrip(";")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        at = int(first.get("line") or 1), int(first.get("col") or 1)
        message, at = _parse_problem(str(first.get("description", exc)), text, at)
        line = ds.sql_line + _leading_blank(ds.sql) + at[0] - 1
        return [Problem(ds.file, line, f"SQL does not parse: {message}")]
    except sqlglot.errors.TokenError as exc:
        return [Problem(ds.file, ds.sql_line, f"SQL does not parse: {exc}")]
    if len(statements) != 1:
        return [Problem(ds.file, ds.sql_line, "a dataset is one SELECT; found several statements")]
    if not isinstance(statements[0], exp.Query):
        kind = type(statements[0]).__name__.upper()
        return [Problem(ds.file, ds.sql_line, f"a dataset is a SELECT, not {kind}")]
    ds.sql = text + "\n"  # a last line that is a comment cannot swallow what follows
    ds.inputs = list(dict.fromkeys(r.name for r in find_references(text)))
    return []


# The parser's names for the parts of a query: the keyword that starts one, and what a
# complete one has after it.
CLAUSES = {
    "Where": ("WHERE", "a condition"),
    "Having": ("HAVING", "a condition"),
    "Qualify": ("QUALIFY", "a condition"),
    "Order": ("ORDER BY", "the columns to order by"),
    "Group": ("GROUP BY", "the columns to group by"),
    "Limit": ("LIMIT", "a number of rows"),
    "Offset": ("OFFSET", "a number of rows"),
    "Join": ("JOIN", "a table"),
    "From": ("FROM", "a table"),
    "Cast": ("CAST", "a value and a type"),
    "Case": ("CASE", "WHEN ... THEN"),
    "Paren": ("(", "an expression and its closing )"),
}


def _parse_problem(description: str, sql: str, at: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """The parser's complaint in the words of SQL, and the (line, column) it is about: a
    clause left empty (``WHERE`` and nothing after it) is reported at its keyword."""
    description = re.sub(r"\x1b\[[0-9;]*m", "", description)
    missing = re.match(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>", description)
    if missing:
        clause = CLAUSES.get(missing.group(1))
        if clause is None:
            return "the query stops in the middle of an expression", at
        keyword, needs = clause
        return f"{keyword} without {needs} after it", _keyword_before(sql, keyword, at)
    token = r"Expected (.+?) but got <Token token_type: TokenType\.(\w+), text: (.*?), line"
    expected = re.match(token, description)
    if expected:
        wanted, kind, found = expected.groups()
        if kind == "SENTINEL":
            return f"the query ends too early: {wanted} expected", at
        return f"{wanted} expected, found {found!r}", at
    return description, at


def _keyword_before(sql: str, keyword: str, at: tuple[int, int]) -> tuple[int, int]:
    """The (line, column) of the last ``keyword`` before ``at`` in ``sql``; ``at`` if none."""
    lines = sql.split("\n")
    line, col = at
    end = sum(len(x) + 1 for x in lines[: line - 1]) + col
    words = r"\s+".join(re.escape(w) for w in keyword.split())
    pattern = rf"\b{words}\b" if keyword[0].isalpha() else words
    found = [m.start() for m in re.finditer(pattern, sql[:end], re.IGNORECASE)]
    if not found:
        return at
    before = sql[: found[-1]]
    return before.count("\n") + 1, found[-1] - (before.rfind("\n") + 1) + 1


def _leading_blank(sql: str) -> int:
    return len(sql) - len(sql.lstrip("\n")) if sql.startswith("\n") else 0


def _line_of(ds: Dataset, table: str) -> int:
    if ds.sql is not None:
        at = ds.sql.find(table)
        if at >= 0:
            return ds.sql_line + ds.sql[:at].count("\n")
    return ds.line


def _suggest(table: str, names: list[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(table, names, n=2, cutoff=0.6)
    return f"did you mean {' or '.join(close)}?" if close else None


def _strategy(ds: Dataset, plan: Plan) -> str:
    if ds.kind == "files":
        return f"files from {plan.folders.get(ds.name, ds.path)}, each file once"
    if ds.kind == "api" and ds.api is not None:
        return f"records of {ds.api.get('base_url', '')}{ds.api.get('endpoint', '')}, exactly once"
    if ds.kind == "database" and ds.database is not None:
        how = ds.database.get("incremental_column")
        return f"table {ds.database.get('table')}, " + (
            f"incremental by {how}" if how else "whole (overwrite)"
        )
    if ds.kind == "view":
        return "view (not stored)"
    if ds.kind == "append":
        keyed = f", new {', '.join(ds.keys)} only" if ds.keys else ""
        return f"append: new rows of {', '.join(ds.streaming_inputs)}{keyed}"
    if ds.kind == "cdc":
        return f"cdc (SCD type {ds.scd}) on {', '.join(ds.keys)} ordered by {ds.sequence_by}"
    if ds.sql is None or ds.refresh == "full":
        return "materialized view: recomputed" + (
            " (refresh: full)" if ds.refresh == "full" else ""
        )
    key, why = refresh_key(ds.sql, ds.inputs, ds.options.get("date_column"))
    if key is None:
        return f"materialized view: recomputed ({why})"
    plan.refresh_keys[ds.name] = key
    return f"materialized view: incremental by {key.column}"


# -- binding ------------------------------------------------------------------------------
def _bind_all(pipeline: Pipeline, lh: Lakehouse, plan: Plan) -> None:
    """Run each query's DESCRIBE against empty stand-ins of the tables it reads."""
    con = duckdb.connect()
    for layer in LAYERS:
        con.execute(f"CREATE SCHEMA {ident(layer)}")
    problems: list[Problem] = []
    known: set[str] = set()
    try:
        for name in plan.order:
            ds = pipeline.datasets[name]
            for table in ds.depends_on:
                if table not in known and table not in pipeline.datasets:
                    _stand_in(con, table, lh.engine.query(f"SELECT * FROM {table} LIMIT 0").schema)
                    known.add(table)
            unknown = [t for t in ds.depends_on if t not in known]
            if unknown:  # reads something whose shape is only known after a run
                plan.unchecked[name] = f"reads {unknown[0]}, whose columns are not known yet"
                continue
            if ds.kind == "files":
                schema, why = sniff(lh, ds, plan.folders.get(name))
                if schema is not None:
                    _stand_in(con, name, schema, bronze=True)
                    known.add(name)
                else:
                    plan.unchecked[name] = why
                continue
            if ds.kind in ("api", "database"):
                if lh.exists(name):
                    _stand_in(con, name, lh.table(name).schema, bronze=True)
                    known.add(name)
                else:
                    plan.unchecked[name] = f"no table {name} yet: its source gives its columns"
                continue
            if ds.sql is None:
                plan.unchecked[name] = "a Python dataset: its columns are known when it runs"
                continue
            problem = _describe(con, ds, ds.sql, ds.sql_line)
            if problem is not None:
                problems.append(problem)
                continue
            output = con.sql(f"SELECT * FROM ({ds.sql}) AS __lh LIMIT 0").columns
            for e in ds.expectations:
                if e.check == "no_rescued_data" and RESCUED not in output:
                    # Passes while nothing upstream was rescued; an input that has the
                    # column and a query that leaves it out would make it pass forever.
                    having = [t for t in ds.depends_on if t in known and _has(con, t, RESCUED)]
                    if having:
                        problems.append(
                            Problem(
                                ds.file,
                                e.line,
                                f"expectation {e.name}: its rows have no {RESCUED} column; "
                                f"select it from {having[0]} (e.g. SELECT *, or name it)",
                            )
                        )
                    continue
                if e.row_level:
                    check = f"SELECT ({e.sql}) FROM ({ds.sql}) AS __lh LIMIT 0"
                    try:
                        con.execute(check).fetchall()
                    except duckdb.Error as exc:
                        problems.append(
                            Problem(ds.file, e.line, f"expectation {e.name}: {_first_line(exc)}")
                        )
            columns = con.sql(f"SELECT * FROM ({ds.sql}) AS __lh LIMIT 0").to_arrow_table().schema
            if ds.kind == "cdc":
                missing = [c for c in ds.keys + [ds.sequence_by or ""] if c not in columns.names]
                if missing:
                    problems.append(
                        Problem(ds.file, ds.at("keys"), f"cdc columns not in the query: {missing}")
                    )
                    continue
                columns = _cdc_schema(ds, columns)
            _stand_in(con, name, columns, bronze=ds.layer == "bronze")
            known.add(name)
    finally:
        con.close()
    if problems:
        raise PipelineError(problems)


def _describe(con: duckdb.DuckDBPyConnection, ds: Dataset, sql: str, first: int) -> Problem | None:
    try:
        con.execute("DESCRIBE " + sql).fetchall()
    except duckdb.Error as exc:
        text = str(exc)
        match = re.search(r"LINE (\d+):", text)
        line = first + int(match.group(1)) - 1 if match else first
        return Problem(ds.file, line, _first_line(exc))
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _has(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    layer, name = table.split(".")
    return column in con.sql(f"SELECT * FROM {ident(layer)}.{ident(name)} LIMIT 0").columns


def _stand_in(
    con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema, bronze: bool = False
) -> None:
    empty = pa.Table.from_batches([], schema=schema)  # noqa: F841 - read by DuckDB
    layer, table = name.split(".")
    con.execute(f"CREATE OR REPLACE TABLE {ident(layer)}.{ident(table)} AS SELECT * FROM empty")
    if bronze:
        have = set(schema.names)
        for column, type_ in BRONZE_COLUMNS:
            if column not in have:
                con.execute(
                    f"ALTER TABLE {ident(layer)}.{ident(table)} ADD COLUMN {ident(column)} {type_}"
                )


def _cdc_schema(ds: Dataset, columns: pa.Schema) -> pa.Schema:
    fields = [f for f in columns if f.name not in ds.except_columns]
    if ds.scd == 2:
        valid = columns.field(ds.valid_time or ds.sequence_by or "").type
        fields += [
            pa.field("valid_from", valid),
            pa.field("valid_to", valid),
            pa.field("is_current", pa.bool_()),
        ]
    return pa.schema(fields)
