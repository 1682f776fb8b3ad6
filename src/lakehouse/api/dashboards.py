"""Dashboards: the files of the server's dashboards folder, and their panels read for the
caller through the same sandbox, access rules, masking and audit as ``POST /query``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, NotFound, error_body, json_answer, rows_json
from lakehouse.dashboards.model import Dashboard, Panel
from lakehouse.dashboards.params import InvalidValue
from lakehouse.dashboards.reader import DashboardNotFound, find_file, load_folder, read_dashboard
from lakehouse.dashboards.run import (
    PANEL_ROWS,
    Caller,
    PanelError,
    PanelResult,
    options_of,
    run_panel,
    values_for,
)
from lakehouse.errors import LakehouseError
from lakehouse.sql.sandbox import result_limit

router = APIRouter(tags=["dashboards"])
Who = Annotated[Principal, Depends(principal)]
TIME_KEYS = ("from", "to")


def _folder(request: Request) -> Path:
    folder: Path | None = request.app.state.settings.dashboards
    if folder is None:
        raise NotFound(
            "the server has no dashboards folder",
            "start it with lakehouse serve --dashboards DIR (or LAKEHOUSE_DASHBOARDS=DIR), "
            "or from a folder holding dashboards/",
        )
    return folder


# Files read once per change (a page refreshing its panels asks for each one every few
# seconds): by path, modification time and size.
_read: dict[Path, tuple[tuple[int, int], tuple[Dashboard | None, list[Any]]]] = {}


def _read_cached(path: Path) -> tuple[Dashboard | None, list[Any]]:
    info = path.stat()
    stamp = (info.st_mtime_ns, info.st_size)
    found = _read.get(path)
    if found is None or found[0] != stamp:
        found = _read[path] = (stamp, read_dashboard(path))
    return found[1]


def _dashboard(request: Request, name: str) -> Dashboard:
    try:
        path = find_file(_folder(request), name)
    except DashboardNotFound as exc:
        raise NotFound(exc.message, exc.hint) from exc
    dashboard, problems = _read_cached(path)
    if dashboard is None:
        raise NotFound(
            f"dashboard {name} cannot be read: {problems[0]}",
            "fix the file (lakehouse dashboards validate lists every problem)",
        )
    return dashboard


_ENCODED: OrderedDict[int, tuple[pa.Table, int, bytes]] = OrderedDict()
_ENCODED_LOCK = threading.Lock()
ENCODED_KEPT = 64  # answers whose JSON is kept
ENCODED_BYTES = 256 << 10  # at most this much JSON an answer (16 MiB in all)


def _encoded(table: pa.Table, most: int) -> bytes:
    """``rows_json`` of ``table``, made once for an answer given again (the serving
    store's kept answers are the same table object): the entry holds the table, so its
    identity is not reused while kept."""
    with _ENCODED_LOCK:
        kept = _ENCODED.get(id(table))
        if kept is not None and kept[0] is table and kept[1] == most:
            _ENCODED.move_to_end(id(table))
            return kept[2]
    rows = rows_json(table, most)
    if len(rows) > ENCODED_BYTES:
        return rows
    with _ENCODED_LOCK:
        _ENCODED[id(table)] = (table, most, rows)
        while len(_ENCODED) > ENCODED_KEPT:
            _ENCODED.popitem(last=False)
    return rows


def _caller(request: Request, who: Principal) -> Caller:
    state = request.app.state
    return Caller(
        can_read=lambda t: bool(state.access.can_read(who, t)),
        masked=lambda t: list(state.access.masked_columns(who, t)),
        limit=min(PANEL_ROWS, state.settings.max_rows),
        timeout=state.settings.query_timeout,
        # A reader's "no-cache" (a forced refresh): the serving store reads again.
        fresh="no-cache" in request.headers.get("cache-control", "").lower(),
    )


@router.get("/dashboards", response_class=JSON)
def list_dashboards(request: Request, who: Who) -> Any:
    """The dashboard files the server knows; a file that cannot be read is listed with
    its first error."""
    request.app.state.access.require(who, "query")
    listed = []
    for path, dashboard, problems in load_folder(_folder(request)):
        errors = [p for p in problems if p.severity == "error"]
        listed.append(
            {
                "name": path.stem,
                "title": dashboard.title if dashboard is not None else path.stem,
                "file": path.name,
                "panels": len(dashboard.panels) if dashboard is not None else 0,
                "refresh_seconds": dashboard.refresh if dashboard is not None else None,
                "error": str(errors[0]) if errors else None,
            }
        )
    return JSON({"dashboards": listed})


@router.get("/dashboards/{name}", response_class=JSON)
def get_dashboard(request: Request, who: Who, name: str) -> Any:
    """A dashboard's definition: its variables (with a select's options, read for the
    caller), its panels and the problems of its file."""
    request.state.target = f"dashboard {name}"
    request.app.state.access.require(who, "query")
    dashboard = _dashboard(request, name)
    lh = request.app.state.lh
    caller = _caller(request, who)
    bounds = dict(zip(TIME_KEYS, dashboard.time_range.bounds(), strict=True))
    variables = []
    for v in dashboard.variables:
        options: list[Any] | None = None
        error = None
        if v.kind == "select":
            try:
                options = options_of(lh, v, caller, bounds)
            except InvalidValue as exc:
                options, error = [], {"message": exc.message, "hint": exc.hint}
        default = v.default
        if default is None and options:
            default = options[0]
        variables.append(
            {
                "name": v.name,
                "label": v.label,
                "kind": v.kind,
                "default": default,
                "options": options,
                "error": error,
            }
        )
    return JSON(
        {
            "name": dashboard.name,
            "title": dashboard.title,
            "description": dashboard.description,
            "refresh_seconds": dashboard.refresh,
            "time_range": dashboard.time_range.text,
            "variables": variables,
            "panels": [
                {
                    "id": p.id,
                    "title": p.title,
                    "kind": p.kind,
                    "sql": p.sql,
                    "x": p.x,
                    "y": p.y,
                    "series": p.series,
                    "unit": p.unit,
                    "format": p.format,
                    "grid": p.grid.to_dict(),
                    "thresholds": [{"value": t.value, "color": t.color} for t in p.thresholds],
                    "description": p.description,
                }
                for p in dashboard.panels
            ],
            "problems": [p.to_dict() for p in dashboard.problems],
        }
    )


@router.get("/dashboards/{name}/panels/{panel_id}", response_class=JSON)
async def read_panel(request: Request, who: Who, name: str, panel_id: str) -> Any:
    """One panel's rows for the caller. Query parameters: ``from`` and ``to`` (ISO times;
    the dashboard's time range otherwise) and one per variable. A panel whose query fails
    answers 200 with its ``error``; an unknown variable or a value it does not allow, 422."""
    state = request.app.state
    request.state.target = f"dashboard {name} panel {panel_id}"
    state.access.require(who, "query")
    given = dict(request.query_params)
    start, end = given.pop("from", None), given.pop("to", None)
    caller = _caller(request, who)

    def run() -> tuple[Panel, PanelResult, bytes]:
        # One trip to a worker thread: the file, the parameters, the rows and their JSON.
        dashboard = _dashboard(request, name)
        panel = dashboard.panel(panel_id)
        if panel is None:
            ids = ", ".join(p.id for p in dashboard.panels) or "none"
            raise NotFound(f"dashboard {name} has no panel {panel_id!r}", f"its panels are: {ids}")
        values = values_for(state.lh, dashboard, caller, given, start, end)
        if "audit_log" in panel.sql:  # the caller sees its own calls up to this one
            state.audit.flush()
        result = run_panel(state.lh, panel, values, caller)
        rows = b"[]"
        if result.error is None:
            try:
                rows = _encoded(result.table, result_limit())
            except LakehouseError as exc:  # too large for an answer: the panel's error
                result.error, result.table = PanelError(exc.message, exc.hint), None
        return panel, result, rows

    try:
        panel, result, rows = await run_in_threadpool(run)
    except InvalidValue as exc:
        request.state.detail = exc.message[:2000]
        return JSON(error_body(422, exc.message, exc.hint), 422)
    if result.error is not None:
        request.state.denied = result.error.denied  # for the audit log only
        request.state.detail = f"panel error: {result.error.message}"[:2000]
    else:
        request.state.detail = f"{result.row_count} rows" + (" (cached)" if result.cached else "")
    return json_answer(
        {
            "id": panel.id,
            "title": panel.title,
            "kind": panel.kind,
            "engine": result.engine,
            "columns": result.columns,
            "types": result.types,
            "row_count": result.row_count,
            "truncated": result.truncated,
            "cached": result.cached,
            "tables": result.tables,
            "elapsed_ms": result.elapsed_ms,
            "note": result.note,
            "error": result.error.to_dict() if result.error is not None else None,
        },
        rows,
    )


class NewPanel(BaseModel):
    """A chart as a dashboard panel: `:name` parameters of the editor are `$name` here."""

    title: str = Field(min_length=1, max_length=200)
    kind: Literal["line", "bar", "area", "table", "pie", "stat"] = "bar"
    sql: str = Field(min_length=1, max_length=100_000)
    x: str | None = Field(None, max_length=1000)
    y: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=50)
    series: str | None = Field(None, max_length=1000)


@router.post("/dashboards/{name}/panels", response_class=JSON, status_code=201)
def add_dashboard_panel(request: Request, who: Who, name: str, body: NewPanel) -> Any:
    """Add a panel at the end of a dashboard file (for roles that run pipelines: they
    change the server's files); the file is checked as a dashboard before it is replaced."""
    from lakehouse.service.dashboard_panels import add_chart

    request.state.target = f"dashboard {name}"
    request.app.state.access.require(who, "run_pipeline")
    try:
        added = add_chart(_folder(request), name, body.model_dump())
    except DashboardNotFound as exc:
        raise NotFound(exc.message, exc.hint) from exc
    return JSON(added, 201)
