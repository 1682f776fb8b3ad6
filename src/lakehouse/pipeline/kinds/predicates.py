"""Conditions that a column is one of a list of values, for DuckDB and for delta-rs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lakehouse.quoting import string


def in_predicate(column: str, values: list[Any], render: Callable[[Any], str]) -> str:
    """``column`` is one of ``values`` (NULL included), literals written by ``render``."""
    present = [render(v) for v in values if v is not None]
    terms = [f"{column} IN ({', '.join(present)})"] if present else []
    if None in values:
        terms.append(f"{column} IS NULL")
    return " OR ".join(terms)


def delta_literal(value: Any) -> str:
    """A literal for a Delta predicate (DataFusion reads ISO text into dates and times)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return string(value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z")
        return string(value.isoformat())
    text: str = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return string(text)
