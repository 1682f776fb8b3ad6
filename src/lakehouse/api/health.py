"""The health report and the alerts over HTTP. A caller sees the tables it may read (the
layers and the overall state are judged from those), and pipelines and their alerts when
it may see runs (it reads the system layer)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON
from lakehouse.service import health as service

router = APIRouter(tags=["health"])
Who = Annotated[Principal, Depends(principal)]
RUNS = "system.pipeline_runs"


def _sees_runs(request: Request, who: Principal) -> bool:
    return bool(request.app.state.access.can_read(who, RUNS))


@router.get("/health/report", response_class=JSON)
async def health_report(request: Request, who: Who) -> Any:
    """Per table its freshness against its SLA, last run, quality pass rate, small files,
    size and growth per day, versions since its last compaction and serving lag; per
    layer and overall healthy, degraded or unhealthy, with the reasons."""
    state = request.app.state
    full = await run_in_threadpool(service.report, state.lh)
    readable = set(state.access.readable(who, [t["table"] for t in full["tables"]]))
    runs = _sees_runs(request, who)
    if runs and len(readable) == len(full["tables"]):
        return JSON(full)
    if not runs:  # no pipeline, nor a run's name, in what is judged again
        full["pipelines"] = []
        for t in full["tables"]:
            if t["last_run"] is not None:
                t["last_run"] = {"status": t["last_run"]["status"]}
    return JSON(service.visible_report(full, readable))


@router.get("/alerts", response_class=JSON)
async def list_alerts(
    request: Request, who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Any:
    """The alerts firing now and the latest events (fired, resolved, their delivery), of
    the tables the caller may read (and of pipelines, when it may see runs)."""
    state = request.app.state
    found = await run_in_threadpool(service.alerts, state.lh, limit)
    runs = _sees_runs(request, who)

    def shown(alert: dict[str, Any]) -> bool:
        subject = alert["subject"]
        if subject.startswith("pipeline:"):
            return runs
        return bool(state.access.can_read(who, subject))

    return JSON({k: [a for a in v if shown(a)] for k, v in found.items()})
