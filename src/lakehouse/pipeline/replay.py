"""Replaying quarantined rows after a fix.

The rows of ``<table>_quarantine`` (at version q) go through the dataset's expectations as
they are now. Each row ends in exactly one place: the table (rows that pass), the quarantine
(rows that still fail a quarantine check), or counted by name as dropped (rows that fail a
drop check) or de-duplicated (a row whose key the table holds). A replay is recorded as a
run of kind ``replay`` in ``system.pipeline_runs`` and ``system.dataset_runs``.

Exactly once: the table's write carries ``lakehouse.replay:<quarantine>`` = q, the
quarantine's rewrite ``lakehouse.replayed`` = q. A replay killed between the two leaves
the table ahead of the quarantine; the next replay finishes that one first, computing
the same split from the same versions (the quarantine at q, the table before its replay
commit), so rows never stay in both tables or in neither. Rows quarantined by runs since
then stay in the quarantine for the next replay.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.pipeline import records
from lakehouse.pipeline.definition import Dataset, Pipeline
from lakehouse.pipeline.graph import resolve
from lakehouse.pipeline.quality import split_rows, with_flags
from lakehouse.pipeline.records import DatasetRun, RunReport
from lakehouse.tables.format import NotAppendOnly
from lakehouse.tables.table import REPLAYED, replay_mark

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def replay_quarantine(
    lh: Lakehouse, pipeline: Pipeline, table: str, run_id: str | None = None
) -> dict[str, Any]:
    """Replay ``table``'s quarantined rows; returns the replay's figures (``replayed`` rows
    read, ``written``, ``still_failing``, ``dropped`` and ``dropped_by`` expectation,
    ``deduplicated``) and its ``run_id``."""
    from lakehouse.pipeline.run import new_run_id, pipeline_lock

    name = resolve(pipeline, table)
    ds = pipeline.datasets[name]
    if ds.kind != "append":
        raise LakehouseError(
            f"{name} is a {ds.kind}: only append datasets keep quarantined rows to replay",
            "materialized views and CDC tables are recomputed: fix the check and run again",
        )
    report = RunReport(run_id or new_run_id(), pipeline.name, datetime.now(UTC), kind="replay")
    report.selection = name
    report.folder = str(Path(pipeline.folder).resolve())
    item = DatasetRun(name, ds.kind, f"replay of {ds.quarantine}")
    report.datasets.append(item)
    if not lh.exists(ds.quarantine):
        return _figures(item, None)
    with pipeline_lock(lh, pipeline.name):
        records.close_interrupted(lh, pipeline.name)
        records.run_started(lh, report)
        started = time.perf_counter()
        try:
            _replay(lh, ds, item)
            item.status, report.status = "ok", "succeeded"
        except Exception as exc:
            item.status, report.status = "failed", "failed"
            item.error = report.error = exc.message if isinstance(exc, LakehouseError) else str(exc)
            raise
        finally:
            item.seconds = time.perf_counter() - started
            report.ended_at = datetime.now(UTC)
            records.run_finished(lh, report)
    return _figures(item, report.run_id)


def _figures(item: DatasetRun, run_id: str | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "replayed": item.rows_read,
        "written": item.rows_written,
        "still_failing": item.rows_quarantined,
        "dropped": item.rows_dropped,
        "dropped_by": dict(item.dropped_by),
        "deduplicated": item.rows_deduplicated,
    }


def _replay(lh: Lakehouse, ds: Dataset, item: DatasetRun) -> None:
    from lakehouse.pipeline.run import new_keys

    quarantine = lh.table(ds.quarantine)
    target = lh.table(ds.name) if lh.exists(ds.name) else None
    latest = quarantine.version
    mark = replay_mark(ds.quarantine)
    finished = _txn(quarantine.transaction_version(REPLAYED))
    written = _txn(target.transaction_version(mark)) if target is not None else None
    q, base, later = latest, target.version if target is not None else None, None
    if written is not None and (finished is None or finished < written) and written <= latest:
        # A replay of version ``written`` wrote the table but not the quarantine: finish it
        # from the same versions, keeping the rows runs quarantined since.
        try:
            later = _rows_since(lh, ds.quarantine, written, latest)
        except NotAppendOnly:
            later = None  # the quarantine was rewritten since (a full refresh): replay anew
        else:
            assert target is not None
            q, base = written, _version_before(target, mark, written)
            item.strategy += f" version {q} (finishing an interrupted replay)"
    if later is None:
        item.strategy += f" version {q}"
    rows = lh.engine.read(ds.quarantine, q)
    if "_failed_expectations" in rows.column_names:
        rows = rows.drop_columns(["_failed_expectations"])
    item.inputs = {ds.quarantine: q}
    item.version_before = target.version if target is not None else None
    item.version = item.version_before
    item.rows_read = rows.num_rows
    if rows.num_rows == 0:
        return
    con = lh.engine.cursor()
    con.register("__lh_replay", rows)
    try:
        checks = with_flags("SELECT * FROM __lh_replay", ds.expectations, rows.column_names)
        flagged = lh.engine.query(checks)
        split = split_rows(flagged.to_arrow(), ds.expectations)
    finally:
        con.unregister("__lh_replay")
    # The checks' results stay those of the runs (the quality score is about the data a
    # run processed); what the replay did is in its figures, drops by expectation included.
    item.rows_dropped, item.dropped_by = split.dropped, dict(split.dropped_by)
    if split.failed:
        raise LakehouseError(
            f"{ds.name}: replayed rows fail {', '.join(split.failed)} (action fail)",
            "nothing was replayed; fix the rows' check and replay again",
        )
    kept, replaced = split.kept, False
    if ds.keys:
        kept, replaced = new_keys(lh, ds, kept, base)
        item.rows_deduplicated = split.kept.num_rows - kept.num_rows
    item.rows_written = kept.num_rows
    # Written even without rows: the table then holds the replay mark (a restore matches
    # its quarantine by it). Skipped by the writer if an interrupted replay of q wrote it.
    options = {k: v for k, v in ds.options.items() if k != "keys"}
    result = lh.write(
        ds.name,
        kept,
        mode="merge" if replaced else "append",
        keys=ds.keys or None,
        evolve=True,
        txn=(mark, q),
        **options,
    )
    item.version = result.version if not result.skipped else item.version
    still = split.quarantined if split.quarantined is not None else rows.slice(0, 0)
    item.rows_quarantined = still.num_rows
    if later is not None and later.num_rows:
        still = pa.concat_tables([still, later], promote_options="permissive")
    lh.write(ds.quarantine, still, mode="overwrite", evolve=True, txn=(REPLAYED, q))


def _txn(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def _rows_since(lh: Lakehouse, table: str, since: int, until: int) -> pa.Table:
    """The rows ``table`` gained after version ``since`` (raises ``NotAppendOnly`` if a
    commit in between removed rows)."""
    if until == since:
        return pa.table({})
    view = lh.engine.changes_view(table, since, until)
    return lh.engine.cursor().sql(f"SELECT * FROM {view}").to_arrow_table()


def _version_before(target: Any, mark: str, n: int) -> int:
    """The table's version just before the commit that recorded ``mark`` = ``n``."""
    version: int = target.version
    while version > 0:
        held = target.format.transactions_at(target.storage, target.name, version - 1, [mark])
        if held is None or _txn(held[mark]) != n:
            return version - 1
        version -= 1
    return 0
