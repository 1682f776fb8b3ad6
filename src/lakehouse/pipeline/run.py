"""Running a pipeline: each dataset in order, each write atomic with the input versions it
was computed from.

Every table a run writes records, in the same Delta commit as its rows, which version of
each input the rows come from. The next run reads that back and processes only what came
after (append and CDC datasets read the rows added since; materialized views are skipped
when no input moved, refreshed by group where the query allows it, recomputed otherwise).
So a run killed at any point leaves each table at a consistent version, and running again
finishes the work: the tables end as an uninterrupted run leaves them. A run that fails
restores every table it wrote, input versions included, to where it was before.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name
from lakehouse.pipeline import cdc, records
from lakehouse.pipeline.definition import Dataset, Pipeline
from lakehouse.pipeline.errors import RunFailed
from lakehouse.pipeline.graph import select
from lakehouse.pipeline.plan import Plan, validate
from lakehouse.pipeline.quality import (
    RESCUED,
    CheckResult,
    Split,
    flag_columns,
    needs_columns,
    q,
    split_rows,
    table_checks,
    with_flags,
)
from lakehouse.pipeline.records import DatasetRun, RunReport
from lakehouse.pipeline.table_fields import sync_catalog
from lakehouse.quoting import typed_literal
from lakehouse.scratch import scratch
from lakehouse.tables.changes import NotAppendOnly
from lakehouse.tables.convert import to_arrow
from lakehouse.tables.handles import open_delta

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

Progress = Callable[[str, str, dict[str, Any]], None]  # event, dataset, details
MAX_REFRESH_KEYS = 2000
# Recorded like an input's version with every write of a dataset: a number made from its
# definition, so a changed definition is seen even when no input moved.
DEFINITION = "lakehouse.definition"
REBUILT = ("materialized_view", "cdc")  # kinds rebuilt from all rows when it changed
READABLE = "readable_record"  # the quality result of a files dataset's ingestion


class ExpectationFailed(LakehouseError):
    pass


def run_pipeline(
    lh: Lakehouse,
    pipeline: Pipeline,
    *,
    full_refresh: bool = False,
    select_: list[str] | None = None,
    on_progress: Progress | None = None,
    run_id: str | None = None,
) -> RunReport:
    """Validate and run; raises ``RunFailed`` (after restoring what it wrote) on an error.
    ``run_id`` names the run (one is made up otherwise), e.g. for a caller that started
    the run in another process and must know its id at once."""
    plan = validate(pipeline, lh, selection=select_)
    return Runner(
        lh, plan, full_refresh=full_refresh, selection=select_, on_progress=on_progress
    ).run(run_id)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


@contextmanager
def pipeline_lock(lh: Lakehouse, name: str) -> Iterator[None]:
    """One run of a pipeline at a time; the kernel releases the lock if the process dies."""
    if not lh.local:
        yield
        return
    path = Path(lh.root) / "_pipelines" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LakehouseError(
                f"pipeline {name} is already running in another process",
                "wait for it to finish (lakehouse runs shows it)",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Runner:
    def __init__(
        self,
        lh: Lakehouse,
        plan: Plan,
        *,
        full_refresh: bool = False,
        selection: list[str] | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        self.lh = lh
        self.plan = plan
        self.pipeline = plan.pipeline
        self.full_refresh = full_refresh
        self.selected = select(self.pipeline, selection)
        self.selection = " ".join(selection) if selection else None
        self.notify = on_progress or (lambda *_: None)
        # tables written by this run -> (version before, inputs to reset on a rollback)
        self.written: dict[str, tuple[int | None, list[str]]] = {}
        self._versions: dict[str, int | None] = {}  # tables' versions as this run sees them
        self._skip_quarantine = False
        self._rebuild: set[str] = set()  # datasets whose definition changed since written

    # -- the run ----------------------------------------------------------------------------
    def run(self, run_id: str | None = None) -> RunReport:
        run_id = run_id or new_run_id()
        report = RunReport(run_id, self.pipeline.name, datetime.now(UTC), self.full_refresh)
        report.selection = self.selection
        report.folder = str(Path(self.pipeline.folder).resolve())
        with pipeline_lock(self.lh, self.pipeline.name):
            records.close_interrupted(self.lh, self.pipeline.name)
            self._register_leftovers()
            records.run_started(self.lh, report)
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
                try:
                    self._record_definition(ds)
                    self._run_dataset(ds, item)
                    sync_catalog(self.lh, ds)
                except Exception as exc:  # noqa: BLE001 - recorded, rolled back, re-raised
                    item.status, item.error = "failed", _message(exc)
                    failure = (name, exc)
                item.seconds = time.perf_counter() - started
                self.notify("done", name, {"item": item})
            if failure is not None:
                self._roll_back(report)
                report.status, report.error = "failed", f"{failure[0]}: {_message(failure[1])}"
            else:
                report.status = "succeeded"
                self._record_lineage(report)
            report.ended_at = datetime.now(UTC)
            records.run_finished(self.lh, report)
        if failure is not None:
            exc = failure[1]
            hint = exc.hint if isinstance(exc, LakehouseError) else None
            raise RunFailed(run_id, failure[0], _message(exc), hint) from exc
        return report

    def _register_leftovers(self) -> None:
        """Tables a killed run committed but did not get to register in the catalog."""
        known = set(self.lh.catalog.names())
        for name in self.selected:
            ds = self.pipeline.datasets[name]
            for table in (ds.name, ds.quarantine):
                if table not in known:
                    self.lh.discover(table)

    def _record_definition(self, ds: Dataset) -> None:
        """The dataset's table and column edges, from its definition, recorded before its
        rows are written: the pii its columns inherit through them (``lineage/tags.py``)
        masks them from their first version on. Analysed again only when its SQL or the
        columns it reads changed."""
        from lakehouse.lineage import definition_edges

        if ds.kind == "files":
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
            if item.status == "ok" and ds.kind != "files":
                table_edges = [{"source_table": t} for t in ds.depends_on]
                self.lh.catalog.record_lineage(
                    prefix + ds.name, ds.name, table_edges, report.run_id, operation=ds.kind
                )
        from lakehouse.lineage.tags import reanalyse_once

        reanalyse_once(self.lh, self.pipeline)

    def _roll_back(self, report: RunReport) -> None:
        for table, (before, inputs) in self.written.items():
            t = self._existing(table)
            if t is None:
                continue
            if t.version != (before if before is not None else 0):
                t.restore(before if before is not None else 0, inputs=inputs, companions=False)
        for item in report.datasets:
            if item.status == "ok" and item.dataset in self.written:
                item.status = "rolled back"

    # -- one dataset ------------------------------------------------------------------------
    def _run_dataset(self, ds: Dataset, item: DatasetRun) -> None:
        if ds.kind == "files":
            self._files(ds, item)
            item.rescued = self._rescued(ds.name, item.version_before, item.version)
            return None
        if ds.kind == "view":
            assert ds.sql is not None
            self.lh.create_view(ds.name, ds.sql, description=ds.options.get("description"))
            item.status = "ok"
            return None
        current = {t: self._version(t) for t in ds.depends_on}
        item.inputs = dict(current)
        target = self._existing(ds.name)
        item.version_before = self._version(ds.name) if target is not None else None
        recorded = target.input_versions([*current, DEFINITION]) if target is not None else {}
        redefined = target is not None and recorded.pop(DEFINITION, None) != definition_number(ds)
        moved = [t for t, v in current.items() if v is None or recorded.get(t) != v]
        if redefined and ds.kind in REBUILT:
            self._rebuild.add(ds.name)
        elif target is not None and not moved and not self.full_refresh:
            item.status, item.version = "unchanged", item.version_before
            return None
        if ds.kind == "materialized_view":
            self._materialized_view(ds, item, current, recorded, target is not None)
        else:
            step = self._append if ds.kind == "append" else self._cdc
            pending = self._pending_quarantine(ds, recorded, current)
            if pending is not None and not self._full(ds) and target is not None:
                # A run stopped between this dataset's quarantine and its table: first the
                # exact range the quarantine holds (not quarantined twice), then the rest.
                self._skip_quarantine = True
                try:
                    step(ds, item, pending, recorded, True)
                finally:
                    self._skip_quarantine = False
                recorded = {**recorded, **pending}
            step(ds, item, current, recorded, target is not None)
            if redefined and not self.full_refresh:
                item.strategy += " (definition changed: it applies to new rows; --full-refresh"
                item.strategy += " recomputes the rows written before)"
        item.status = "ok"
        return None

    def _files(self, ds: Dataset, item: DatasetRun) -> None:
        from lakehouse.ingest.files import ingest_folder

        assert ds.path is not None
        folder = self.pipeline.expand(ds.path, self.lh.root)
        before = self._existing(ds.name)
        quarantine = self._existing(ds.quarantine)
        item.version_before = self._version(ds.name) if before is not None else None
        self._remember(ds.name, before, [])
        self._remember(ds.quarantine, quarantine, [])
        done = ingest_folder(
            self.lh,
            folder,
            ds.name,
            source_system=ds.source_system or f"pipeline:{self.pipeline.name}",
            on_file=lambda path, rows: self.notify("file", ds.name, {"file": str(path)}),
            options=ds.options,
        )
        self._versions.pop(ds.name, None)
        self._versions.pop(ds.quarantine, None)
        item.rows_read = done.rows + done.quarantined
        item.rows_written = done.rows
        item.rows_quarantined = done.quarantined
        if done.files_ingested:  # the records read this run: readable, or quarantined
            item.checks.append(
                CheckResult(
                    READABLE,
                    "readable",
                    "quarantine",
                    done.quarantined == 0,
                    done.quarantined,
                    item.rows_read,
                    f"{done.quarantined} of {item.rows_read} record(s) in "
                    f"{len(done.files_ingested)} new file(s) could not be read; their raw text "
                    f"and reason are in {ds.quarantine}"
                    if done.quarantined
                    else "",
                    done.bad_sample,
                )
            )
        item.version = self._version(ds.name) if self._existing(ds.name) is not None else None
        item.strategy += f" ({len(done.files_ingested)} new file(s))"
        item.status = "ok"

    # -- kinds --------------------------------------------------------------------------------
    def _materialized_view(
        self,
        ds: Dataset,
        item: DatasetRun,
        current: dict[str, int | None],
        recorded: dict[str, int | None],
        exists: bool,
    ) -> None:
        key = self.plan.refresh_keys.get(ds.name)
        if key is not None and exists and not self._full(ds):
            since = recorded.get(key.source)
            until = current[key.source]
            if since is not None and until is not None:
                try:
                    changes = self.lh.engine.changes_view(key.source, since, until)
                except NotAppendOnly:
                    changes = None
                if changes is not None and self._refresh_groups(ds, item, current, key, changes):
                    return
        item.strategy = "computed" if not exists else self._recomputed(ds)
        pins = self._pins(ds, current)
        split = self._compute(ds, pins, item)
        self._table_checks(ds, item, split.kept, None)
        self._write_quarantine(ds, split, current, "overwrite")
        self._write(ds, item, split.kept, current, mode="overwrite")

    def _refresh_groups(
        self, ds: Dataset, item: DatasetRun, current: dict[str, int | None], key: Any, changes: str
    ) -> bool:
        """Recompute the groups the new rows fall in. Groups the view lacks are appended;
        groups it has are replaced (by key, so only when they are few: else False)."""
        con = self.lh.engine.cursor()
        tag = abs(hash((ds.name, current[key.source])))
        groups = f"__lh_groups_{tag}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {groups} AS "
            f"SELECT DISTINCT {key.expression} AS k FROM {changes}"
        )
        target = self.lh.engine.version_view(ds.name, self._version(ds.name) or 0)
        column = q(key.column)
        existing = con.sql(
            f"SELECT DISTINCT {column} FROM {target} WHERE {column} IN (SELECT k FROM {groups})"
        ).to_arrow_table()
        count = con.sql(f"SELECT count(*) FROM {groups}").fetchall()[0][0]
        if existing.num_rows > MAX_REFRESH_KEYS:
            return False
        item.strategy = f"incremental: {count} {key.column} group(s), {existing.num_rows} replaced"
        if count == 0:
            self._write(ds, item, None, current, mode="append")
            return True
        source = self.lh.engine.version_view(key.source, current[key.source] or 0)
        view = f"__lh_rows_{tag}"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source} "
            f"WHERE ({key.expression}) IN (SELECT k FROM {groups})"
        )
        pins = self._pins(ds, current)
        pins[key.source] = view
        split = self._compute(ds, pins, item)
        self._table_checks(ds, item, split.kept, None)
        self._write_quarantine(ds, split, current, "append")
        if existing.num_rows == 0:
            self._write(ds, item, split.kept, current, mode="append")
            return True
        values = existing.column(0).to_pylist()
        con.register("__lh_computed", split.kept)
        try:
            known = _in_predicate(column, values, _literal)
            replacing = con.sql(f"SELECT * FROM __lh_computed WHERE {known}").to_arrow_table()
            adding = con.sql(
                f"SELECT * FROM __lh_computed WHERE NOT coalesce({known}, false)"
            ).to_arrow_table()
        finally:
            con.unregister("__lh_computed")
        predicate = _in_predicate(column, values, _delta_literal)
        # Two commits when groups are both replaced and added; the input versions go with
        # the second, so a crash in between only repeats the work.
        if adding.num_rows:
            self._write(ds, item, replacing, {}, mode="overwrite", predicate=predicate)
            self._write(ds, item, adding, current, mode="append")
        else:
            self._write(ds, item, replacing, current, mode="overwrite", predicate=predicate)
        return True

    def _append(
        self,
        ds: Dataset,
        item: DatasetRun,
        current: dict[str, int | None],
        recorded: dict[str, int | None],
        exists: bool,
    ) -> None:
        full = self._full(ds) or not exists
        pins = self._pins(ds, current)
        if not full:
            for table in ds.streaming_inputs:
                pins[table] = self._changes(ds, table, recorded.get(table), current[table])
        item.strategy = "all input rows" if full else "new input rows"
        split = self._compute(ds, pins, item)
        kept = split.kept
        mode = "overwrite" if full else "append"
        if ds.keys:
            computed = kept.num_rows
            kept, replaced = self._new_keys(ds, kept, exists and not full)
            item.rows_deduplicated += computed - kept.num_rows
            if replaced:
                mode = "merge"
        self._table_checks(ds, item, kept, None if full else ds.name)
        self._write_quarantine(ds, split, current, "overwrite" if full else "append")
        self._write(ds, item, kept, current, mode=mode)

    def _new_keys(
        self, ds: Dataset, batch: pa.Table, against_target: bool
    ) -> tuple[pa.Table, bool]:
        version = (self._version(ds.name) or 0) if against_target else None
        return new_keys(self.lh, ds, batch, version)

    def _cdc(
        self,
        ds: Dataset,
        item: DatasetRun,
        current: dict[str, int | None],
        recorded: dict[str, int | None],
        exists: bool,
    ) -> None:
        full = self._full(ds) or not exists
        pins = self._pins(ds, current)
        con = self.lh.engine.cursor()
        if full:
            item.strategy = "built from all changes" + (
                " (definition changed)" if ds.name in self._rebuild else ""
            )
            split = self._compute(ds, pins, item)
            con.register("__lh_changes", split.kept)
            try:
                sql = (
                    cdc.latest_state(ds, "__lh_changes", False)
                    if ds.scd == 1
                    else cdc.history(ds, "__lh_changes")
                )
                state = con.sql(sql).to_arrow_table()
            finally:
                con.unregister("__lh_changes")
            self._table_checks(ds, item, state, None)
            self._write_quarantine(ds, split, current, "overwrite")
            self._write(ds, item, state, current, mode="overwrite")
            return
        new_pins = dict(pins)
        for table in ds.streaming_inputs:
            new_pins[table] = self._changes(ds, table, recorded.get(table), current[table])
        split = self._compute(ds, new_pins, item)
        keys = ", ".join(q(k) for k in ds.keys)
        con.register("__lh_new", split.kept)
        try:
            touched = con.sql(f"SELECT DISTINCT {keys} FROM __lh_new").to_arrow_table()
        finally:
            con.unregister("__lh_new")
        item.strategy = f"{touched.num_rows} key(s) with new changes"
        self._write_quarantine(ds, split, current, "append")
        if touched.num_rows == 0:
            self._write(ds, item, None, current, mode="append")
            return
        # Every change of the touched keys, new and old, in sequence order.
        flags = flag_columns(ds.expectations)
        good = " AND ".join(c for e, c in flags if e.action in ("drop", "quarantine")) or "true"
        plain = [c for c in self._columns(ds, pins) if not c.startswith("__lh_ok_")]
        assert ds.sql is not None
        con.register("__lh_touched", touched)
        try:
            flagged = with_flags(ds.sql, ds.expectations, plain)
            text, _ = self.lh.engine.prepare(
                f"SELECT {', '.join(q(c) for c in plain)} FROM ({flagged}) AS __lh_all "
                f"WHERE {good} AND ({keys}) IN (SELECT {keys} FROM __lh_touched)",
                pins,
            )
            con.execute(f"CREATE OR REPLACE TEMP TABLE __lh_key_changes AS {text}")
            sql = (
                cdc.latest_state(ds, "__lh_key_changes", True)
                if ds.scd == 1
                else cdc.history(ds, "__lh_key_changes")
            )
            state = con.sql(sql).to_arrow_table()
            con.execute("DROP TABLE __lh_key_changes")
        finally:
            con.unregister("__lh_touched")
        self._table_checks(ds, item, state, None)
        if ds.scd == 1:
            self._write(ds, item, state, current, mode="merge", merge_delete=cdc.DELETED)
        else:
            # A version is one change of its key: its sequence tells it apart (two changes
            # in one transaction share their valid_from time).
            seq = ds.sequence_by
            version = seq if seq and seq in state.column_names else "valid_from"
            self._write(ds, item, state, current, mode="merge", keys=[*ds.keys, version])

    # -- helpers ------------------------------------------------------------------------------
    def _compute(
        self, ds: Dataset, pins: dict[str, str], item: DatasetRun
    ) -> tuple[pa.Table, Split]:
        """The dataset's rows from the pinned inputs, with its row checks applied."""
        item.rows_read += self._rows_in(ds, pins)
        if ds.function is not None:
            from lakehouse.pipeline.python import Context

            produced = ds.function(Context(self.lh, ds, pins))
            table = _as_arrow(produced)
            con = self.lh.engine.cursor()
            con.register("__lh_py_out", table)
            try:
                flagged = with_flags(
                    "SELECT * FROM __lh_py_out", ds.expectations, table.column_names
                )
                batch = self.lh.engine.query(flagged, pins).to_arrow()
            finally:
                con.unregister("__lh_py_out")
        else:
            assert ds.sql is not None
            columns = self._columns(ds, pins) if needs_columns(ds.expectations) else None
            flagged = with_flags(ds.sql, ds.expectations, columns)
            batch = self.lh.engine.query(flagged, pins).to_arrow()
        split = split_rows(batch, ds.expectations)
        item.checks += split.results
        item.rows_dropped += split.dropped
        for name, count in split.dropped_by.items():
            item.dropped_by[name] = item.dropped_by.get(name, 0) + count
        if split.quarantined is not None:
            item.rows_quarantined += split.quarantined.num_rows
        if split.failed:
            raise ExpectationFailed(
                f"{ds.name}: expectation(s) {', '.join(split.failed)} failed "
                f"(action fail); nothing of this run was kept",
                "see lakehouse quality " + ds.name + " for the failing rows",
            )
        return split

    def _table_checks(
        self, ds: Dataset, item: DatasetRun, rows: pa.Table | None, existing: str | None
    ) -> None:
        checks = [e for e in ds.expectations if not e.row_level]
        if not checks or rows is None:
            return
        con = scratch()
        try:
            con.register("__lh_rows", rows)
            relation = "__lh_rows"
            if existing is not None:
                old = self.lh.engine.read(existing)
                con.register("__lh_old", old)
                relation = "(SELECT * FROM __lh_old UNION ALL BY NAME SELECT * FROM __lh_rows)"
            results = table_checks(con, relation, checks)
        finally:
            con.close()
        item.checks += results
        failed = [r.expectation for r in results if not r.passed and r.action == "fail"]
        if failed:
            raise ExpectationFailed(
                f"{ds.name}: expectation(s) {', '.join(failed)} failed (action fail): "
                + "; ".join(r.detail for r in results if r.expectation in failed),
                "nothing of this run was kept; see lakehouse quality " + ds.name,
            )

    def _rescued(self, table: str, before: int | None, after: int | None) -> dict[str, int]:
        """Values rescued (kept in ``_rescued_data``, the column left NULL) per column, in
        the rows ``table`` gained from version ``before`` to ``after``."""
        if after is None or after == before or RESCUED not in self.lh.table(table).schema.names:
            return {}
        rows = self._changes(self.pipeline.datasets[table], table, before, after)
        column = q(RESCUED)
        found = self.lh.engine.cursor().sql(
            f"SELECT key, count(*) FROM (SELECT unnest(json_keys({column})) AS key FROM {rows} "
            f"WHERE {column} IS NOT NULL AND {column} NOT IN ('', '{{}}')) GROUP BY key"
        )
        return {key: int(n) for key, n in sorted(found.fetchall())}

    def _pending_quarantine(
        self, ds: Dataset, recorded: dict[str, int | None], current: dict[str, int | None]
    ) -> dict[str, int | None] | None:
        """Input versions the quarantine has recorded beyond the table's, if any."""
        quarantine = self._existing(ds.quarantine)
        if quarantine is None:
            return None
        ahead = quarantine.input_versions(list(current))
        streams = ds.streaming_inputs
        if not any(
            ahead.get(t) is not None
            and recorded.get(t) is not None
            and recorded[t] < ahead[t] <= (current.get(t) or -1)  # type: ignore[operator]
            for t in streams
        ):
            return None
        return {t: (ahead[t] if t in streams else v) for t, v in current.items()}

    def _write_quarantine(self, ds: Dataset, split: Split, current: dict, mode: str) -> None:
        if split.quarantined is None or self._skip_quarantine:
            return
        if split.quarantined.num_rows == 0 and mode == "append":
            return
        self._remember(ds.quarantine, self._existing(ds.quarantine), list(current))
        self._versions.pop(ds.quarantine, None)
        self.lh.write(
            ds.quarantine,
            split.quarantined,
            mode=mode,  # type: ignore[arg-type]
            evolve=True,
            input_versions={t: v for t, v in current.items() if v is not None},
            description=f"Rows of {ds.name} that failed a quarantine expectation",
        )

    def _write(
        self,
        ds: Dataset,
        item: DatasetRun,
        rows: pa.Table | None,
        current: dict[str, int | None],
        *,
        mode: str,
        predicate: str | None = None,
        keys: list[str] | None = None,
        merge_delete: str | None = None,
    ) -> None:
        target = self._existing(ds.name)
        self._remember(ds.name, target, [*current, ds.quarantine])
        if rows is None:  # nothing new: record that the inputs were seen
            rows = self.lh.engine.query(f"SELECT * FROM {ds.name} LIMIT 0").to_arrow()
        options = {k: v for k, v in ds.options.items() if k != "keys"}
        marks = {t: v for t, v in current.items() if v is not None}
        marks[DEFINITION] = definition_number(ds)
        if current:
            # The quarantine's version these rows go with (written just before; -1: none
            # yet), so a restore of the table takes its quarantine back to it.
            quarantine = self._existing(ds.quarantine)
            if quarantine is not None:
                marks[ds.quarantine] = self._version(ds.quarantine) or 0
            elif any(e.action == "quarantine" for e in ds.expectations):
                marks[ds.quarantine] = -1
        result = self.lh.write(
            ds.name,
            rows,
            mode=mode,  # type: ignore[arg-type]
            keys=keys or ds.keys or None,
            predicate=predicate,
            evolve=True,
            input_versions=marks,
            merge_delete=merge_delete,
            **options,
        )
        item.rows_written += result.rows if mode != "merge" else result.inserted + result.updated
        item.version = result.version
        self._versions[ds.name] = result.version

    def _full(self, ds: Dataset) -> bool:
        """Whether the dataset is computed from all of its input's rows this run."""
        return self.full_refresh or ds.name in self._rebuild

    def _recomputed(self, ds: Dataset) -> str:
        return "recomputed" + (" (definition changed)" if ds.name in self._rebuild else "")

    def _remember(self, table: str, existing: Any, inputs: list[str]) -> None:
        if table not in self.written:
            self.written[table] = (self._version(table) if existing is not None else None, inputs)

    def _changes(self, ds: Dataset, table: str, since: int | None, until: int | None) -> str:
        assert until is not None
        if since is None:
            return self.lh.engine.version_view(table, until)
        try:
            return self.lh.engine.changes_view(table, since, until)
        except NotAppendOnly as exc:
            raise LakehouseError(
                f"{ds.name} reads the new rows of {table}, but {exc}",
                f"rebuild it from all rows: lakehouse run ... --full-refresh --select {ds.name}+",
            ) from exc

    def _pins(self, ds: Dataset, current: dict[str, int | None]) -> dict[str, str]:
        return {t: self.lh.engine.version_view(t, v) for t, v in current.items() if v is not None}

    def _columns(self, ds: Dataset, pins: dict[str, str]) -> list[str]:
        assert ds.sql is not None
        return self.lh.engine.query(f"SELECT * FROM ({ds.sql}) AS __lh LIMIT 0", pins).columns

    def _rows_in(self, ds: Dataset, pins: dict[str, str]) -> int:
        return sum(self.lh.engine.row_count(pins[t]) for t in ds.inputs if t in pins)

    def _existing(self, name: str) -> Any:
        if not self.lh.exists(name):
            return None
        return self.lh.table(name)

    def _version(self, name: str) -> int | None:
        """A table's version, read once per run unless the run writes the table (a view has
        none)."""
        if name not in self._versions:
            info = self.lh.catalog.get(name)
            if info is not None and info.format == "view":
                self._versions[name] = None
            else:
                dt = open_delta(self.lh, parse_table_name(name))
                self._versions[name] = dt.version() if dt is not None else None
        return self._versions[name]


def new_keys(
    lh: Lakehouse, ds: Dataset, batch: pa.Table, target_version: int | None
) -> tuple[pa.Table, bool]:
    """One row per key (the latest by ``sequence_by``), minus keys the table has, at
    ``target_version`` (None: not compared with the table), with an equal or newer sequence.
    Returns the rows and whether some replace existing ones."""
    keys = ", ".join(q(k) for k in ds.keys)
    order = f"{q(ds.sequence_by)} DESC" if ds.sequence_by else keys
    con = lh.engine.cursor()
    con.register("__lh_batch", batch)
    try:
        deduped = (
            f"SELECT * FROM __lh_batch QUALIFY row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY {order}) = 1"
        )
        if target_version is None:
            return con.sql(deduped).to_arrow_table(), False
        target = lh.engine.version_view(ds.name, target_version)
        on = " AND ".join(f"b.{q(k)} IS NOT DISTINCT FROM t.{q(k)}" for k in ds.keys)
        if ds.sequence_by:
            seq = q(ds.sequence_by)
            newer = (
                f"SELECT b.* FROM ({deduped}) b LEFT JOIN {target} t ON {on} "
                f"WHERE t.{q(ds.keys[0])} IS NULL OR b.{seq} > t.{seq}"
            )
            rows = con.sql(newer).to_arrow_table()
            cols = ", ".join(f"t.{q(k)}" for k in ds.keys)
            replaced = con.sql(
                f"SELECT count(*) FROM ({deduped}) b "
                f"JOIN (SELECT {cols}, {seq} FROM {target} t) t ON {on} WHERE b.{seq} > t.{seq}"
            ).fetchall()[0][0]
            return rows, replaced > 0
        cols = ", ".join(q(k) for k in ds.keys)
        rows = con.sql(
            f"SELECT b.* FROM ({deduped}) b ANTI JOIN (SELECT {cols} FROM {target}) t ON {on}"
        ).to_arrow_table()
        return rows, False
    finally:
        con.unregister("__lh_batch")


def definition_number(ds: Dataset) -> int:
    """A number for what a dataset's rows depend on besides its inputs: its query (or
    function), kind, keys, change settings and row checks. Recorded with each write of the
    dataset, so a run sees an edited definition; comments and spacing do not count."""
    import inspect

    body: str | None = ds.sql
    if ds.function is not None:
        try:
            body = inspect.getsource(ds.function)
        except (OSError, TypeError):
            body = f"{ds.function.__module__}.{ds.function.__qualname__}"
    elif body is not None:
        import sqlglot

        try:
            body = sqlglot.transpile(body, read="duckdb", write="duckdb", comments=False)[0]
        except sqlglot.errors.SqlglotError:
            pass
    checks = [(e.name, e.check, e.action, e.sql, repr(e.params)) for e in ds.expectations]
    settings = [ds.kind, ds.keys, ds.scd, ds.sequence_by, ds.delete_when, ds.valid_time]
    text = json.dumps([body, settings, ds.except_columns, checks], default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:13], 16)


def _as_arrow(produced: Any) -> pa.Table:
    from lakehouse.sql.result import Result

    if isinstance(produced, Result):
        return produced.to_arrow()
    if isinstance(produced, duckdb.DuckDBPyRelation):
        return produced.to_arrow_table()
    data = to_arrow(produced)
    return data.read_all() if isinstance(data, pa.RecordBatchReader) else data


def _in_predicate(column: str, values: list[Any], render: Callable[[Any], str]) -> str:
    """``column`` is one of ``values`` (NULL included), literals written by ``render``."""
    present = [render(v) for v in values if v is not None]
    terms = [f"{column} IN ({', '.join(present)})"] if present else []
    if None in values:
        terms.append(f"{column} IS NULL")
    return " OR ".join(terms)


_literal = typed_literal


def _delta_literal(value: Any) -> str:
    """A literal for a Delta predicate (DataFusion reads ISO text into dates and times)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return "'" + value.replace(tzinfo=None).isoformat() + "Z'"
        return "'" + value.isoformat() + "'"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text.replace("'", "''") + "'"


def _message(exc: Exception) -> str:
    text = exc.message if isinstance(exc, LakehouseError) else str(exc)
    return text if text else type(exc).__name__
