"""Running panels for a caller: the panel's SQL with its parameters bound, through the
same sandbox, access rules and masking as ``POST /query`` (``engine.safe_query``). One
panel's failure is its own result, never the others'."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.dashboards.engine import SERVING, choose_engine, read_serving
from lakehouse.dashboards.model import Dashboard, Panel, Variable
from lakehouse.dashboards.params import InvalidValue, bind, time_bounds, variable_values
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.sql.names import find_references

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

PANEL_ROWS = 10_000  # rows a panel returns at most
OPTION_ROWS = 1_000  # options a select offers at most


@dataclass
class Caller:
    """What one reader of a dashboard may see: the tables it may read, the columns it
    sees masked (None: everything, as the CLI reads), and its limits."""

    can_read: Callable[[str], bool] | None = None
    masked: Callable[[str], list[str]] | None = None
    limit: int = PANEL_ROWS
    timeout: float = 30.0
    fresh: bool = False  # read the serving store now, not an answer kept a moment ago


@dataclass(frozen=True)
class PanelError:
    message: str
    hint: str | None = None
    denied: bool = False  # a table the caller may not read (answered as one that is not)

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "hint": self.hint}


@dataclass
class PanelResult:
    panel: Panel
    engine: str
    table: pa.Table | None = None
    truncated: bool = False
    cached: bool = False
    tables: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    error: PanelError | None = None
    note: str | None = None  # why the engine chosen first did not answer

    @property
    def row_count(self) -> int:
        return self.table.num_rows if self.table is not None else 0

    @property
    def columns(self) -> list[str]:
        return self.table.column_names if self.table is not None else []

    @property
    def types(self) -> list[str]:
        return [str(t) for t in self.table.schema.types] if self.table is not None else []


def values_for(
    lh: Lakehouse,
    dashboard: Dashboard,
    caller: Caller,
    given: Mapping[str, str] | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every parameter's value for one reading of the dashboard: ``from`` and ``to``, and
    each variable's (given, checked against its definition, or its default).
    ``InvalidValue`` for a value the dashboard does not allow."""
    values: dict[str, Any] = dict(time_bounds(dashboard, start, end, now))

    def options(variable: Variable) -> list[Any]:
        return options_of(lh, variable, caller, values)

    values.update(variable_values(dashboard, given or {}, options))
    return values


def options_of(
    lh: Lakehouse, variable: Variable, caller: Caller, values: Mapping[str, Any]
) -> list[Any]:
    """A select's options: listed, or the first column of its ``options_sql`` read for
    the caller (its access rules and masking apply), by the engine a panel of the same
    SQL would use."""
    if variable.options is not None:
        return list(variable.options)
    if variable.options_sql is None:
        return []
    found = read_for(lh, variable.options_sql, values, caller, OPTION_ROWS)
    if found.error is not None:
        raise InvalidValue(
            f"the options of variable {variable.name} cannot be read: {found.error.message}",
            found.error.hint,
        )
    if found.table is None or found.table.num_columns == 0:
        return []
    return [v for v in found.table.column(0).to_pylist() if v is not None]


def tables_of(sql: str) -> list[str]:
    return list(dict.fromkeys(ref.name for ref in find_references(sql)))


@dataclass
class Read:
    """One statement's rows for a caller, and which engine gave them."""

    engine: str
    tables: list[str]
    table: pa.Table | None = None
    truncated: bool = False
    cached: bool = False
    error: PanelError | None = None
    note: str | None = None  # why the engine chosen first did not answer


def read_for(
    lh: Lakehouse, sql: str, values: Mapping[str, Any], caller: Caller, limit: int
) -> Read:
    """``sql`` with ``values`` bound to the parameters it uses, read for ``caller``: from
    the serving store when it may answer (``choose_engine``), else, or when it cannot, by
    the lakehouse's engine. Whatever goes wrong is in the result's ``error``."""
    tables = tables_of(sql)
    masked, can_read = caller.masked, caller.can_read
    plain = all(can_read is None or can_read(t) for t in tables) and not any(
        masked is not None and masked(t) for t in tables
    )
    found = Read(choose_engine(lh, sql, tables, plain), tables)
    if found.engine == SERVING:
        try:
            params = bind(sql, values) or {}
            found.table, found.truncated = read_serving(lh, sql, params, limit, caller.fresh)
        except LakehouseError as exc:  # the lakehouse answers instead, and says why
            found.engine = "lakehouse"
            found.note = f"the serving store could not answer: {exc.message}"
        else:
            return found
    try:
        answer = lh.engine.safe_query(
            sql,
            limit=limit,
            timeout=caller.timeout,
            masked=masked,
            can_read=can_read,
            params=bind(sql, values) or None,
        )
    except TableNotFoundError as exc:
        # The words of POST /query, so that a table the caller may not read answers as
        # one that does not exist; a real-time view exists once its stream has run.
        hint = exc.hint
        if exc.name.startswith("realtime."):
            hint = "run lakehouse demo --stream: the stream keeps the realtime views"
        found.error = PanelError(exc.message, hint, bool(getattr(exc, "denied", False)))
    except LakehouseError as exc:
        found.error = PanelError(exc.message, exc.hint)
    else:
        found.table = answer.table
        found.truncated = answer.truncated
        found.cached = answer.cached
        found.tables = answer.tables
    return found


def run_panel(
    lh: Lakehouse, panel: Panel, values: Mapping[str, Any], caller: Caller
) -> PanelResult:
    """One panel read for ``caller`` with ``values`` bound to the parameters its SQL
    uses. Whatever goes wrong is in the result's ``error``."""
    started = time.perf_counter()
    found = read_for(lh, panel.sql, values, caller, caller.limit)
    return PanelResult(
        panel,
        found.engine,
        table=found.table,
        truncated=found.truncated,
        cached=found.cached,
        tables=found.tables,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        error=found.error,
        note=found.note,
    )


def run_dashboard(
    lh: Lakehouse,
    dashboard: Dashboard,
    caller: Caller,
    given: Mapping[str, str] | None = None,
) -> list[PanelResult]:
    """Every panel of the dashboard, each with its own result."""
    values = values_for(lh, dashboard, caller, given)
    return [run_panel(lh, panel, values, caller) for panel in dashboard.panels]
