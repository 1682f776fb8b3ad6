"""Delta's write strategies, each its own function: append, overwrite, replace where
(an overwrite of the rows a predicate matches) and merge; and the commits around them:
a table's creation and the widening of its column types."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake

from lakehouse.config import TableOptions
from lakehouse.names import TableName
from lakehouse.quoting import delta_ident
from lakehouse.storage import Storage
from lakehouse.tables import parallel
from lakehouse.tables.commits import commit_properties
from lakehouse.tables.convert import cast_batch
from lakehouse.tables.encoding import TARGET_FILE_BYTES, aligned, head_of, writer_properties
from lakehouse.tables.format import WriteJob, Written
from lakehouse.tables.handles import open_delta
from lakehouse.tables.options import options_dict
from lakehouse.tables.schema import SchemaPlan
from lakehouse.tables.upsert import COMBINE, last_per_key

_q = delta_ident


DeltaJob = WriteJob[DeltaTable, CommitProperties]


def append(job: DeltaJob) -> Written:
    return _whole(job, "append")


def overwrite(job: DeltaJob) -> Written:
    return _whole(job, "overwrite")


def replace_where(job: DeltaJob, predicate: str) -> Written:
    """Overwrite the rows matching ``predicate`` with the data."""
    return _streamed(job, "overwrite", predicate)


def _whole(job: DeltaJob, mode: Literal["append", "overwrite"]) -> Written:
    """An append or overwrite of the whole table: a large in-memory table with no new
    columns is written file by file in parallel (``parallel.py``), the rest streamed."""
    arrow = job.prepared.arrow
    if (
        not job.plan.new_columns
        and isinstance(arrow, pa.Table)
        and parallel.eligible(job.handle, arrow.num_rows, job.local)
    ):
        target = job.plan.target
        table = pa.Table.from_batches(job.prepared.batches(target), target)
        properties = writer_properties(job.opts.compression, table)
        version = parallel.write_files(
            job.handle, table, mode=mode, properties=properties, commit=job.commit
        )
        return Written(version)
    return _streamed(job, mode, None)


def _streamed(
    job: DeltaJob, mode: Literal["append", "overwrite"], predicate: str | None
) -> Written:
    target = job.plan.target
    head, batches = head_of(aligned(job.prepared.batches(target)), target)
    reader = pa.RecordBatchReader.from_batches(target, batches)
    options: dict[str, Any] = dict(
        schema_mode="merge" if job.plan.new_columns else None,
        target_file_size=TARGET_FILE_BYTES,
        writer_properties=writer_properties(job.opts.compression, head),
        commit_properties=job.commit,
    )
    if mode == "append":
        write_deltalake(job.handle, reader, mode="append", **options)
    else:
        write_deltalake(job.handle, reader, mode="overwrite", predicate=predicate, **options)
    return Written(job.handle.version())  # the handle moves to the version its own commit made


def merge(job: DeltaJob, keys: list[str]) -> Written:
    """Upsert on ``keys``: matched rows updated (or combined, or deleted by the data's
    delete flag), the others inserted."""
    prepared, dt = job.prepared, job.handle
    source_schema = pa.schema([f for f in job.plan.target if f.name in prepared.schema.names])
    source = pa.Table.from_batches(list(prepared.batches(source_schema)), source_schema)
    columns = {_q(c): f"s.{_q(c)}" for c in source.schema.names}
    updates = dict(columns)
    for column, how in prepared.combine.items():
        updates[_q(column)] = COMBINE[how].format(t=f"t.{_q(column)}", s=f"s.{_q(column)}")
    keep = None
    if prepared.delete_flag is not None:
        source = source.append_column("__lh_delete", prepared.delete_flag)
        keep = "NOT s.__lh_delete"
    source = last_per_key(source, keys)
    # A NULL key matches a NULL key, as in the source's last-per-key above and in the
    # pipelines' de-duplication: a row with a NULL key part is upserted, not added again.
    on = " AND ".join(f"(t.{_q(k)} IS NOT DISTINCT FROM s.{_q(k)})" for k in keys)
    merger = dt.merge(
        source,
        predicate=on,
        source_alias="s",
        target_alias="t",
        merge_schema=bool(job.plan.new_columns),
        writer_properties=writer_properties(job.opts.compression, source),
        commit_properties=job.commit,
    )
    if keep is not None:
        merger = merger.when_matched_delete(predicate="s.__lh_delete")
    metrics = (
        merger.when_matched_update(updates=updates, predicate=keep)
        .when_not_matched_insert(updates=columns, predicate=keep)
        .execute()
    )
    return Written(
        dt.version(),
        inserted=int(metrics.get("num_target_rows_inserted", 0)),
        updated=int(metrics.get("num_target_rows_updated", 0)),
        deleted=int(metrics.get("num_target_rows_deleted", 0)),
    )


def widen(
    dt: DeltaTable,
    plan: SchemaPlan,
    properties: WriterProperties,
) -> None:
    """Widen column types by rewriting the table's data in one commit (delta-rs has no
    in-place type widening). Readers see the old version until the commit lands."""
    current = pa.schema(dt.schema().to_arrow())
    wide = pa.schema(
        [pa.field(f.name, plan.widened.get(f.name, f.type), f.nullable) for f in current]
    )
    reader = pa.RecordBatchReader.from_stream(dt.scan())
    batches = (cast_batch(b, wide) for b in reader)
    write_deltalake(
        dt,
        pa.RecordBatchReader.from_batches(wide, batches),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=list(dt.metadata().partition_columns) or None,
        target_file_size=TARGET_FILE_BYTES,
        writer_properties=properties,
        commit_properties=commit_properties("widen"),
    )


def create(storage: Storage, name: TableName, plan: SchemaPlan, opts: TableOptions) -> DeltaTable:
    """Version 0 of a table is its creation: schema, partitioning, no rows. The data then
    goes in through the same path as for an existing table, so writers racing to create a
    table append, overwrite or merge one after the other (delta-rs would turn a losing
    data-carrying creation into an append) and every write knows the version it made."""
    with _creation_lock(storage, name):
        dt = open_delta(storage, name)
        if dt is None:
            write_deltalake(
                storage.table_uri(name),
                plan.target.empty_table(),
                mode="append",
                partition_by=list(opts.partition_by or []) or None,
                configuration=_delta_configuration(name),
                # The options travel with the table: a table whose catalog entry is missing
                # (a writer killed before registering it) is registered with its own.
                commit_properties=commit_properties(
                    "create", options=json.dumps(options_dict(opts))
                ),
                storage_options=storage.storage_options,
            )
            dt = open_delta(storage, name)
    assert dt is not None
    return dt


def _delta_configuration(name: TableName) -> dict[str, str | None] | None:
    """Real-time tables take a commit every micro-batch: a checkpoint every 10 commits
    (not 100) keeps opening them (replaying the log since the last one) fast."""
    if name.layer == "realtime":
        return {"delta.checkpointInterval": "10"}
    return None


@contextmanager
def _creation_lock(storage: Storage, name: TableName) -> Iterator[None]:
    """Serialise processes creating one local table: delta-rs commits a losing creation
    after the winner, and its protocol and metadata would then replace the table's. The
    lock is released by the kernel if the process dies. Object stores get no lock; their
    racing creators keep delta-rs's behaviour."""
    if not storage.local:
        yield
        return
    lock_path = Path(storage.table_uri(name)).parent / f".{name.name}.create.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
