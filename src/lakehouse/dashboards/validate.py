"""``validate``: every dashboard file of a folder checked against the warehouse, each
problem with its file and line. Nothing raises for a broken panel.

Checks, in order: the file's form (``reader.py``); each statement parses as one SELECT
(sqlglot, DuckDB's dialect) and uses only parameters the dashboard defines; the tables it
names exist (a ``realtime`` view that does not exist yet is a warning: the stream makes
it); the statement runs (with the variables' defaults, no rows read) and the columns a
panel names (``x``, ``y``, ``series``) are among its result's.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
import sqlglot.errors
from sqlglot import exp

from lakehouse.dashboards.model import Dashboard, Problem
from lakehouse.dashboards.params import InvalidValue, parameters, undefined
from lakehouse.dashboards.reader import load_folder
from lakehouse.dashboards.run import Caller, options_of, values_for
from lakehouse.errors import LakehouseError
from lakehouse.sql.names import find_references

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

PENDING_LAYERS = ("realtime",)  # views made by a stream once it runs


def validate(folder: str | Path, lh: Lakehouse) -> list[Problem]:
    """Every problem of every dashboard file in ``folder`` (warnings included)."""
    problems: list[Problem] = []
    for _path, dashboard, found in load_folder(folder):
        problems += found
        if dashboard is not None:
            problems += check_dashboard(dashboard, lh)
    return problems


def check_dashboard(dashboard: Dashboard, lh: Lakehouse) -> list[Problem]:
    """The problems of a dashboard read without errors of form, found against ``lh``."""
    checker = _Checker(dashboard, lh)
    for variable in dashboard.variables:
        if variable.options_sql is not None:
            checker.statement(
                variable.options_sql,
                variable.sql_line,
                None,
                f"variable {variable.name}: options_sql",
                time_only=True,
            )
    try:
        checker.values = values_for(lh, dashboard, Caller())
    except InvalidValue as exc:
        checker.report(0, None, exc.message, exc.hint)
    for variable in dashboard.variables:
        if variable.options_sql is not None and variable.default is not None and checker.values:
            try:
                options = options_of(lh, variable, Caller(), checker.values)
            except InvalidValue:
                continue  # reported with its statement above
            if variable.default not in options:
                shown = ", ".join(str(o) for o in options[:10])
                checker.report(
                    variable.line,
                    None,
                    f"variable {variable.name}: default {variable.default!r} is not among the "
                    "options its options_sql reads",
                    f"choose one of: {shown}" if options else "options_sql reads no rows",
                )
    for panel in dashboard.panels:
        columns = checker.statement(panel.sql, panel.sql_line, panel.id, "sql")
        if columns is None:
            continue
        for key in ("x", "series"):
            name = getattr(panel, key)
            if name is not None:
                checker.column(name, columns, panel.at(key), panel.id, key)
        for name in panel.y:
            checker.column(name, columns, panel.at("y"), panel.id, "y")
    return checker.problems


class _Checker:
    def __init__(self, dashboard: Dashboard, lh: Lakehouse) -> None:
        self.dashboard = dashboard
        self.lh = lh
        self.problems: list[Problem] = []
        self.values: dict[str, Any] | None = None

    def report(
        self,
        line: int,
        panel: str | None,
        message: str,
        hint: str | None = None,
        severity: str = "error",
    ) -> None:
        self.problems.append(Problem(self.dashboard.file, line, message, hint, panel, severity))

    def statement(
        self, sql: str, line: int, panel: str | None, what: str, time_only: bool = False
    ) -> list[str] | None:
        """Check one statement; the columns of its result, or None when it cannot run."""
        if not self.parses(sql, line, panel, what):
            return None
        named, positional = parameters(sql)
        if positional:
            self.report(
                line,
                panel,
                f"{what}: positional parameter {positional[0]}",
                "name parameters: $from, $to or $variable",
            )
            return None
        missing = undefined(sql, self.dashboard, time_only)
        if missing:
            defined = "$from, $to" + (
                "" if time_only else "".join(f", ${v.name}" for v in self.dashboard.variables)
            )
            self.report(
                _line_of(sql, "$" + missing[0], line),
                panel,
                f"{what}: the parameter ${missing[0]} is not defined",
                f"the parameters are {defined}"
                + ("" if time_only else f"; or add a variable named {missing[0]}"),
            )
            return None
        if not self.tables(sql, line, panel, what):
            return None
        return self.run(sql, line, panel, what, named)

    def parses(self, sql: str, line: int, panel: str | None, what: str) -> bool:
        try:
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
        except sqlglot.errors.ParseError as exc:
            first = exc.errors[0] if exc.errors else {}
            at = line + int(first.get("line") or 1) - 1
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(first.get("description", exc)))
            self.report(at, panel, f"{what} does not parse: {text}", "fix the SQL there")
            return False
        except sqlglot.errors.TokenError as exc:
            self.report(line, panel, f"{what} does not parse: {exc}", "fix the SQL there")
            return False
        if len(statements) != 1:
            self.report(line, panel, f"{what} is one SELECT; found {len(statements)} statements")
            return False
        if not isinstance(statements[0], exp.Query):
            kind = type(statements[0]).__name__.upper()
            self.report(line, panel, f"{what} is a SELECT, not {kind}", "panels only read")
            return False
        return True

    def tables(self, sql: str, line: int, panel: str | None, what: str) -> bool:
        """Whether every table ``sql`` names exists; the rest reported."""
        fine = True
        try:
            refs = find_references(sql)
        except LakehouseError as exc:
            self.report(line, panel, f"{what}: {exc.message}", exc.hint)
            return False
        known: list[str] | None = None
        for ref in refs:
            if self.lh.exists(ref.name):
                continue
            fine = False
            at = line + sql[: ref.start].count("\n")
            layer = ref.name.split(".")[0]
            if layer in PENDING_LAYERS:
                self.report(
                    at,
                    panel,
                    f"{what}: {ref.name} does not exist yet",
                    "the stream makes it: run lakehouse demo --stream (until then the panel "
                    "shows this error and the others render)",
                    severity="warning",
                )
                continue
            known = known if known is not None else self.lh.catalog.names()
            close = difflib.get_close_matches(ref.name, known, n=2, cutoff=0.6)
            self.report(
                at,
                panel,
                f"{what}: table {ref.name} does not exist",
                f"did you mean {' or '.join(close)}?" if close else "lakehouse tables lists them",
            )
        return fine

    def run(
        self, sql: str, line: int, panel: str | None, what: str, named: tuple[str, ...]
    ) -> list[str] | None:
        if self.values is None:
            return None
        params = {name: self.values[name] for name in named if name in self.values}
        probe = f"SELECT * FROM (\n{sql}\n) AS panel LIMIT 0"
        try:
            result = self.lh.engine.safe_query(probe, limit=0, params=params or None)
        except LakehouseError as exc:
            message = exc.message.split("\n")[0]
            self.report(line, panel, f"{what} does not run: {message}", exc.hint or "fix the SQL")
            return None
        return list(result.table.column_names)

    def column(self, name: str, columns: list[str], line: int, panel: str, key: str) -> None:
        if name in columns:
            return
        lower = {c.lower(): c for c in columns}
        close = (
            [lower[name.lower()]]
            if name.lower() in lower
            else difflib.get_close_matches(name, columns, n=1)
        )
        hint = f"did you mean {close[0]}?" if close else f"the columns are: {', '.join(columns)}"
        self.report(line, panel, f"{key}: the query has no column {name!r}", hint)


def _line_of(sql: str, text: str, first: int) -> int:
    at = sql.find(text)
    return first + sql[:at].count("\n") if at >= 0 else first
