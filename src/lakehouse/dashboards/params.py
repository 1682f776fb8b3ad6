"""Panel SQL's parameters: which ``$name`` a statement uses, and the values bound to them.

Variables and the time range reach a panel's SQL as values DuckDB binds to its named
parameters, never as text pasted into it: ``$from`` and ``$to`` (TIMESTAMP WITH TIME ZONE,
UTC) and one ``$name`` per variable. Only the parameters a statement uses are bound.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from lakehouse.dashboards.model import TIME_PARAMETERS, Dashboard, Variable
from lakehouse.errors import LakehouseError
from lakehouse.sql.names import Token, tokens


class InvalidValue(LakehouseError):
    """A variable value or time bound a caller gave that the dashboard does not allow."""


@functools.lru_cache(maxsize=1024)
def parameters(sql: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The named parameters ``sql`` uses (``$page``), in order, outside strings and
    comments; and the positional ones (``$1``), which dashboards do not bind."""
    named: list[str] = []
    positional: list[str] = []
    for _dollar, after in _dollars(sql):
        if after.kind == "word" and after.text.lower() not in named:
            named.append(after.text.lower())
        elif after.kind == "number":
            positional.append("$" + after.text)
    return tuple(named), tuple(positional)


def _dollars(sql: str) -> list[tuple[Token, Token]]:
    toks = tokens(sql)
    return [
        (t, toks[i + 1])
        for i, t in enumerate(toks[:-1])
        if t.kind == "other" and t.text == "$" and toks[i + 1].start == t.end
    ]


def rewrite(sql: str, rename: Callable[[str], str]) -> str:
    """``sql`` with each ``$name`` replaced by ``rename(name)`` (strings and comments
    left as they are)."""
    pieces: list[str] = []
    last = 0
    for dollar, after in _dollars(sql):
        if after.kind != "word":
            continue
        pieces.append(sql[last : dollar.start])
        pieces.append(rename(after.text.lower()))
        last = after.end
    pieces.append(sql[last:])
    return "".join(pieces)


def undefined(sql: str, dashboard: Dashboard, time_only: bool = False) -> list[str]:
    """The parameters ``sql`` uses that neither the time range nor a variable defines."""
    known = set(TIME_PARAMETERS) | (set() if time_only else {v.name for v in dashboard.variables})
    return [name for name in parameters(sql)[0] if name not in known]


def bind(sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the parameters ``sql`` uses (those only: DuckDB refuses others)."""
    return {name: values[name] for name in parameters(sql)[0] if name in values}


# -- the values a caller gives ---------------------------------------------------------------
def time_bounds(
    dashboard: Dashboard, start: str | None, end: str | None, now: datetime | None = None
) -> dict[str, datetime]:
    """``from`` and ``to``: the dashboard's time range, or the bounds the caller gave (ISO
    times; without an offset, UTC)."""
    low, high = dashboard.time_range.bounds(now)
    if start is not None:
        low = _instant("from", start)
    if end is not None:
        high = _instant("to", end)
    if low > high:
        raise InvalidValue(
            f"from ({low.isoformat()}) is after to ({high.isoformat()})",
            "give from before to",
        )
    return {"from": low, "to": high}


def _instant(name: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidValue(
            f"{name}={text!r} is not a time",
            f"give an ISO time, e.g. {name}=2026-01-01T00:00:00Z",
        ) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def variable_values(
    dashboard: Dashboard,
    given: Mapping[str, str],
    options: Callable[[Variable], list[Any]],
) -> dict[str, Any]:
    """The value of every variable: the caller's (checked: a select's value is one of its
    options, a date is a date) or the default. ``options`` gives a select's options (for
    ``options_sql``, run for the caller)."""
    for name in given:
        if dashboard.variable(name) is None:
            known = ", ".join(v.name for v in dashboard.variables) or "none"
            raise InvalidValue(
                f"dashboard {dashboard.name} has no variable {name!r}",
                f"its variables are: {known} (and from, to for the time range)",
            )
    return {v.name: _value(v, given.get(v.name), options) for v in dashboard.variables}


def _value(variable: Variable, text: str | None, options: Callable[[Variable], list[Any]]) -> Any:
    if variable.kind == "text":
        return text if text is not None else (variable.default or "")
    if variable.kind == "date":
        raw = text if text is not None else variable.default
        if raw is None:
            return datetime.now(UTC).date()
        try:
            return date.fromisoformat(str(raw).strip())
        except ValueError as exc:
            raise InvalidValue(
                f"{variable.name}={raw!r} is not a date", f"e.g. {variable.name}=2026-01-31"
            ) from exc
    if text is None and variable.default is not None:
        return variable.default  # the author's choice: no options to read
    choices = options(variable)
    if text is None:
        if not choices:
            raise InvalidValue(
                f"variable {variable.name} has no options and no default",
                "give a default, or make options_sql return rows",
            )
        return choices[0]
    for choice in choices:  # the option itself: a number stays a number
        if str(choice) == text:
            return choice
    shown = ", ".join(str(c) for c in choices[:20]) + (", ..." if len(choices) > 20 else "")
    raise InvalidValue(
        f"{variable.name}={text!r} is not one of its options",
        f"choose one of: {shown}",
    )
