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

from lakehouse.names import LAYERS
from lakehouse.pipeline.definition import Dataset, Pipeline
from lakehouse.pipeline.errors import PipelineError, Problem
from lakehouse.pipeline.graph import order
from lakehouse.pipeline.incremental import RefreshKey, refresh_key
from lakehouse.pipeline.quality import RESCUED
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


def validate(pipeline: Pipeline, lh: Lakehouse, bind: bool = True) -> Plan:
    problems: list[Problem] = []
    existing = set(lh.catalog.names())
    for ds in pipeline.datasets.values():
        if ds.sql is not None:
            problems += _parse(ds)
        for table in ds.depends_on:
            if table not in pipeline.datasets and table not in existing and not lh.discover(table):
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
    if problems:
        raise PipelineError(problems)
    plan = Plan(pipeline, order(pipeline))
    for name in plan.order:
        ds = pipeline.datasets[name]
        plan.strategy[name] = _strategy(ds, plan)
    if bind:
        _bind_all(pipeline, lh, plan)
    return plan


def _parse(ds: Dataset) -> list[Problem]:
    """One SELECT that sqlglot reads; its layer.table references become the inputs."""
    assert ds.sql is not None
    text = ds.sql.strip().rstrip(";")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        line = ds.sql_line + _leading_blank(ds.sql) + int(first.get("line", 1)) - 1
        return [Problem(ds.file, line, f"SQL does not parse: {first.get('description', exc)}")]
    except sqlglot.errors.TokenError as exc:
        return [Problem(ds.file, ds.sql_line, f"SQL does not parse: {exc}")]
    if len(statements) != 1:
        return [Problem(ds.file, ds.sql_line, "a dataset is one SELECT; found several statements")]
    if not isinstance(statements[0], exp.Query):
        kind = type(statements[0]).__name__.upper()
        return [Problem(ds.file, ds.sql_line, f"a dataset is a SELECT, not {kind}")]
    ds.sql = text
    ds.inputs = list(dict.fromkeys(r.name for r in find_references(text)))
    return []


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
        return f"files from {ds.path}, each file once"
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
        con.execute(f"CREATE SCHEMA {layer}")
    problems: list[Problem] = []
    known: set[str] = set()
    try:
        for name in plan.order:
            ds = pipeline.datasets[name]
            for table in ds.depends_on:
                if table not in known and table not in pipeline.datasets:
                    _stand_in(con, table, lh.engine.query(f"SELECT * FROM {table} LIMIT 0").schema)
                    known.add(table)
            if any(t not in known for t in ds.depends_on):
                continue  # reads something whose shape is only known after a run
            if ds.kind == "files":
                schema = _sniff(pipeline, lh, ds)
                if schema is not None:
                    _stand_in(con, name, schema, bronze=True)
                    known.add(name)
                continue
            if ds.sql is None:
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
    return column in con.sql(f'SELECT * FROM {layer}."{name}" LIMIT 0').columns


def _stand_in(
    con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema, bronze: bool = False
) -> None:
    empty = pa.Table.from_batches([], schema=schema)  # noqa: F841 - read by DuckDB
    layer, table = name.split(".")
    con.execute(f'CREATE OR REPLACE TABLE {layer}."{table}" AS SELECT * FROM empty')
    if bronze:
        have = set(schema.names)
        for column, type_ in BRONZE_COLUMNS:
            if column not in have:
                con.execute(f'ALTER TABLE {layer}."{table}" ADD COLUMN {column} {type_}')


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


def _sniff(pipeline: Pipeline, lh: Lakehouse, ds: Dataset) -> pa.Schema | None:
    """The shape a files dataset will have: its table's, else a look at the files."""
    if lh.catalog.get(ds.name) is not None:
        return lh.engine.query(f"SELECT * FROM {ds.name} LIMIT 0").to_arrow().schema
    assert ds.path is not None
    folder = Path(pipeline.expand(ds.path, lh.root))
    if not folder.is_dir():
        return None
    from lakehouse.ingest.files import FORMATS

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in FORMATS)
    if not files:
        return None
    fmt = ds.format or FORMATS[files[0].suffix.lower()]
    reader = {
        "csv": "read_csv",
        "jsonl": "read_json",
        "json": "read_json",
        "parquet": "read_parquet",
    }[fmt]
    con = duckdb.connect()
    try:
        extra = ", ignore_errors = true" if fmt in ("jsonl", "json") else ""
        return (
            con.sql(f"SELECT * FROM {reader}('{files[0]}'{extra}) LIMIT 0").to_arrow_table().schema
        )
    except duckdb.Error:
        return None
    finally:
        con.close()
