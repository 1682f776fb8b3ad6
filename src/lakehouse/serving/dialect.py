"""Lakehouse SQL (DuckDB's dialect, ``$name`` parameters) turned into ClickHouse's, for
statements written once and run by either engine (dashboard panels)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import sqlglot
from sqlglot import exp

from lakehouse.errors import SQLError


def parameter_type(value: Any) -> str:
    """The ClickHouse type of a ``{name:Type}`` parameter holding ``value``."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, dt.datetime):
        return "DateTime64(6, 'UTC')"
    if isinstance(value, dt.date):
        return "Date32"
    return "String"


def to_clickhouse(sql: str, params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``sql`` in ClickHouse's dialect, each ``$name`` a typed ``{name:Type}`` hole, and
    the values to bind (times in UTC, as ClickHouse's parameters take them)."""
    params = params or {}
    types = tuple(sorted((name, parameter_type(value)) for name, value in params.items()))
    text, names = _translated(sql, types)
    bound: dict[str, Any] = {}
    for name in names:
        value = params[name]
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        bound[name] = value
    return text, bound


@functools.lru_cache(maxsize=512)
def _translated(sql: str, types: tuple[tuple[str, str], ...]) -> tuple[str, tuple[str, ...]]:
    """The ClickHouse text of ``sql`` for parameters of ``types``, and the parameters it
    uses (a dashboard's panels are translated once, not at every reading)."""
    known = dict(types)
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise SQLError(f"the statement does not parse: {exc}") from exc
    names: list[str] = []
    for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
        name = node.name
        if not name or name not in known:
            raise SQLError(f"the statement uses ${name or '?'}, which has no value")
        node.replace(exp.Placeholder(this=name, kind=exp.Var(this=known[name])))
        names.append(name)
    return tree.sql(dialect="clickhouse"), tuple(dict.fromkeys(names))
