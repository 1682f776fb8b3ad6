"""What runs leave behind in the ``system`` layer, queryable like any table:

- ``system.pipeline_runs``: one row per run (id, pipeline, kind: ``run`` or ``replay``,
  the pipeline's folder, status, times, error, and what started it: ``manual``,
  ``schedule``, ``api``, ``airflow`` or ``retry``);
- ``system.dataset_runs``: per run and dataset, rows read, written, dropped (and by which
  expectation), quarantined, de-duplicated, values rescued per column, the input versions
  read and the version written, duration, status, error. Rows read = written + dropped +
  quarantined + deduplicated for a dataset whose query keeps its input's rows one for one
  (files, replays, row-wise append queries);
- ``system.quality_results``: per run, dataset and expectation, passed or not, failed rows
  and a sample of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.pipeline.quality import CheckResult, sample_json
from lakehouse.quoting import string

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

RUNS = "system.pipeline_runs"
TRIGGERS = ("manual", "schedule", "api", "airflow", "retry")
DATASETS = "system.dataset_runs"
QUALITY = "system.quality_results"


@dataclass
class DatasetRun:
    dataset: str
    kind: str
    strategy: str = ""
    status: str = "pending"  # ok | unchanged | failed | not run | rolled back
    rows_read: int = 0
    rows_written: int = 0
    rows_dropped: int = 0
    rows_quarantined: int = 0
    rows_deduplicated: int = 0  # left out because their key was in the batch or the table
    dropped_by: dict[str, int] = field(default_factory=dict)  # expectation -> rows dropped
    rescued: dict[str, int] = field(default_factory=dict)  # column -> values rescued
    inputs: dict[str, int | None] = field(default_factory=dict)
    version_before: int | None = None
    version: int | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0
    error: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    engine: str | None = None  # the engine that computed its rows (None: no query ran)
    engine_why: str | None = None  # why that engine: who asked, or the auto rule


@dataclass
class RunReport:
    run_id: str
    pipeline: str
    started_at: datetime
    full_refresh: bool = False
    selection: str | None = None
    status: str = "running"  # running | succeeded | failed | interrupted
    ended_at: datetime | None = None
    error: str | None = None
    datasets: list[DatasetRun] = field(default_factory=list)
    kind: str = "run"  # run | replay
    folder: str | None = None  # the pipeline's folder
    trigger: str = "manual"  # manual | schedule | api | airflow | retry

    @property
    def seconds(self) -> float:
        end = self.ended_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()


RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("pipeline", pa.string()),
        ("status", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("ended_at", pa.timestamp("us", tz="UTC")),
        ("seconds", pa.float64()),
        ("full_refresh", pa.bool_()),
        ("selection", pa.string()),
        ("datasets", pa.int64()),
        ("rows_written", pa.int64()),
        ("error", pa.string()),
        ("kind", pa.string()),
        ("folder", pa.string()),
        ("trigger", pa.string()),
    ]
)


def _run_row(report: RunReport) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "run_id": report.run_id,
                "pipeline": report.pipeline,
                "status": report.status,
                "started_at": report.started_at,
                "ended_at": report.ended_at,
                "seconds": round(report.seconds, 3) if report.ended_at else None,
                "full_refresh": report.full_refresh,
                "selection": report.selection,
                "datasets": len(report.datasets),
                "rows_written": sum(d.rows_written for d in report.datasets),
                "error": report.error,
                "kind": report.kind,
                "folder": report.folder,
                "trigger": report.trigger,
            }
        ],
        schema=RUN_SCHEMA,
    )


def run_started(lh: Lakehouse, report: RunReport) -> None:
    lh.write(RUNS, _run_row(report), keys=["run_id"], evolve=True, description="Pipeline runs")


def run_finished(lh: Lakehouse, report: RunReport) -> None:
    """The run's figures first, its final status last: a reader that sees the run ended
    finds its datasets and checks too."""
    if report.datasets:
        lh.write(
            DATASETS,
            _dataset_rows(report),
            evolve=True,
            description="Per dataset figures of each run",
        )
    checks = _check_rows(report)
    if checks.num_rows:
        lh.write(QUALITY, checks, description="Expectation results of each run")
    lh.write(RUNS, _run_row(report), mode="merge", keys=["run_id"], evolve=True)


def close_interrupted(lh: Lakehouse, pipeline: str) -> list[str]:
    """Runs of ``pipeline`` still marked running (their process died): marked interrupted.
    Called under the pipeline's lock, so none of them is really running."""
    if lh.catalog.get(RUNS) is None:
        return []
    rows = lh.sql(
        f"SELECT * FROM {RUNS} WHERE pipeline = {string(pipeline)} AND status = 'running'"
    ).to_arrow()
    if rows.num_rows == 0:
        return []
    now = datetime.now(UTC)
    fixed = rows.to_pylist()
    for row in fixed:
        row.update(status="interrupted", ended_at=now, error="the run's process ended mid-run")
    lh.write(
        RUNS,
        pa.Table.from_pylist(fixed, schema=RUN_SCHEMA),
        mode="merge",
        keys=["run_id"],
        evolve=True,
    )
    return [r["run_id"] for r in fixed]


def _dataset_rows(report: RunReport) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for d in report.datasets:
        rows.append(
            {
                "run_id": report.run_id,
                "pipeline": report.pipeline,
                "dataset": d.dataset,
                "kind": d.kind,
                "strategy": d.strategy,
                "status": d.status,
                "rows_read": d.rows_read,
                "rows_written": d.rows_written,
                "rows_dropped": d.rows_dropped,
                "rows_quarantined": d.rows_quarantined,
                "rows_deduplicated": d.rows_deduplicated,
                "dropped_by": json.dumps(d.dropped_by, sort_keys=True),
                "rescued_values": json.dumps(d.rescued, sort_keys=True),
                "input_versions": json.dumps(d.inputs, sort_keys=True),
                "version_before": d.version_before,
                "version_written": d.version,
                "started_at": d.started_at,
                "seconds": round(d.seconds, 3),
                "error": d.error,
                "engine": d.engine,
                "engine_why": d.engine_why,
            }
        )
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("run_id", pa.string()),
                ("pipeline", pa.string()),
                ("dataset", pa.string()),
                ("kind", pa.string()),
                ("strategy", pa.string()),
                ("status", pa.string()),
                ("rows_read", pa.int64()),
                ("rows_written", pa.int64()),
                ("rows_dropped", pa.int64()),
                ("rows_quarantined", pa.int64()),
                ("rows_deduplicated", pa.int64()),
                ("dropped_by", pa.string()),
                ("rescued_values", pa.string()),
                ("input_versions", pa.string()),
                ("version_before", pa.int64()),
                ("version_written", pa.int64()),
                ("started_at", pa.timestamp("us", tz="UTC")),
                ("seconds", pa.float64()),
                ("error", pa.string()),
                ("engine", pa.string()),
                ("engine_why", pa.string()),
            ]
        ),
    )


def _check_rows(report: RunReport) -> pa.Table:
    now = datetime.now(UTC)
    rows = [
        {
            "run_id": report.run_id,
            "pipeline": report.pipeline,
            "dataset": d.dataset,
            "expectation": c.expectation,
            "check_type": c.check,
            "action": c.action,
            "passed": c.passed,
            "failed_rows": c.failed_rows,
            "total_rows": c.total_rows,
            "detail": c.detail,
            "sample": sample_json(c.sample),
            "checked_at": now,
        }
        for d in report.datasets
        for c in d.checks
    ]
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("run_id", pa.string()),
                ("pipeline", pa.string()),
                ("dataset", pa.string()),
                ("expectation", pa.string()),
                ("check_type", pa.string()),
                ("action", pa.string()),
                ("passed", pa.bool_()),
                ("failed_rows", pa.int64()),
                ("total_rows", pa.int64()),
                ("detail", pa.string()),
                ("sample", pa.string()),
                ("checked_at", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )


def pipeline_folder(lh: Lakehouse, dataset: str) -> str | None:
    """The folder of the pipeline whose latest run wrote ``dataset``, if runs recorded it."""
    if lh.catalog.get(DATASETS) is None or lh.catalog.get(RUNS) is None:
        return None
    names = {f.name for f in lh.table(RUNS).schema}
    if "folder" not in names:
        return None
    quoted = string(dataset)
    found = lh.sql(
        f"SELECT r.folder FROM {DATASETS} d JOIN {RUNS} r USING (run_id) "
        f"WHERE d.dataset = {quoted} AND r.folder IS NOT NULL "
        "ORDER BY d.started_at DESC LIMIT 1"
    ).rows()
    return found[0][0] if found else None
