"""SQL quoting, in one place: every name or value that goes into SQL text goes through
here. DuckDB (and PostgreSQL) quote identifiers with double quotes and strings with
single quotes, each doubled inside; delta-rs's predicates (DataFusion) quote identifiers
with backticks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any


def ident(name: str) -> str:
    """An identifier: a column, table or schema name, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def string(value: str) -> str:
    """A string literal."""
    return "'" + value.replace("'", "''") + "'"


def string_list(values: Iterable[str]) -> str:
    """A list of string literals, as DuckDB writes one: ``['a', 'b']``."""
    return "[" + ", ".join(string(v) for v in values) + "]"


def literal(value: Any) -> str:
    """A value as untyped SQL text: NULL, true/false, or a string literal of its text
    (times in ISO form), which DuckDB casts where it is compared or inserted."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        value = value.isoformat(sep=" ")
    return string(str(value))


def typed_literal(value: Any) -> str:
    """A value with its type: numbers as numbers, times and dates as typed literals,
    anything else as a string literal."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return f"{kind} {literal(value)}"
    if isinstance(value, dt.date):
        return f"DATE {string(value.isoformat())}"
    return literal(value)


def text_or_null(value: str | None) -> str:
    """A string literal, or a NULL typed as text."""
    return "NULL::VARCHAR" if value is None else string(value)


def delta_ident(name: str) -> str:
    """An identifier in a delta-rs predicate or merge expression."""
    return "`" + name.replace("`", "``") + "`"
