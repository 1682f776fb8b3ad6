"""Running a pipeline: each dataset in order, each write atomic with the input versions it
was computed from.

Every table a run writes records, in the same Delta commit as its rows, which version of
each input the rows come from. The next run reads that back and processes only what came
after (append and CDC datasets read the rows added since; materialized views are skipped
when no input moved, refreshed by group where the query allows it, recomputed otherwise).
So a run killed at any point leaves each table at a consistent version, and running again
finishes the work: the tables end as an uninterrupted run leaves them. A run that fails
restores every table it wrote, input versions included, to where it was before.

How each kind of dataset computes and writes its rows is in ``pipeline/kinds/``; the
runner holds the lock, records the run, rolls back and records lineage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import lakehouse.logcontext as logcontext
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.errors import RunFailed
from lakehouse.pipeline.graph import select
from lakehouse.pipeline.kinds import kind_for
from lakehouse.pipeline.kinds.append import new_keys
from lakehouse.pipeline.kinds.context import Progress, RunContext
from lakehouse.pipeline.lock import pipeline_lock
from lakehouse.pipeline.model import Dataset, Pipeline
from lakehouse.pipeline.plan import Plan, validate
from lakehouse.pipeline.records import (
    DatasetRun,
    RunReport,
    close_interrupted,
    run_finished,
    run_started,
)
from lakehouse.pipeline.table_fields import sync_catalog

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.pipeline")

__all__ = ["Runner", "new_keys", "new_run_id", "pipeline_lock", "run_pipeline"]


def run_pipeline(
    lh: Lakehouse,
    pipeline: Pipeline,
    *,
    full_refresh: bool = False,
    select_: list[str] | None = None,
    on_progress: Progress | None = None,
    run_id: str | None = None,
    trigger: str = "manual",
    engine: str | None = None,
    master: str | None = None,
) -> RunReport:
    """Validate and run; raises ``RunFailed`` (after restoring what it wrote) on an error.
    ``run_id`` names the run (one is made up otherwise), e.g. for a caller that started
    the run in another process and must know its id at once. ``trigger`` records what
    started it (manual, schedule, api, airflow, retry). ``engine`` runs every dataset's
    query on duckdb, spark or auto (None: as each dataset, its pipeline or the settings
    say); ``master`` is Spark's (None: the settings')."""
    plan = validate(pipeline, lh, selection=select_, engine=engine)
    if _asks_for_spark(lh, plan, engine, select_):
        from lakehouse.spark.session import preflight

        preflight(lh.settings.spark, master)  # no Java, no master: nothing is written
    return Runner(
        lh,
        plan,
        full_refresh=full_refresh,
        selection=select_,
        on_progress=on_progress,
        engine=engine,
        master=master,
    ).run(run_id, trigger)


def _asks_for_spark(
    lh: Lakehouse, plan: Plan, engine: str | None, selection: list[str] | None
) -> bool:
    """Whether a dataset the run selects is to run on Spark whatever its size."""
    from lakehouse.spark.routing import requested

    pipeline = plan.pipeline
    return any(
        pipeline.datasets[name].sql is not None
        and requested(engine, pipeline.datasets[name], pipeline.name, lh.settings)[0] == "spark"
        for name in select(pipeline, selection)
    )


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Runner:
    def __init__(
        self,
        lh: Lakehouse,
        plan: Plan,
        *,
        full_refresh: bool = False,
        selection: list[str] | None = None,
        on_progress: Progress | None = None,
        engine: str | None = None,
        master: str | None = None,
    ) -> None:
        self.lh = lh
        self.plan = plan
        self.pipeline = plan.pipeline
        self.full_refresh = full_refresh
        self.selected = select(self.pipeline, selection)
        self.selection = " ".join(selection) if selection else None
        self.notify: Progress = on_progress or (lambda *_: None)
        self.context = RunContext(lh, plan, full_refresh, self.notify)
        self.context.engine, self.context.master = engine, master
        # tables written by this run -> (version before, inputs to reset on a rollback)
        self.written = self.context.written

    # -- the run ----------------------------------------------------------------------------
    def run(self, run_id: str | None = None, trigger: str = "manual") -> RunReport:
        run_id = run_id or new_run_id()
        with logcontext.bound(run_id=run_id, pipeline=self.pipeline.name):
            return self._run(run_id, trigger)

    def _run(self, run_id: str, trigger: str) -> RunReport:
        report = RunReport(run_id, self.pipeline.name, datetime.now(UTC), self.full_refresh)
        report.trigger = trigger
        report.selection = self.selection
        report.folder = str(Path(self.pipeline.folder).resolve())
        with pipeline_lock(self.lh, self.pipeline.name):
            close_interrupted(self.lh, self.pipeline.name)
            self._register_leftovers()
            run_started(self.lh, report)
            log.info("run started (%s): %d dataset(s)", trigger, len(self.selected))
            self.notify("run", run_id, {"datasets": self.selected})
            failure: tuple[str, Exception] | None = None
            for name in self.selected:
                ds = self.pipeline.datasets[name]
                item = DatasetRun(name, ds.kind, self.plan.strategy.get(name, ""))
                report.datasets.append(item)
                if failure is not None:
                    item.status = "not run"
                    continue
                self.notify("start", name, {})
                started = time.perf_counter()
                with logcontext.bound(dataset=name, table=name, operation=ds.kind):
                    try:
                        self._record_definition(ds)
                        kind_for(ds).run(self.context, ds, item)
                        sync_catalog(self.lh, ds)
                    except Exception as exc:  # noqa: BLE001 - recorded, rolled back, re-raised
                        item.status, item.error = "failed", _message(exc)
                        failure = (name, exc)
                    item.seconds = time.perf_counter() - started
                    _log_dataset(item)
                self.notify("done", name, {"item": item})
            if failure is not None:
                self._roll_back(report)
                report.status, report.error = "failed", f"{failure[0]}: {_message(failure[1])}"
            else:
                report.status = "succeeded"
                self._record_lineage(report)
            report.ended_at = datetime.now(UTC)
            run_finished(self.lh, report)
            level = logging.INFO if report.status == "succeeded" else logging.ERROR
            log.log(level, "run %s in %.3f s", report.status, report.seconds)
        if failure is not None:
            failed, error = failure
            hint = error.hint if isinstance(error, LakehouseError) else None
            raise RunFailed(run_id, failed, _message(error), hint) from error
        return report

    def _register_leftovers(self) -> None:
        """Tables a killed run committed but did not get to register in the catalog."""
        known = set(self.lh.catalog.names())
        for name in self.selected:
            ds = self.pipeline.datasets[name]
            for table in (ds.name, ds.quarantine):
                if table not in known:
                    self.lh.register_found(table)

    def _record_definition(self, ds: Dataset) -> None:
        """The dataset's table and column edges, from its definition, recorded before its
        rows are written: the pii its columns inherit through them (``lineage/tags.py``)
        masks them from their first version on. Analysed again only when its SQL or the
        columns it reads changed."""
        from lakehouse.lineage import definition_edges

        if not kind_for(ds).lineage:
            return
        job = f"pipeline {self.pipeline.name} / {ds.name}"
        schemas = {
            t: [c["name"] for c in info.columns]
            for t in ds.depends_on
            if (info := self.lh.catalog.get(t)) is not None
        }
        reads = {t: schemas.get(t) for t in sorted(ds.depends_on)}
        fingerprint = hashlib.sha256(
            json.dumps([ds.sql, ds.kind, reads], default=str).encode()
        ).hexdigest()
        if self.lh.catalog.lineage_fingerprints(job).get((job, ds.name)) != fingerprint:
            edges = definition_edges(ds.name, ds.sql, schemas, ds.depends_on)
            self.lh.catalog.record_lineage(
                job, ds.name, edges, operation=ds.kind, fingerprint=fingerprint
            )

    def _record_lineage(self, report: RunReport) -> None:
        """The table edges this run exercised (with the run id), after a successful run."""
        prefix = f"pipeline {self.pipeline.name} / "
        for item in report.datasets:
            ds = self.pipeline.datasets[item.dataset]
            if item.status == "ok" and kind_for(ds).lineage:
                table_edges = [{"source_table": t} for t in ds.depends_on]
                self.lh.catalog.record_lineage(
                    prefix + ds.name, ds.name, table_edges, report.run_id, operation=ds.kind
                )
        from lakehouse.lineage.tags import reanalyse_once

        reanalyse_once(self.lh, self.pipeline)

    def _roll_back(self, report: RunReport) -> None:
        for table, (before, inputs) in self.written.items():
            t = self.context.existing(table)
            if t is None:
                continue
            if t.version != (before if before is not None else 0):
                t.restore(before if before is not None else 0, inputs=inputs, companions=False)
        for item in report.datasets:
            if item.status == "ok" and item.dataset in self.written:
                item.status = "rolled back"


def _log_dataset(item: DatasetRun) -> None:
    if item.status == "failed":
        log.error("dataset failed after %.3f s: %s", item.seconds, item.error)
        return
    log.info(
        "dataset %s in %.3f s: %d rows read, %d written, %d dropped, %d quarantined",
        item.status,
        item.seconds,
        item.rows_read,
        item.rows_written,
        item.rows_dropped,
        item.rows_quarantined,
    )


def _message(exc: Exception) -> str:
    text = exc.message if isinstance(exc, LakehouseError) else str(exc)
    return text if text else type(exc).__name__
