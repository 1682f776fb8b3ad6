"""The serving store over HTTP: each mirror's state, and a refresh now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON
from lakehouse.service import serving as service

router = APIRouter(tags=["serving"])
Who = Annotated[Principal, Depends(principal)]


class RefreshRequest(BaseModel):
    table: str | None = Field(None, description="One table (default: every mirror)")


@router.get("/serving", response_class=JSON)
async def serving_status(request: Request, who: Who) -> Any:
    """Each mirror of a table the caller may read: its table's version, the version the
    serving store holds, rows, lag in seconds, state."""
    state = request.app.state
    state.access.require(who, "query")
    rows = await run_in_threadpool(service.status, state.lh)
    visible = [r for r in rows if state.access.can_read(who, r["table"])]
    return JSON({"mirrors": visible, "health": await run_in_threadpool(service.health, state.lh)})


@router.post("/serving/refresh", response_class=JSON)
async def serving_refresh(request: Request, who: Who, body: RefreshRequest) -> Any:
    """Bring the mirrors (or one) to their tables' newest versions now (for those who may
    run pipelines)."""
    state = request.app.state
    state.access.require(who, "run_pipeline")
    if body.table is not None:
        request.state.target = body.table
    done = await run_in_threadpool(service.refresh, state.lh, body.table)
    return JSON({"refreshed": done})
