"""``GET /schedules``: the scheduled jobs, their next and last runs and outcomes, and
which scheduler holds the lease; for those who may run pipelines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON
from lakehouse.service import schedules

router = APIRouter(tags=["schedules"])
Who = Annotated[Principal, Depends(principal)]


@router.get("/schedules", response_class=JSON)
def list_schedules(
    request: Request,
    who: Who,
    history: Annotated[int, Query(ge=0, le=1000, description="events to include")] = 0,
) -> Any:
    """Each job (pipelines with a schedule, maintenance, alerts): its schedule, policies,
    next run, last run and outcome; the scheduler holding the lease; with ``history=N``
    the latest N events (started, skipped, missed, ended)."""
    state = request.app.state
    state.access.require(who, "run_pipeline")
    lh = state.lh
    body: dict[str, Any] = {
        "scheduler": schedules.scheduler_status(lh),
        "schedules": schedules.list_schedules(lh),
    }
    if history:
        body["history"] = schedules.schedule_history(lh, limit=history)
    return JSON(body)
