"""Dashboard files read into ``Dashboard``s: every key checked for its form, with its line.

A file that is not YAML (or not a mapping) gives no dashboard, only its problem. Anything
else gives the dashboard with what could be read: a panel with a bad key is kept (the key
is reported), a panel without SQL or a kind it can be drawn as is left out (and reported).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import yaml

import lakehouse.marked_yaml as marked_yaml
from lakehouse.dashboards.model import (
    COLUMNS,
    FORMATS,
    KINDS,
    TIME_PARAMETERS,
    VARIABLE_KINDS,
    Dashboard,
    Grid,
    Panel,
    Problem,
    Threshold,
    TimeRange,
    Variable,
    folder_file,
)
from lakehouse.errors import LakehouseError
from lakehouse.marked_yaml import MarkedDict, MarkedList
from lakehouse.names import LAYERS

DASHBOARD_KEYS = ("title", "description", "refresh", "time_range", "variables", "panels")
VARIABLE_KEYS = ("name", "label", "kind", "default", "options", "options_sql")
PANEL_KEYS = (
    "id",
    "title",
    "sql",
    "kind",
    "x",
    "y",
    "series",
    "unit",
    "format",
    "grid",
    "thresholds",
    "description",
)
GRID_KEYS = ("x", "y", "w", "h")
THRESHOLD_KEYS = ("value", "color")
PANEL_ID = re.compile(r"^[a-z0-9_-]+$")
VARIABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
DASHBOARDS_ENV = "LAKEHOUSE_DASHBOARDS"
SUFFIXES = (".yaml", ".yml")


# -- the folder ----------------------------------------------------------------------------
def default_folder() -> Path:
    """``$LAKEHOUSE_DASHBOARDS``, else ``dashboards/`` in the working folder."""
    return Path(os.environ.get(DASHBOARDS_ENV) or "dashboards")


def dashboard_files(folder: str | Path) -> dict[str, Path]:
    """The dashboard files of ``folder`` by name (the file name without ``.yaml``)."""
    root = Path(folder)
    if not root.is_dir():
        raise LakehouseError(
            f"no dashboards folder {root}",
            "give a folder of dashboard files (.yaml), e.g. --dir dashboards",
        )
    found: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix in SUFFIXES and not path.name.startswith((".", "_")):
            found.setdefault(path.stem, path)
    return found


def find_file(folder: str | Path, name: str) -> Path:
    files = dashboard_files(folder)
    if name in files:
        return files[name]
    close = difflib.get_close_matches(name, list(files), n=1)
    known = ", ".join(files) or "none"
    hint = f"did you mean {close[0]}?" if close else f"the dashboards are: {known}"
    raise DashboardNotFound(f"no dashboard named {name!r} in {folder}", hint)


class DashboardNotFound(LakehouseError):
    """A dashboard or panel that does not exist."""


def load_folder(folder: str | Path) -> list[tuple[Path, Dashboard | None, list[Problem]]]:
    return [(path, *read_dashboard(path)) for path in dashboard_files(folder).values()]


# -- one file ------------------------------------------------------------------------------
def read_dashboard(path: Path) -> tuple[Dashboard | None, list[Problem]]:
    """The dashboard of a file and its problems of form; None when nothing can be read."""
    shown = folder_file(path)
    try:
        data = marked_yaml.load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, [Problem(shown, 0, f"cannot read the file: {exc.strerror}")]
    except yaml.YAMLError as exc:
        line = marked_yaml.error_line(exc)
        text = marked_yaml.error_text(exc)
        return None, [Problem(shown, line, f"not readable as YAML: {text}", "fix the YAML there")]
    if not isinstance(data, MarkedDict):
        return None, [
            Problem(
                shown,
                1,
                "a dashboard file is a YAML mapping",
                "start with title:, then panels: (see docs/DASHBOARDS.md)",
            )
        ]
    builder = _Builder(shown)
    dashboard = builder.dashboard(path.stem, data)
    dashboard.problems = builder.problems
    return dashboard, builder.problems


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def report(
        self, line: int, message: str, hint: str | None = None, panel: str | None = None
    ) -> None:
        self.problems.append(Problem(self.file, line, message, hint, panel))

    def keys(
        self, data: MarkedDict, allowed: tuple[str, ...], what: str, panel: str | None
    ) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = (
                    f"did you mean {close[0]}?" if close else f"the keys are: {', '.join(allowed)}"
                )
                self.report(data.lines[key], f"unknown key {key!r} in {what}", hint, panel)

    # -- the dashboard --------------------------------------------------------------------
    def dashboard(self, name: str, data: MarkedDict) -> Dashboard:
        self.keys(data, DASHBOARD_KEYS, "the dashboard", None)
        title = self.text(data, "title", None, required=False) or name
        dashboard = Dashboard(name, self.file, title)
        dashboard.description = self.text(data, "description", None, required=False)
        if "refresh" in data:
            refresh = data["refresh"]
            if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 1:
                self.report(
                    data.lines["refresh"],
                    f"refresh is a whole number of seconds, 1 or more; got {refresh!r}",
                    "e.g. refresh: 10",
                )
            else:
                dashboard.refresh = refresh
        if "time_range" in data:
            parsed = TimeRange.parse(str(data["time_range"]))
            if parsed is None:
                self.report(
                    data.lines["time_range"],
                    f"time_range {data['time_range']!r} is not a range",
                    "write last N minutes, last N hours, last N days, or all",
                )
            else:
                dashboard.time_range = parsed
        dashboard.variables = self.variables(data)
        dashboard.panels = self.panels(data)
        return dashboard

    def text(self, data: MarkedDict, key: str, panel: str | None, required: bool) -> str | None:
        if key not in data or data[key] is None:
            if required:
                self.report(data.line, f"{key} is missing", f"add {key}:", panel)
            return None
        value = data[key]
        if isinstance(value, dict | list):
            self.report(
                data.lines[key], f"{key} is a text, not a {type(value).__name__}", None, panel
            )
            return None
        return str(value)

    def items(self, data: MarkedDict, key: str) -> list[tuple[int, MarkedDict]]:
        """The mappings of list ``key``, each with its line; other items reported."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, MarkedList):
            self.report(data.lines[key], f"{key} is a list", "write each item on a '- ' line")
            return []
        out = []
        for line, item in zip(value.lines, value, strict=True):
            if isinstance(item, MarkedDict):
                out.append((line, item))
            else:
                self.report(line, f"an item of {key} is a mapping, got {item!r}")
        return out

    # -- variables ------------------------------------------------------------------------
    def variables(self, data: MarkedDict) -> list[Variable]:
        out: list[Variable] = []
        for line, item in self.items(data, "variables"):
            self.keys(item, VARIABLE_KEYS, "a variable", None)
            name = self.text(item, "name", None, required=True)
            if name is None:
                continue
            where = item.lines["name"]
            if not VARIABLE_NAME.match(name):
                self.report(
                    where,
                    f"variable name {name!r} is not a name",
                    "lower-case letters, digits and _, starting with a letter; used as $name",
                )
                continue
            if name in TIME_PARAMETERS or name in LAYERS:
                self.report(
                    where,
                    f"variable name {name!r} is taken",
                    "$from and $to are the time range's; layer names cannot be variables",
                )
                continue
            if any(v.name == name for v in out):
                self.report(where, f"variable {name} is defined twice", "give each its own name")
                continue
            kind = self.text(item, "kind", None, required=False) or "select"
            if kind not in VARIABLE_KINDS:
                self.report(
                    item.lines["kind"],
                    f"variable {name}: unknown kind {kind!r}",
                    f"use one of {', '.join(VARIABLE_KINDS)}",
                )
                continue
            variable = Variable(
                name,
                self.text(item, "label", None, required=False) or name,
                kind,
                item.get("default"),
                line=line,
            )
            if kind == "select" and not self.options(item, variable):
                continue
            if kind != "select" and ("options" in item or "options_sql" in item):
                self.report(
                    item.lines.get("options", item.lines.get("options_sql", line)),
                    f"variable {name}: options go with kind select only",
                    "remove them, or make the variable kind: select",
                )
            if kind == "date" and variable.default is not None:
                variable.default = str(variable.default)
            if kind == "text" and variable.default is not None:
                variable.default = str(variable.default)
            out.append(variable)
        return out

    def options(self, item: MarkedDict, variable: Variable) -> bool:
        has_list, has_sql = "options" in item, "options_sql" in item
        if has_list == has_sql:
            self.report(
                variable.line,
                f"variable {variable.name}: a select has options or options_sql (one of them)",
                "options: [a, b] or options_sql: SELECT DISTINCT column FROM layer.table",
            )
            return False
        if has_list:
            options = item["options"]
            if not isinstance(options, list) or not options:
                self.report(item.lines["options"], f"variable {variable.name}: options is a list")
                return False
            if any(isinstance(o, dict | list) or o is None for o in options):
                self.report(
                    item.lines["options"],
                    f"variable {variable.name}: each option is one value (text or number)",
                )
                return False
            variable.options = list(options)
            if variable.default is None:
                variable.default = options[0]
            elif variable.default not in options:
                self.report(
                    item.lines.get("default", variable.line),
                    f"variable {variable.name}: default {variable.default!r} is not an option",
                    f"choose one of {', '.join(str(o) for o in options)}",
                )
            return True
        sql = item["options_sql"]
        if not isinstance(sql, str) or not sql.strip():
            self.report(item.lines["options_sql"], f"variable {variable.name}: options_sql is SQL")
            return False
        variable.options_sql = sql.strip().rstrip(";")
        variable.sql_line = item.value_lines["options_sql"]
        return True

    # -- panels ---------------------------------------------------------------------------
    def panels(self, data: MarkedDict) -> list[Panel]:
        if "panels" not in data:
            self.report(data.line, "the dashboard has no panels", "add panels: with one or more")
            return []
        out: list[Panel] = []
        cursor = _Flow()
        for line, item in self.items(data, "panels"):
            panel = self.panel(line, item, {p.id for p in out}, cursor)
            if panel is not None:
                out.append(panel)
        return out

    def panel(self, line: int, item: MarkedDict, taken: set[str], flow: _Flow) -> Panel | None:
        pid = self.text(item, "id", None, required=True)
        if pid is None:
            return None
        if not PANEL_ID.match(pid):
            self.report(
                item.lines["id"],
                f"panel id {pid!r} is not an id",
                "lower-case letters, digits, _ and -",
            )
            return None
        if pid in taken:
            self.report(
                item.lines["id"], f"panel id {pid} is used twice", "give each panel its own id"
            )
            return None
        self.keys(item, PANEL_KEYS, "a panel", pid)
        sql = self.text(item, "sql", pid, required=True)
        kind = self.text(item, "kind", pid, required=False) or "table"
        if kind not in KINDS:
            self.report(
                item.lines["kind"], f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}", pid
            )
            return None
        if sql is None or not sql.strip():
            if sql is not None:
                self.report(item.lines["sql"], "sql is empty", "write one SELECT", pid)
            return None
        grid = self.grid(item, pid, kind, flow)
        panel = Panel(
            pid,
            self.text(item, "title", pid, required=False) or pid,
            sql.strip().rstrip(";").rstrip(),
            kind,
            grid,
            line=line,
            sql_line=item.value_lines["sql"],
            lines=dict(item.lines),
        )
        panel.x = self.column(item, "x", pid)
        panel.series = self.column(item, "series", pid)
        panel.unit = self.text(item, "unit", pid, required=False)
        panel.description = self.text(item, "description", pid, required=False)
        panel.format = self.text(item, "format", pid, required=False)
        if panel.format is not None and panel.format not in FORMATS:
            self.report(
                item.lines["format"],
                f"unknown format {panel.format!r}",
                f"use one of {', '.join(FORMATS)}",
                pid,
            )
            panel.format = None
        panel.y = self.columns(item, pid)
        panel.thresholds = self.thresholds(item, pid, kind)
        if kind in ("line", "bar", "area") and (panel.x is None or not panel.y):
            self.report(
                line,
                f"a {kind} panel names its x column and its y column(s)",
                "add x: COLUMN and y: COLUMN (or y: [A, B])",
                pid,
            )
        if kind == "pie" and (panel.x is None or len(panel.y) != 1):
            self.report(
                line,
                "a pie panel names its label column as x and its value column as y",
                "add x: COLUMN and y: COLUMN",
                pid,
            )
        return panel

    def column(self, item: MarkedDict, key: str, pid: str) -> str | None:
        value = item.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.report(item.lines[key], f"{key} is a column name, got {value!r}", None, pid)
            return None
        return value

    def columns(self, item: MarkedDict, pid: str) -> list[str]:
        value = item.get("y")
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            self.report(item.lines["y"], "y is a column name or a list of them", None, pid)
            return []
        return list(values)

    def grid(self, item: MarkedDict, pid: str, kind: str, flow: _Flow) -> Grid:
        default_w, default_h = (3, 4) if kind == "stat" else (6, 8)
        value = item.get("grid")
        if value is None:
            return flow.place(default_w, default_h)
        if not isinstance(value, MarkedDict):
            self.report(item.lines["grid"], "grid is a mapping {x, y, w, h}", None, pid)
            return flow.place(default_w, default_h)
        self.keys(value, GRID_KEYS, "a grid", pid)
        numbers: dict[str, int] = {}
        for key in GRID_KEYS:
            number = value.get(key)
            if number is None:
                continue
            low = 1 if key in ("w", "h") else 0
            if isinstance(number, bool) or not isinstance(number, int) or number < low:
                self.report(
                    value.lines[key],
                    f"grid {key} is a whole number of {low} or more, got {number!r}",
                    None,
                    pid,
                )
                continue
            numbers[key] = number
        w = numbers.get("w", default_w)
        if w > COLUMNS:
            self.report(
                value.lines["w"],
                f"grid w {w} is wider than the grid's {COLUMNS} columns",
                None,
                pid,
            )
            w = COLUMNS
        h = numbers.get("h", default_h)
        if "x" not in numbers or "y" not in numbers:
            return flow.place(w, h)
        x, y = numbers["x"], numbers["y"]
        if x + w > COLUMNS:
            self.report(
                value.lines.get("x", value.line),
                f"grid x {x} + w {w} goes past the grid's {COLUMNS} columns",
                f"make x + w at most {COLUMNS}",
                pid,
            )
            x = max(0, COLUMNS - w)
        flow.taken(x, y, w, h)
        return Grid(x, y, w, h)

    def thresholds(self, item: MarkedDict, pid: str, kind: str) -> list[Threshold]:
        out: list[Threshold] = []
        entries = self.items(item, "thresholds")
        if entries and kind != "stat":
            self.report(item.lines["thresholds"], "thresholds are for stat panels", None, pid)
        for line, entry in entries:
            self.keys(entry, THRESHOLD_KEYS, "a threshold", pid)
            value, color = entry.get("value"), entry.get("color")
            if isinstance(value, bool) or not isinstance(value, int | float) or not color:
                self.report(
                    line,
                    "a threshold is a number and a color",
                    "e.g. - {value: 0.05, color: green}",
                    pid,
                )
                continue
            out.append(Threshold(float(value), str(color)))
        return sorted(out, key=lambda t: t.value)


class _Flow:
    """Places panels without a grid position left to right, in rows below the lowest
    panel placed so far."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.bottom = 0

    def taken(self, x: int, y: int, w: int, h: int) -> None:
        self.bottom = max(self.bottom, y + h)
        self.x, self.y, self.row_height = COLUMNS, self.bottom, 0  # what follows starts below

    def place(self, w: int, h: int) -> Grid:
        if self.x + w > COLUMNS:
            self.x, self.y, self.row_height = 0, max(self.bottom, self.y + self.row_height), 0
        grid = Grid(self.x, self.y, w, h)
        self.x += w
        self.row_height = max(self.row_height, h)
        self.bottom = max(self.bottom, self.y + h)
        return grid
