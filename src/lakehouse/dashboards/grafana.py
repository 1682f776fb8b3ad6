"""A dashboard as a Grafana dashboard (the classic JSON model) reading ClickHouse through
Grafana's official ClickHouse data source plugin (``grafana-clickhouse-datasource``).

Panel SQL is written in DuckDB's dialect; it is carried over to ClickHouse's by sqlglot
where sqlglot reads it (as written otherwise), with ``$from``/``$to`` turned into the
plugin's macros ``$__fromTime``/``$__toTime`` and ``$name`` into Grafana's ``${name}``
(quoted as a string where the variable holds text). The data source is an input
(``${DS_CLICKHOUSE}``) chosen when the file is imported.
"""

from __future__ import annotations

from typing import Any

import sqlglot
import sqlglot.errors
from sqlglot import exp

from lakehouse.dashboards.model import COLUMNS, Dashboard, Panel, Variable
from lakehouse.dashboards.params import rewrite

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE = {"type": PLUGIN, "uid": "${DS_CLICKHOUSE}"}
SCHEMA_VERSION = 39
SCALE = 24 // COLUMNS  # Grafana's grid has 24 columns
TYPES = {
    "stat": "stat",
    "line": "timeseries",
    "area": "timeseries",
    "bar": "barchart",
    "table": "table",
    "pie": "piechart",
}
TIME_SERIES = ("line", "area")
MACROS = {"from": "$__fromTime", "to": "$__toTime"}
_MARK = "lhparam_"


def export_grafana(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard JSON of ``dashboard``, ready to import."""
    quoted = {v.name for v in dashboard.variables if _is_text(v)}
    return {
        "__inputs": [
            {
                "name": "DS_CLICKHOUSE",
                "label": "ClickHouse",
                "description": "The ClickHouse server holding the lakehouse's tables",
                "type": "datasource",
                "pluginId": PLUGIN,
                "pluginName": "ClickHouse",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": PLUGIN, "name": "ClickHouse", "version": "4.0.0"},
            *[
                {"type": "panel", "id": kind, "name": kind, "version": ""}
                for kind in sorted({TYPES[p.kind] for p in dashboard.panels})
            ],
        ],
        "id": None,
        "uid": f"lakehouse-{dashboard.name}"[:40],
        "title": dashboard.title,
        "description": dashboard.description or "",
        "tags": ["lakehouse"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": f"{dashboard.refresh}s",
        "time": {"from": dashboard.time_range.grafana(), "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [_variable(v, quoted) for v in dashboard.variables]},
        "panels": [_panel(i, p, quoted) for i, p in enumerate(dashboard.panels, start=1)],
    }


def clickhouse_sql(sql: str, quoted: set[str]) -> str:
    """``sql`` in ClickHouse's dialect with Grafana's macros and variables."""

    def grafana_name(name: str) -> str:
        if name in MACROS:
            return MACROS[name]
        return f"${{{name}:singlequote}}" if name in quoted else f"${{{name}}}"

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        for node in list(tree.find_all(exp.Placeholder)):
            name = str(node.this or "").lower()
            if name and not name.isdigit():
                node.replace(exp.Var(this=_MARK + name))
        text = tree.sql(dialect="clickhouse", pretty=True)
    except (sqlglot.errors.SqlglotError, ValueError):
        return rewrite(sql, grafana_name)
    names = sorted({n.this[len(_MARK) :] for n in tree.find_all(exp.Var) if _is_mark(n)}, key=len)
    for name in reversed(names):  # longer names first: $page_size before $page
        text = text.replace(_MARK + name, grafana_name(name))
    return text


def _is_mark(node: exp.Var) -> bool:
    return isinstance(node.this, str) and node.this.startswith(_MARK)


def _is_text(variable: Variable) -> bool:
    if variable.kind != "select":
        return True
    values = variable.options if variable.options is not None else [variable.default]
    return not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _variable(variable: Variable, quoted: set[str]) -> dict[str, Any]:
    default = "" if variable.default is None else str(variable.default)
    current = {"selected": True, "text": default, "value": default}
    base: dict[str, Any] = {
        "name": variable.name,
        "label": variable.label,
        "hide": 0,
        "skipUrlSync": False,
        "current": current,
    }
    if variable.kind != "select":
        return {**base, "type": "textbox", "query": default, "options": []}
    if variable.options is not None:
        values = [str(o) for o in variable.options]
        return {
            **base,
            "type": "custom",
            "query": ",".join(v.replace(",", "\\,") for v in values),
            "multi": False,
            "includeAll": False,
            "options": [{"selected": v == default, "text": v, "value": v} for v in values],
        }
    query = clickhouse_sql(variable.options_sql or "", quoted)
    return {
        **base,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2 if "$__" in query else 1,  # on time range change, else on load
        "multi": False,
        "includeAll": False,
        "sort": 0,
        "options": [],
    }


def _panel(number: int, panel: Panel, quoted: set[str]) -> dict[str, Any]:
    kind = TYPES[panel.kind]
    target = {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorType": "sql",
        "queryType": "timeSeries" if panel.kind in TIME_SERIES else "table",
        "format": 0 if panel.kind in TIME_SERIES else 1,
        "rawSql": clickhouse_sql(panel.sql, quoted),
    }
    grid = panel.grid
    return {
        "id": number,
        "type": kind,
        "title": panel.title,
        "description": panel.description or "",
        "datasource": DATASOURCE,
        "gridPos": {"x": grid.x * SCALE, "y": grid.y, "w": grid.w * SCALE, "h": grid.h},
        "targets": [target],
        "fieldConfig": {"defaults": _field_defaults(panel), "overrides": []},
        "options": _options(panel),
        **_transformations(panel),
    }


def _unit(panel: Panel) -> str:
    unit = panel.unit
    if panel.format == "percent":
        return "percentunit"
    if panel.format == "currency":
        return f"currency{(unit or 'USD').upper()}"
    if panel.format == "duration":
        return unit if unit in ("ns", "µs", "ms", "s", "m", "h", "d") else "s"
    if panel.format == "bytes":
        return "bytes"
    return f"suffix: {unit}" if unit else "short"


def _field_defaults(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "text", "value": None}]
    steps += [{"color": t.color, "value": t.value} for t in panel.thresholds]
    defaults: dict[str, Any] = {
        "unit": _unit(panel),
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds" if panel.thresholds else "palette-classic"},
    }
    if panel.kind in TIME_SERIES:
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 2,
            "fillOpacity": 25 if panel.kind == "area" else 0,
            "stacking": {"mode": "normal" if panel.kind == "area" else "none", "group": "A"},
            "showPoints": "auto",
        }
    return defaults


def _options(panel: Panel) -> dict[str, Any]:
    legend = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
    values = [panel.y[0]] if panel.y else []
    fields = "/^(" + "|".join(values) + ")$/" if values else ""
    reduce = {"calcs": ["lastNotNull"], "fields": fields, "values": False}
    if panel.kind == "stat":
        return {
            "reduceOptions": reduce,
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        }
    if panel.kind in TIME_SERIES:
        return {"legend": legend, "tooltip": {"mode": "multi", "sort": "none"}}
    if panel.kind == "bar":
        return {
            "xField": panel.x,
            "orientation": "auto",
            "showValue": "auto",
            "stacking": "normal" if panel.series else "none",
            "legend": legend,
            "tooltip": {"mode": "single", "sort": "none"},
        }
    if panel.kind == "pie":
        return {
            "reduceOptions": {**reduce, "values": True},
            "pieType": "pie",
            "displayLabels": ["name", "percent"],
            "legend": legend,
        }
    return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}


def _transformations(panel: Panel) -> dict[str, Any]:
    """A bar chart split by a column: its rows turned into one column per series value
    by Grafana's own transformation (a time series is split by the plugin)."""
    if panel.kind == "bar" and panel.series and panel.x and panel.y:
        options = {"columnField": panel.series, "rowField": panel.x, "valueField": panel.y[0]}
        return {"transformations": [{"id": "groupingToMatrix", "options": options}]}
    return {}
