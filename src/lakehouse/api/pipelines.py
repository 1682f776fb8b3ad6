"""Pipelines, their runs, and starting a run (in a child process, so the server keeps
answering while it works and a run survives nothing it should not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, NotFound
from lakehouse.errors import AccessDeniedError, LakehouseError
from lakehouse.names import parse_table_name
from lakehouse.pipeline.definition import Pipeline, load_pipeline
from lakehouse.pipeline.run import new_run_id
from lakehouse.quoting import literal

router = APIRouter(tags=["pipelines"])
Who = Annotated[Principal, Depends(principal)]


class RunRequest(BaseModel):
    full_refresh: bool = False
    select: list[str] = Field(default_factory=list, description="NAME, NAME+ or +NAME")


class Launches:
    """Runs this server started, until the run has records of its own: a small file per
    launch in ``<warehouse>/_pipelines/launches`` (any worker process of the server can
    answer for it), the run's error output next to it, and its exit code once it ends."""

    def __init__(self, root: str | None) -> None:
        self.folder = Path(root) / "_pipelines" / "launches" if root else None
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, run_id: str, pipeline: str, args: list[str], env: dict[str, str]) -> None:
        if self.folder is None:
            raise LakehouseError(
                "runs can be started from the API only for a local warehouse",
                "run it with `lakehouse run` where the pipeline is",
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{run_id}.json").write_text(json.dumps({"pipeline": pipeline}))
        with open(self.folder / f"{run_id}.err", "wb") as errors:
            proc = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        with self._lock:
            self._procs.append(proc)
        threading.Thread(target=self._wait, args=(run_id, proc), daemon=True).start()

    def _wait(self, run_id: str, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        assert self.folder is not None
        (self.folder / f"{run_id}.exit").write_text(str(code))
        with self._lock:
            self._procs.remove(proc)

    def state(self, run_id: str) -> dict[str, Any] | None:
        if self.folder is None or not (self.folder / f"{run_id}.json").exists():
            return None
        pipeline = json.loads((self.folder / f"{run_id}.json").read_text())["pipeline"]
        exit_file = self.folder / f"{run_id}.exit"
        if not exit_file.exists():
            return {"run_id": run_id, "pipeline": pipeline, "status": "starting"}
        code = int(exit_file.read_text() or 1)
        lines = (self.folder / f"{run_id}.err").read_text(errors="replace").strip().splitlines()
        error = next((x for x in reversed(lines) if x.startswith("error:")), None)
        if error is None and lines:
            error = lines[-1]
        return {
            "run_id": run_id,
            "pipeline": pipeline,
            "status": "succeeded" if code == 0 else "failed",
            "error": error if code else None,
        }

    def stop(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def pipelines_in(folder: Path | None) -> dict[str, Pipeline]:
    """Every pipeline under ``folder``: the folder itself if it holds a pipeline.yml, else
    its subfolders that do."""
    if folder is None or not folder.is_dir():
        return {}
    candidates = (
        [folder]
        if (folder / "pipeline.yml").exists()
        else sorted(p.parent for p in folder.glob("*/pipeline.yml"))
    )
    found: dict[str, Pipeline] = {}
    for path in candidates:
        pipeline = load_pipeline(path)
        found[pipeline.name] = pipeline
    return found


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


def _rows(lh: Any, sql: str) -> list[dict[str, Any]]:
    return lh.sql(sql).to_dicts()


def _has(lh: Any, table: str) -> bool:
    return lh.catalog.get(table) is not None


@router.get("/pipelines", response_class=JSON)
def list_pipelines(request: Request, who: Who) -> Any:
    """The pipelines the server knows, their datasets and their latest run."""
    _require_runs(request, who)
    lh = request.app.state.lh
    found = pipelines_in(request.app.state.settings.pipelines)
    latest: dict[str, dict[str, Any]] = {}
    if found and _has(lh, "system.pipeline_runs"):
        for row in _rows(
            lh,
            "SELECT * FROM system.pipeline_runs QUALIFY row_number() OVER "
            "(PARTITION BY pipeline ORDER BY started_at DESC) = 1",
        ):
            latest[row["pipeline"]] = row
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
    run_id = new_run_id()
    args = [sys.executable, "-m", "lakehouse.cli", "run", str(pipeline.folder), "--run-id", run_id]
    if body.full_refresh:
        args.append("--full-refresh")
    for item in body.select:
        args += ["--select", item]
    env = {**os.environ, "LAKEHOUSE_WAREHOUSE": str(state.lh.root), "NO_COLOR": "1"}
    state.launches.start(run_id, pipeline.name, args, env)
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
    lh = request.app.state.lh
    if not _has(lh, "system.pipeline_runs"):
        return JSON({"runs": []})
    where = f"WHERE pipeline = {literal(pipeline)}" if pipeline else ""
    runs = _rows(
        lh,
        f"SELECT * FROM system.pipeline_runs {where} ORDER BY started_at DESC LIMIT {limit}",
    )
    return JSON({"runs": runs})


@router.get("/runs/{run_id}", response_class=JSON)
def get_run(request: Request, who: Who, run_id: str) -> Any:
    """One run, with the figures of each dataset."""
    _require_runs(request, who)
    state = request.app.state
    lh = state.lh
    request.state.target = run_id
    found: list[dict[str, Any]] = []
    if _has(lh, "system.pipeline_runs"):
        found = _rows(
            lh,
            f"SELECT * FROM system.pipeline_runs WHERE run_id = {literal(run_id)} "
            "ORDER BY ended_at DESC NULLS LAST LIMIT 1",
        )
    if not found:
        launched = state.launches.state(run_id)
        if launched is None:
            raise NotFound(f"no run {run_id!r}", "GET /runs lists the recent runs")
        return JSON({**launched, "datasets": []})
    datasets: list[dict[str, Any]] = []
    if _has(lh, "system.dataset_runs"):
        datasets = _rows(
            lh,
            f"SELECT * FROM system.dataset_runs WHERE run_id = {literal(run_id)} "
            "ORDER BY started_at",
        )
    return JSON({**found[0], "datasets": datasets})


@router.get("/quality", response_class=JSON)
def quality(request: Request, who: Who, table: str | None = None) -> Any:
    """Expectation results: one table's latest (with its score and status), or every
    table's latest run summarised (checks passed, warnings, failed, the worst status)."""
    from lakehouse.pipeline.quality_report import quality_overview

    state = request.app.state
    lh = state.lh
    if table is not None:
        from lakehouse.api.tables import quality_of, readable_table

        return JSON(quality_of(request, who, readable_table(request, who, table)))
    rows = quality_overview(lh)
    allowed = set(state.access.readable(who, [r["table"] for r in rows]))
    return JSON({"tables": [r for r in rows if r["table"] in allowed]})
