"""Pipelines, their runs, and starting a run (in a child process, so the server keeps
answering while it works and a run survives nothing it should not)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, NotFound
from lakehouse.errors import AccessDeniedError
from lakehouse.names import parse_table_name
from lakehouse.pipeline.definition import Pipeline
from lakehouse.service import quality as quality_service
from lakehouse.service import runs
from lakehouse.service.pipelines import pipelines_in

router = APIRouter(tags=["pipelines"])
Who = Annotated[Principal, Depends(principal)]


class RunRequest(BaseModel):
    full_refresh: bool = False
    select: list[str] = Field(default_factory=list, description="NAME, NAME+ or +NAME")


def _pipeline(request: Request, name: str) -> Pipeline:
    found = pipelines_in(request.app.state.settings.pipelines)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise NotFound(
            f"no pipeline named {name!r}",
            f"the pipelines are: {known} (lakehouse serve --pipelines DIR chooses the folder)",
        )
    return found[name]


def _require_runs(request: Request, who: Principal) -> None:
    """Pipelines and runs are operations data, kept in the system layer: shown to those who
    may read it (admins and engineers, or by grant)."""
    if not request.app.state.access.can_read(who, "system.pipeline_runs"):
        raise AccessDeniedError(
            f"{who.name} ({who.role}) may not see pipelines and their runs",
            "they are for roles that read the system layer: lakehouse grant read system --to NAME",
        )


@router.get("/pipelines", response_class=JSON)
def list_pipelines(request: Request, who: Who) -> Any:
    """The pipelines the server knows, their datasets and their latest run."""
    _require_runs(request, who)
    found = pipelines_in(request.app.state.settings.pipelines)
    latest = runs.latest_runs(request.app.state.lh) if found else {}
    return JSON(
        {
            "pipelines": [
                {
                    "name": p.name,
                    "description": p.description,
                    "folder": str(p.folder),
                    "datasets": [
                        {"name": d.name, "kind": d.kind, "layer": parse_table_name(d.name).layer}
                        for d in p.datasets.values()
                    ],
                    "last_run": latest.get(p.name),
                }
                for p in found.values()
            ]
        }
    )


@router.post("/pipelines/{name}/runs", response_class=JSON, status_code=202)
def start_run(request: Request, who: Who, name: str, body: RunRequest | None = None) -> Any:
    """Start a run in a child process; answers at once with its id (202)."""
    state = request.app.state
    request.state.target = name
    state.access.require(who, "run_pipeline")
    pipeline = _pipeline(request, name)
    body = body or RunRequest()
    run_id = state.launches.start_run(pipeline, full_refresh=body.full_refresh, select=body.select)
    return JSON({"run_id": run_id, "pipeline": pipeline.name, "status": "starting"}, 202)


@router.get("/runs", response_class=JSON)
def list_runs(
    request: Request,
    who: Who,
    pipeline: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Any:
    """Recent pipeline runs, newest first."""
    _require_runs(request, who)
    return JSON({"runs": runs.list_runs(request.app.state.lh, pipeline, limit)})


@router.get("/runs/{run_id}", response_class=JSON)
def get_run(request: Request, who: Who, run_id: str) -> Any:
    """One run, with the figures of each dataset."""
    _require_runs(request, who)
    state = request.app.state
    lh = state.lh
    request.state.target = run_id
    found = runs.find_run(lh, run_id)
    if found is None:
        launched = state.launches.state(run_id)
        if launched is None:
            raise NotFound(f"no run {run_id!r}", "GET /runs lists the recent runs")
        return JSON({**launched, "datasets": []})
    return JSON({**found, "datasets": runs.run_datasets(lh, run_id)})


@router.get("/quality", response_class=JSON)
def quality(request: Request, who: Who, table: str | None = None) -> Any:
    """Expectation results: one table's latest (with its score and status), or every
    table's latest run summarised (checks passed, warnings, failed, the worst status)."""
    state = request.app.state
    lh = state.lh
    if table is not None:
        from lakehouse.api.tables import quality_of, readable_table

        return JSON(quality_of(request, who, readable_table(request, who, table)))
    rows = quality_service.quality_overview(lh)
    allowed = set(state.access.readable(who, [r["table"] for r in rows]))
    return JSON({"tables": [r for r in rows if r["table"] in allowed]})
