"""Pipeline runs: start one in this process; list the recorded runs and the figures of
each dataset they processed (``system.pipeline_runs``, ``system.dataset_runs``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lakehouse.pipeline.records import DATASETS, RUNS, RunReport
from lakehouse.quoting import string

if TYPE_CHECKING:
    from lakehouse.pipeline.definition import Pipeline
    from lakehouse.warehouse import Lakehouse

OnProgress = Callable[[str, str, dict[str, Any]], None]
"""Told of each step of a run: the event, the dataset, the details."""

RUN_COLUMNS = (
    "run_id",
    "pipeline",
    "kind",
    "trigger",
    "status",
    "started_at",
    "seconds",
    "datasets",
    "rows_written",
    "error",
)
"""The columns of a run that a listing shows."""

DATASET_COLUMNS = (
    "dataset",
    "kind",
    "strategy",
    "status",
    "rows_read",
    "rows_written",
    "rows_dropped",
    "rows_quarantined",
    "rows_deduplicated",
    "dropped_by",
    "rescued_values",
    "input_versions",
    "version_written",
    "engine",
    "seconds",
    "error",
)
"""The figures of a dataset in a run that a listing shows."""


def start_run(
    lh: Lakehouse,
    pipeline: Pipeline,
    *,
    full_refresh: bool = False,
    select: list[str] | None = None,
    run_id: str | None = None,
    on_progress: OnProgress | None = None,
    trigger: str = "manual",
    engine: str | None = None,
    master: str | None = None,
) -> RunReport:
    """Validate and run ``pipeline`` in this process; ``on_progress`` hears of each step.
    Raises ``RunFailed`` (after restoring what the run wrote) on an error."""
    import lakehouse.logcontext as logcontext
    from lakehouse.pipeline.errors import RunFailed
    from lakehouse.pipeline.run import run_pipeline
    from lakehouse.service.health import after_run

    ran = run_id
    try:
        report = run_pipeline(
            lh,
            pipeline,
            full_refresh=full_refresh,
            select_=select,
            on_progress=on_progress,
            run_id=run_id,
            trigger=trigger,
            engine=engine,
            master=master,
        )
        ran = report.run_id
        return report
    except RunFailed as exc:
        ran = exc.run_id
        raise
    finally:  # the health report, written after each run (its failure is only logged)
        with logcontext.bound(run_id=ran, pipeline=pipeline.name):
            after_run(lh)


def has_runs(lh: Lakehouse) -> bool:
    """Whether any run was recorded."""
    return lh.catalog.get(RUNS) is not None


def list_runs(
    lh: Lakehouse,
    pipeline: str | None = None,
    limit: int = 20,
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The latest ``limit`` runs (of ``pipeline``, or of all), newest first: every column,
    or those of ``columns`` the records have (runs recorded by older versions lack some)."""
    if not has_runs(lh):
        return []
    where = f"WHERE pipeline = {string(pipeline)}" if pipeline else ""
    return _rows(
        lh,
        f"SELECT {_select(lh, RUNS, columns)} FROM {RUNS} {where} "
        f"ORDER BY started_at DESC LIMIT {int(limit)}",
    )


def latest_runs(lh: Lakehouse) -> dict[str, dict[str, Any]]:
    """Each pipeline's latest run, by pipeline name."""
    if not has_runs(lh):
        return {}
    rows = _rows(
        lh,
        f"SELECT * FROM {RUNS} QUALIFY row_number() OVER "
        "(PARTITION BY pipeline ORDER BY started_at DESC) = 1",
    )
    return {row["pipeline"]: row for row in rows}


def find_run(lh: Lakehouse, run_id: str) -> dict[str, Any] | None:
    """One run's record (the last written, if the run was recorded more than once)."""
    if not has_runs(lh):
        return None
    found = _rows(
        lh,
        f"SELECT * FROM {RUNS} WHERE run_id = {string(run_id)} "
        "ORDER BY ended_at DESC NULLS LAST LIMIT 1",
    )
    return found[0] if found else None


def run_datasets(
    lh: Lakehouse, run_id: str, columns: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The figures of each dataset a run processed, in the order it started them: every
    column, or those of ``columns`` the records have."""
    if lh.catalog.get(DATASETS) is None:
        return []
    return _rows(
        lh,
        f"SELECT {_select(lh, DATASETS, columns)} FROM {DATASETS} "
        f"WHERE run_id = {string(run_id)} ORDER BY started_at",
    )


def _select(lh: Lakehouse, table: str, wanted: Sequence[str] | None) -> str:
    if wanted is None:
        return "*"
    have = set(lh.table(table).schema.names)
    return ", ".join(c for c in wanted if c in have)


def _rows(lh: Lakehouse, sql: str) -> list[dict[str, Any]]:
    return lh.sql(sql).to_dicts()
