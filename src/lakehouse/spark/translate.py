"""The platform's SQL (DuckDB's dialect) as Spark SQL, by sqlglot; and the constructs that
have no Spark translation, found with their line before anything runs.

A construct sqlglot cannot express in Spark, or a function Spark does not have, is an
error: a query is never run with a guessed meaning."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from lakehouse.errors import LakehouseError

HINT = (
    "rewrite the construct with functions both engines have (docs/ENGINES.md), "
    "or run the dataset on DuckDB: engine: duckdb"
)


# DuckDB functions sqlglot passes through by name, and Spark's function of the same meaning
RENAMED = {"error": "raise_error"}


class Untranslatable(LakehouseError):
    """SQL that Spark cannot run as the platform means it."""


@dataclass(frozen=True)
class Problem:
    line: int  # in the SQL text (1: its first line)
    message: str


@cache
def spark_functions() -> frozenset[str]:
    """The names of Spark's built-in functions (``SHOW FUNCTIONS`` of the Spark release the
    platform pins)."""
    text = resources.files("lakehouse.spark").joinpath("functions.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def problems(sql: str) -> list[Problem]:
    """What of ``sql`` cannot be translated to Spark SQL, each with its line."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as exc:
        errors = getattr(exc, "errors", None) or [{}]
        return [Problem(int(errors[0].get("line") or 1), f"unreadable SQL: {exc}")]
    found: list[Problem] = []
    seen: set[str] = set()
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            name = str(node.name).lower()
            if name not in spark_functions() and name not in RENAMED and name not in seen:
                seen.add(name)
                found.append(
                    Problem(_line_of(sql, name), f"function {name}() has no Spark equivalent")
                )
        elif isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
            try:
                node.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
            except UnsupportedError as exc:
                key = _first(exc)
                if key in seen:
                    continue
                seen.add(key)
                name = node.sql_name().lower()
                found.append(Problem(_line_of(sql, name), f"{name}: {_first(exc)}"))
    # the smallest failing construct is reported, not each expression around it
    return _innermost(found)


def to_spark(sql: str, views: dict[str, str], arrays: set[str] | None = None) -> str:
    """``sql`` in Spark's dialect, each table name in ``views`` replaced by its view;
    ``arrays`` names the input columns that are lists (DuckDB's ``len`` of a list is
    Spark's ``size``)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as exc:
        raise Untranslatable(f"unreadable SQL: {exc}", HINT) from exc
    found = problems(sql)
    if found:
        raise Untranslatable("; ".join(f"line {p.line}: {p.message}" for p in found), HINT)
    lowered = {name.lower(): view for name, view in views.items()}

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db and not node.catalog:
            view = lowered.get(f"{node.db}.{node.name}".lower())
            if view is not None:
                alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
                return exp.Table(this=exp.to_identifier(view), alias=alias)
        return node

    tree = tree.transform(replace)
    for node in tree.find_all(exp.Anonymous):
        renamed = RENAMED.get(str(node.name).lower())
        if renamed is not None:
            node.set("this", renamed)
    _sizes(tree, arrays or set())
    try:
        return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise Untranslatable(f"not expressible in Spark SQL: {_first(exc)}", HINT) from exc


def _sizes(tree: exp.Expression, arrays: set[str]) -> None:
    """``length`` of a list becomes ``size``: of a list expression, of an input column
    that is a list, or of a select alias given to one."""
    listy = (exp.Array, exp.ArrayFilter, exp.ArrayAgg, exp.ArrayConcat, exp.Split)
    aliases: dict[str, bool] = {}
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            if isinstance(projection, exp.Alias):
                aliases[projection.alias.lower()] = isinstance(projection.this, listy)
    for node in list(tree.find_all(exp.Length)):
        arg = node.this
        is_list = isinstance(arg, listy) or (
            isinstance(arg, exp.Column)
            and (aliases.get(arg.name.lower(), False) or arg.name.lower() in arrays)
        )
        if is_list:
            node.replace(exp.ArraySize(this=arg))


def _line_of(sql: str, name: str) -> int:
    found = re.search(rf"\b{re.escape(name)}\s*\(", sql, re.IGNORECASE)
    return sql.count("\n", 0, found.start()) + 1 if found else 1


def _first(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _innermost(found: list[Problem]) -> list[Problem]:
    messages = [p.message for p in found]
    return [
        p for p in found if not any(other != p.message and other in p.message for other in messages)
    ]
