"""Table maintenance over HTTP: the plan, and running it (for those who may run
pipelines)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON
from lakehouse.service import maintenance as service

router = APIRouter(tags=["maintenance"])
Who = Annotated[Principal, Depends(principal)]


class MaintainRequest(BaseModel):
    table: str | None = Field(None, description="One table (default: every table)")


@router.get("/maintenance", response_class=JSON)
async def maintenance_plan(request: Request, who: Who, table: str | None = None) -> Any:
    """What each table needs now and why (nothing is done)."""
    state = request.app.state
    state.access.require(who, "run_pipeline")
    records = await run_in_threadpool(service.maintain, state.lh, table, True)
    return JSON({"actions": records})


@router.post("/maintenance", response_class=JSON)
async def maintenance_run(request: Request, who: Who, body: MaintainRequest) -> Any:
    """Do what each table (or one) needs; ``failed`` is true when an action failed."""
    state = request.app.state
    state.access.require(who, "run_pipeline")
    if body.table is not None:
        request.state.target = body.table
    records = await run_in_threadpool(service.maintain, state.lh, body.table, False)
    return JSON({"actions": records, "failed": service.failed(records)})


class ConvertRequest(BaseModel):
    to: Literal["delta", "iceberg"] = Field(description="The table format to convert to")
    wait: float = Field(
        0.0, ge=0, le=600, description="Seconds to wait for the table's writers to finish"
    )


@router.post("/tables/{name}/convert", response_class=JSON)
async def convert_table(request: Request, who: Who, name: str, body: ConvertRequest) -> Any:
    """Rewrite a table in the other table format, keeping its rows, schema, partitioning
    and catalog entry; 409 when the table is being written."""
    from lakehouse.service.convert import convert

    state = request.app.state
    state.access.require(who, "run_pipeline")
    request.state.target = name
    done = await run_in_threadpool(convert, state.lh, name, body.to, body.wait)
    return JSON(done)
