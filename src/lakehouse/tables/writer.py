"""The one write path: every table write goes through ``write_table``.

It turns the data into Arrow fit for the table format, fits it to the table's schema,
adds the bronze metadata columns and derived partition columns (``prepared.py``), commits
with one of the format's write strategies with retries on conflicts, and then registers
the table and its new figures in the catalog (``registration.py``).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pyarrow as pa
from deltalake.exceptions import CommitFailedError, DeltaError

import lakehouse.logcontext as logcontext
from lakehouse.config import TableOptions, options_for
from lakehouse.errors import (
    ConcurrentWriteError,
    ConstraintViolationError,
    InvalidDataError,
    LakehouseError,
)
from lakehouse.names import TableName
from lakehouse.storage import Storage
from lakehouse.tables.commits import Txn, input_mark, marks, txn_list
from lakehouse.tables.convert import to_arrow
from lakehouse.tables.format import CommitConflict, TableFormat, WriteJob, Written
from lakehouse.tables.formats import format_of, named
from lakehouse.tables.handles import Handles, open_delta
from lakehouse.tables.observers import WriteEvent, written
from lakehouse.tables.options import options_from_catalog
from lakehouse.tables.prepared import METADATA_COLUMNS, Prepared
from lakehouse.tables.registration import after_commit, register_found
from lakehouse.tables.schema import plan_schema, type_name
from lakehouse.tables.staged import StagedFiles, same_columns
from lakehouse.tables.upsert import COMBINE
from lakehouse.tables.write_lock import writing

__all__ = [
    # Imported from here by other packages: the modules that define them are named below.
    "METADATA_COLUMNS",  # prepared.py
    "Handles",  # handles.py
    "input_mark",  # commits.py
    "open_delta",  # handles.py
    "Txn",
    "WriteMode",
    "WriteResult",
    "write_table",
]

WriteMode = Literal["append", "overwrite", "merge"]
MAX_ATTEMPTS = 12
log = logging.getLogger("lakehouse.write")


@dataclass
class WriteResult:
    table: str
    mode: str
    version: int
    rows: int
    seconds: float
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    schema_changes: list[str] = field(default_factory=list)
    skipped: bool = False  # the write's transaction id was committed before: nothing done


def write_table(
    storage: Storage,
    name: TableName,
    data: Any,
    *,
    mode: WriteMode = "append",
    keys: list[str] | None = None,
    predicate: str | None = None,
    evolve: bool = False,
    options: TableOptions | None = None,
    source_system: str | None = None,
    source: str | None = None,
    txn: Txn | None = None,
    input_versions: dict[str, int] | None = None,
    merge_delete: str | None = None,
    merge_combine: dict[str, str] | None = None,
) -> WriteResult:
    """``txn=(app_id, n)`` makes the write idempotent: it commits together with that
    transaction identifier, and is skipped if the table already holds ``n`` (or a later
    number) for ``app_id``, so a source that crashed between its write and its own
    bookkeeping can simply write again. A list of them (one per Kafka partition, say)
    commits them all; the write is skipped when the table holds every one.

    ``input_versions={"bronze.events": 7}`` records, in the same commit, which version of
    each input the rows were computed from (read back with ``Table.input_versions``):
    pipelines use it to process only input that arrived since, whatever crashed when.

    ``merge_delete`` names a boolean column of a merge's data: rows where it is true delete
    the row with their key instead of upserting it; the column itself is not stored.

    ``merge_combine={"events": "sum", "last_at": "max"}`` makes a merge combine a matched
    row's value with the incoming one instead of replacing it (``sum``, ``min`` or
    ``max``): a running count can then be upserted from increments, and a conflicting
    writer's retry combines with what that writer committed."""
    if mode not in ("append", "overwrite", "merge"):
        raise LakehouseError(
            f"unknown write mode {mode!r}", "use mode='append', 'overwrite' or 'merge'"
        )
    if mode == "merge" and not keys:
        raise LakehouseError(f"{name}: mode='merge' needs keys", "e.g. keys=['user_id']")
    if predicate is not None and mode != "overwrite":
        raise LakehouseError(f"{name}: predicate= goes with mode='overwrite'")
    for column, how in (merge_combine or {}).items():
        if mode != "merge" or how not in COMBINE:
            raise LakehouseError(
                f"{name}: cannot combine {column!r} with {how!r}",
                f"merge_combine goes with mode='merge'; use one of {', '.join(COMBINE)}",
            )
    with logcontext.bound(table=str(name), operation=mode):
        result = _write(
            storage,
            name,
            data,
            mode,
            keys,
            predicate,
            evolve,
            options,
            source_system,
            source,
            txn,
            input_versions,
            merge_delete,
            merge_combine,
        )
        if result.skipped:
            log.debug("%s: already holds this write's transaction, skipped", name)
        else:
            log.debug("%s: %s of %d rows, version %d", name, mode, result.rows, result.version)
            written(WriteEvent(str(name), mode, result.rows, result.seconds))
    return result


def _write(
    storage: Storage,
    name: TableName,
    data: Any,
    mode: WriteMode,
    keys: list[str] | None,
    predicate: str | None,
    evolve: bool,
    options: TableOptions | None,
    source_system: str | None,
    source: str | None,
    txn: Txn | None,
    input_versions: dict[str, int] | None,
    merge_delete: str | None,
    merge_combine: dict[str, str] | None,
) -> WriteResult:
    started = time.perf_counter()
    if isinstance(data, StagedFiles):
        committed = _commit_staged(storage, name, data, mode, predicate, txn, input_versions)
        if committed is not None:
            committed.seconds = time.perf_counter() - started
            return committed
        staged, data = data, data.read()
        staged.discard()
    arrow = to_arrow(data)
    info = storage.catalog.get(str(name))
    if info is None and register_found(storage, str(name)):
        info = storage.catalog.get(str(name))  # left unregistered by a killed writer
    if info is not None:
        opts = TableOptions(**options_from_catalog(info.options))
    else:
        opts = options_for(name.layer, options, storage.layer_defaults)
    if mode == "merge" and keys and not opts.keys:
        opts = replace(opts, keys=tuple(keys))
    stream = isinstance(arrow, pa.RecordBatchReader)
    flag = None
    if merge_delete is not None:
        if mode != "merge" or merge_delete not in arrow.schema.names:
            raise LakehouseError(f"{name}: merge_delete names a column of the data to merge")
        if isinstance(arrow, pa.RecordBatchReader):
            arrow = arrow.read_all()
        flag = arrow.select([merge_delete]).column(0)
        arrow = arrow.drop_columns([merge_delete])
    missing = [c for c in merge_combine or {} if c not in arrow.schema.names]
    if missing:
        raise LakehouseError(f"{name}: merge_combine names {missing[0]!r}, not in the data")
    prepared = Prepared(name, arrow, opts, source_system, source)
    prepared.delete_flag = flag
    prepared.combine = dict(merge_combine or {})

    for attempt in range(MAX_ATTEMPTS):
        dt = None
        try:
            with writing(storage, name):  # waits while the table is converted
                fmt = format_of(storage, name)
                dt = fmt.open(storage, name)
                if dt is None:
                    fmt = named(opts.format)
                result = _write_once(
                    storage,
                    name,
                    fmt,
                    dt,
                    prepared,
                    mode,
                    keys,
                    predicate,
                    evolve,
                    opts,
                    txn,
                    input_versions,
                )
            break
        except (CommitFailedError, CommitConflict) as exc:
            if stream or attempt == MAX_ATTEMPTS - 1:
                raise ConcurrentWriteError(
                    f"{name}: {mode} kept conflicting with concurrent writers ({exc})",
                    "retry the write; if it keeps failing, write from one process at a time",
                ) from exc
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        except DeltaError as exc:
            raise _translate(name, exc, dt) from exc
    result.seconds = time.perf_counter() - started
    return result


def _commit_staged(
    storage: Storage,
    name: TableName,
    staged: StagedFiles,
    mode: WriteMode,
    predicate: str | None,
    txn: Txn | None,
    input_versions: dict[str, int] | None,
) -> WriteResult | None:
    """Commit files written into the table's folder as they are: for a whole append or
    overwrite of an existing local Delta table whose columns they hold, partitioned as
    they are (None: not such a write, the files are to be read and written as data)."""
    from lakehouse.tables import parallel

    info = storage.catalog.get(str(name))
    if not storage.local or mode == "merge" or predicate is not None or info is None:
        return None
    opts = TableOptions(**options_from_catalog(info.options))
    given = txn_list(txn)
    for attempt in range(MAX_ATTEMPTS):
        fmt = format_of(storage, name)
        dt = fmt.open(storage, name)
        if fmt.name != "delta" or dt is None:
            return None
        if sorted(dt.metadata().partition_columns) != sorted(staged.partition_columns):
            return None
        schema = fmt.schema(dt)
        if not same_columns(schema, staged.schema):
            return None
        if given and all(_holds(fmt, dt, app, n) for app, n in given):
            staged.discard()
            return WriteResult(str(name), mode, fmt.version(dt), 0, 0.0, skipped=True)
        commit = fmt.commit(mode, marks(given, input_versions), max_retries=100)
        try:
            version, rows = parallel.commit_files(
                dt,
                list(staged.paths),
                schema,
                mode=mode,
                commit=commit,
                partitions=[staged.partition_values(p) for p in staged.paths],
            )
        except (CommitFailedError, CommitConflict) as exc:
            if attempt == MAX_ATTEMPTS - 1:
                raise ConcurrentWriteError(
                    f"{name}: {mode} kept conflicting with concurrent writers ({exc})",
                    "retry the write; if it keeps failing, write from one process at a time",
                ) from exc
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
            continue
        after_commit(storage, name, fmt.refresh(dt), opts)
        return WriteResult(str(name), mode, version, rows, 0.0)
    return None


def _write_once(
    storage: Storage,
    name: TableName,
    fmt: TableFormat[Any, Any],
    dt: Any,
    prepared: Prepared,
    mode: WriteMode,
    keys: list[str] | None,
    predicate: str | None,
    evolve: bool,
    opts: TableOptions,
    txn: Txn | None = None,
    input_versions: dict[str, int] | None = None,
) -> WriteResult:
    given = txn_list(txn)
    if given and dt is not None and all(_holds(fmt, dt, app, n) for app, n in given):
        return WriteResult(str(name), mode, fmt.version(dt), 0, 0.0, skipped=True)
    if dt is None:
        dt = fmt.create(storage, name, plan_schema(str(name), None, prepared.schema, evolve), opts)
    plan = plan_schema(str(name), fmt.schema(dt), prepared.schema, evolve)
    if keys:
        missing = [k for k in keys if k not in plan.target.names]
        if missing:
            raise LakehouseError(
                f"{name}: merge key column(s) {', '.join(missing)} not in the data",
                f"the columns are {', '.join(plan.target.names)}",
            )
    changes: list[str] = []
    if plan.widened:
        fmt.evolve(dt, plan, opts)
        changes += [f"widened {c} to {type_name(t)}" for c, t in plan.widened.items()]
        dt = fmt.open(storage, name)
        assert dt is not None
    changes += [f"added column {c}" for c in plan.new_columns]
    commit = fmt.commit(mode, marks(given, input_versions), max_retries=100)
    job = WriteJob(dt, prepared, plan, opts, commit, storage.local)
    written = _strategy(fmt, job, mode, keys, predicate)
    dt = fmt.refresh(dt)  # to the newest version: this commit, or one after it
    after_commit(storage, name, dt, opts, change="; ".join(changes) or None)
    return WriteResult(
        table=str(name),
        mode=mode,
        version=written.version,
        rows=prepared.rows,
        seconds=0.0,
        inserted=written.inserted,
        updated=written.updated,
        deleted=written.deleted,
        schema_changes=changes,
    )


def _holds(fmt: TableFormat[Any, Any], handle: Any, app_id: str, n: int) -> bool:
    """Whether the table holds transaction number ``n`` (or a later one) for ``app_id``."""
    done = fmt.transaction_version(handle, app_id)
    return done is not None and bool(done >= n)


def _strategy(
    fmt: TableFormat[Any, Any],
    job: WriteJob[Any, Any],
    mode: WriteMode,
    keys: list[str] | None,
    predicate: str | None,
) -> Written:
    """The write strategy for ``mode``: append, overwrite, replace where, or merge."""
    if mode == "merge":
        assert keys is not None
        return fmt.merge(job, keys)
    if predicate is not None:
        return fmt.replace_where(job, predicate)
    if mode == "overwrite":
        return fmt.overwrite(job)
    return fmt.append(job)


def _translate(name: TableName, exc: DeltaError, dt: Any) -> LakehouseError:
    text = str(exc)
    lowered = text.lower()
    if "failed validation check" in lowered or "invariant" in lowered:
        config = dt.metadata().configuration if dt is not None else {}
        checks = [
            f"{k.removeprefix('delta.constraints.')} ({v})"
            for k, v in config.items()
            if k.startswith("delta.constraints.")
        ]
        rules = "; the table's constraints: " + ", ".join(checks) if checks else ""
        return ConstraintViolationError(
            f"{name}: the write breaks a constraint of the table{rules}\n{text}",
            "fix or filter the offending rows; nothing was committed",
        )
    if "matched a target row with multiple source rows" in lowered:
        return InvalidDataError(f"{name}: {text}")
    return LakehouseError(f"{name}: write failed: {text}", "nothing was committed")
