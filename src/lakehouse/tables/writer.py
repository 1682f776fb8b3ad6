"""The one write path: every table write goes through ``write_table``.

It turns the data into Delta-friendly Arrow, fits it to the table's schema, adds the bronze
metadata columns and derived partition columns, commits through delta-rs with retries on
conflicts, and then registers the table and its new figures in the catalog.
"""

from __future__ import annotations

import fcntl
import getpass
import itertools
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from lakehouse.config import TableOptions, options_for
from lakehouse.errors import (
    ConcurrentWriteError,
    ConstraintViolationError,
    InvalidDataError,
    LakehouseError,
    SchemaMismatchError,
)
from lakehouse.names import TableName
from lakehouse.quoting import delta_ident, ident, text_or_null
from lakehouse.scratch import scratch
from lakehouse.tables import parallel
from lakehouse.tables.convert import cast_batch, normalize_schema, to_arrow
from lakehouse.tables.schema import SchemaPlan, plan_schema, schema_columns, type_name
from lakehouse.tables.snapshot import UnsupportedFeatureError, figures_of, refused_features

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

WriteMode = Literal["append", "overwrite", "merge"]
# A Delta transaction identifier (app id, number), or several committed together.
Txn = tuple[str, int] | list[tuple[str, int]]
# How a merge combines a matched row's value {t} with the incoming one {s}.
COMBINE = {
    "sum": "coalesce({t}, 0) + coalesce({s}, 0)",
    "min": "CASE WHEN {t} IS NULL OR {s} < {t} THEN {s} ELSE {t} END",
    "max": "CASE WHEN {t} IS NULL OR {s} > {t} THEN {s} ELSE {t} END",
}
METADATA_COLUMNS = ("_ingested_at", "_ingest_date", "_source_system", "_source", "_record_hash")
MAX_ATTEMPTS = 12


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


def open_delta(lh: Lakehouse, name: TableName, version: int | None = None) -> DeltaTable | None:
    uri = lh.table_uri(name)
    handles: Handles | None = getattr(_in_use, "handles", None)
    if handles is not None and version is None:
        dt = handles.get(uri)
        if dt is not None:
            return dt
    try:
        dt = DeltaTable(uri, version=version, storage_options=lh.storage_options)
    except TableNotFoundError:
        return None
    except DeltaError as exc:  # a protocol feature this reader does not know, said so
        features = refused_features(exc)
        if features:
            raise UnsupportedFeatureError(str(name), features) from exc
        raise
    if handles is not None and version is None:
        handles.keep(uri, dt)
    return dt


_in_use = threading.local()


class Handles:
    """Open tables kept by a long-running writer (a stream): opening a table replays its
    log since the last checkpoint, tens of milliseconds for a table that takes a commit a
    second; a kept handle reads only the commits since its last use. Each thread has its
    own handles (a handle is not shared between threads). Use ``with handles.used():`` in
    each thread that writes; tables must not be dropped and made again meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[int, str], DeltaTable] = {}

    @contextmanager
    def used(self) -> Iterator[None]:
        before = getattr(_in_use, "handles", None)
        _in_use.handles = self
        try:
            yield
        finally:
            _in_use.handles = before

    def get(self, uri: str) -> DeltaTable | None:
        with self._lock:
            dt = self._open.get((threading.get_ident(), uri))
        if dt is None:
            return None
        try:
            dt.update_incremental()
        except Exception:  # noqa: BLE001 - e.g. the table went away: open it afresh
            with self._lock:
                self._open.pop((threading.get_ident(), uri), None)
            return None
        return dt

    def keep(self, uri: str, dt: DeltaTable) -> None:
        with self._lock:
            self._open[(threading.get_ident(), uri)] = dt


def write_table(
    lh: Lakehouse,
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
    started = time.perf_counter()
    arrow = to_arrow(data)
    info = lh.catalog.get(str(name))
    if info is not None:
        opts = TableOptions(**_options_from_catalog(info.options))
    else:
        opts = options_for(name.layer, options)
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
    prepared = _Prepared(name, arrow, opts, source_system, source)
    prepared.delete_flag = flag
    prepared.combine = dict(merge_combine or {})

    for attempt in range(MAX_ATTEMPTS):
        dt = open_delta(lh, name)
        try:
            result = _write_once(
                lh, name, dt, prepared, mode, keys, predicate, evolve, opts, txn, input_versions
            )
            break
        except CommitFailedError as exc:
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


class _Prepared:
    """The incoming data with its target schema worked out; batches are produced on demand
    so a RecordBatchReader is streamed, never materialised."""

    def __init__(
        self,
        name: TableName,
        arrow: pa.Table | pa.RecordBatchReader,
        opts: TableOptions,
        source_system: str | None,
        source: str | None,
    ) -> None:
        self.name = name
        self.arrow = arrow
        self.opts = opts
        self.given = normalize_schema(arrow.schema)
        self.ingested_at = datetime.now(UTC)
        self.source_system = source_system
        self.source = source
        self.rows = 0
        self.delete_flag: Any = None  # merges: rows that delete their key
        self.combine: dict[str, str] = {}  # merges: columns combined with the matched value
        fields = list(self.given)
        names = set(self.given.names)
        if opts.metadata_columns:
            meta = [
                pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
                pa.field("_ingest_date", pa.date32()),
                pa.field("_source_system", pa.string()),
                pa.field("_source", pa.string()),
                pa.field("_record_hash", pa.string()),
            ]
            fields += [f for f in meta if f.name not in names]
        derived = self.derived_column
        if derived and derived not in names:
            fields.append(pa.field(derived, pa.date32()))
        self.schema = pa.schema(fields)

    @property
    def derived_column(self) -> str | None:
        o = self.opts
        if o.date_column and o.granularity and o.partition_by and len(o.partition_by) == 1:
            column = o.partition_by[0]
            if column == f"{o.date_column}_{o.granularity}":
                return column
        return None

    def batches(self, target: pa.Schema) -> Iterator[pa.RecordBatch]:
        source = self.arrow.to_batches() if isinstance(self.arrow, pa.Table) else self.arrow
        self.rows = 0  # a retried write reads the data again
        user_columns = [n for n in self.given.names if n not in METADATA_COLUMNS]
        for batch in source:
            batch = cast_batch(batch, self.given)
            if self.opts.metadata_columns:
                batch = self._with_metadata(batch, user_columns)
            if self.derived_column and self.derived_column not in self.given.names:
                batch = self._with_derived(batch)
            self.rows += batch.num_rows
            yield cast_batch(batch, target)

    def _with_metadata(self, batch: pa.RecordBatch, user_columns: list[str]) -> pa.RecordBatch:
        """The bronze metadata columns the batch lacks, in one DuckDB pass (the row hash is
        md5 of the row's own values as JSON, so any engine can recompute it)."""
        have = set(batch.schema.names)
        stamp = self.ingested_at.isoformat()
        wanted = {
            "_ingested_at": f"CAST({_sql_text(stamp)} AS TIMESTAMPTZ)",
            "_ingest_date": "CAST(_ingested_at AS DATE)"
            if "_ingested_at" in have
            else f"CAST(CAST({_sql_text(stamp)} AS TIMESTAMPTZ) AS DATE)",
            "_source_system": _sql_text(self.source_system),
            "_source": _sql_text(self.source),
            "_record_hash": "md5(to_json(struct_pack("
            + ", ".join(f"{_dq(c)} := {_dq(c)}" for c in user_columns)
            + ")))"
            if user_columns
            else "md5('{}')",
        }
        extra = [f"{expr} AS {name}" for name, expr in wanted.items() if name not in have]
        if not extra:
            return batch
        con = scratch()
        try:
            rows = pa.Table.from_batches([batch])  # noqa: F841 - read by DuckDB
            out = con.sql(f"SELECT *, {', '.join(extra)} FROM rows").to_arrow_table()
        finally:
            con.close()
        return _first_batch(out)

    def _with_derived(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        o = self.opts
        assert o.date_column is not None
        index = batch.schema.get_field_index(o.date_column)
        if index < 0:
            raise SchemaMismatchError(
                str(self.name),
                o.date_column,
                "date or timestamp",
                None,
                hint="the table is partitioned by this date column: include it in the data",
            )
        values = batch.column(index)
        day = values if pa.types.is_date32(values.type) else values.cast(pa.date32())
        if o.granularity in ("month", "year"):
            unit = o.granularity
            import pyarrow.compute as pc  # only here: it costs query processes 10 MiB

            day = pc.floor_temporal(day, unit=unit).cast(pa.date32())
        return batch.append_column(self.derived_column, day)


# Rows per parquet row group. DuckDB reads a file's row groups in parallel, one per thread
# at a time: a 600,000-row file written as one row group of 1,048,576 (the writers' default)
# is scanned by one core. 122,880 is DuckDB's own choice for the files it writes; measured
# against 65,536 and 262,144 in docs/BENCHMARKS.md.
ROW_GROUP_ROWS = 122_880
# How large a data file may grow before a write starts another (delta-rs's default is
# 100 MB). DuckDB plans a scan of one file with its statistics and a scan of several files
# without them: TPC-H Q21 and Q10 over a lineitem table of two files took 1.5 to 2.7 times
# as long as over the same rows in one. The row groups keep one file's scan parallel.
TARGET_FILE_BYTES = parallel.TARGET_FILE_BYTES  # 1 GiB
# A column's dictionary may grow to 1 MiB (the parquet writers' default): TPC-H's
# l_suppkey needs 80 KB per row group, and falling back to plain encoding made scans of it
# 40% slower. Columns of distinct values (ids, times, hashes) do not fill one to throw it
# away: when the data is known, a column gets a dictionary only if its first row group's
# worth of rows holds at most DICTIONARY_SHARE distinct values per row (DuckDB's writer
# makes the same split on TPC-H: l_suppkey with one, l_orderkey and l_partkey without).
DICTIONARY_PAGE_BYTES = 1 << 20
DICTIONARY_SHARE = 0.2
# DuckDB reads a column 2,048 rows (one vector) at a time, and hands a dictionary-encoded
# column on as a dictionary vector only when the vector lies in one page; a vector that
# spans two pages is copied out flat, and a GROUP BY over it hashes every string again
# (TPC-H Q1's l_returnflag: 18 ms against 10). Pages therefore hold a multiple of 2,048
# rows: at most PAGE_ROWS, and the writers look at a page's size only every WRITE_ROWS
# rows, so a page cut by size ends on a vector's edge too.
VECTOR_ROWS = 2048
PAGE_ROWS = 10 * VECTOR_ROWS
WRITE_ROWS = VECTOR_ROWS
ALIGNED_ROWS = 32 * VECTOR_ROWS
PROBE_ROWS = 4096
# Of the probed rows: a column of distinct values. 4,096 rows drawn at random from a column
# of DICTIONARY_SHARE * 122,880 equally common values hold 92% distinct ones, from a column
# of distinct values 100%.
PROBE_DISTINCT = 0.96
PROBE_FEW = 64  # distinct values among the probed rows: a column of few values


def writer_properties(
    compression: str | None = None, sample: pa.Table | None = None
) -> WriterProperties:
    """How data files are encoded, by every path that writes them (appends, overwrites,
    merges, deletes, compaction, z-order; ``parallel.py`` reads the same settings).
    ``sample``, the first rows to be written, decides which columns get a dictionary."""
    columns = None
    if sample is not None:
        columns = {
            name: ColumnProperties(dictionary_enabled=False) for name in distinct_valued(sample)
        }
    return WriterProperties(
        compression=(compression or "zstd").upper(),
        dictionary_page_size_limit=DICTIONARY_PAGE_BYTES,
        max_row_group_size=ROW_GROUP_ROWS,
        data_page_row_count_limit=PAGE_ROWS,
        write_batch_size=WRITE_ROWS,
        column_properties=columns or None,
    )


def distinct_valued(sample: pa.Table) -> list[str]:
    """The top-level columns with more than ``DICTIONARY_SHARE`` distinct values per row
    in the first ``ROW_GROUP_ROWS`` rows of ``sample``. ``PROBE_ROWS`` of those rows, drawn
    at random (the same ones every time), settle most columns: nearly all distinct (ids,
    times, hashes) or a few values (flags, codes, a batch's constants); the others are
    counted in full. Every n-th row would not do: in rows ordered by one key another
    column can cycle through its values, and TPC-H's ps_suppkey (10,000 values, 8% of
    the rows) looked distinct that way and lost the dictionary that Q11 filters on.
    Counting every column in full cost a streamed batch a twentieth of its write."""
    import pyarrow.compute as pc  # only here: it costs query processes 10 MiB

    head = sample.slice(0, ROW_GROUP_ROWS)
    most = int(head.num_rows * DICTIONARY_SHARE)
    rows = pa.array(
        np.sort(np.random.default_rng(0).choice(head.num_rows, PROBE_ROWS, replace=False))
        if head.num_rows > PROBE_ROWS
        else np.arange(head.num_rows)
    )
    found = []
    for name, column in zip(head.column_names, head.columns, strict=True):
        t = column.type
        if pa.types.is_nested(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
            continue
        if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
            column = column.cast(pa.large_binary())
        try:
            probed = pc.count_distinct(column.take(rows), mode="all").as_py()
            if probed > len(rows) * PROBE_DISTINCT or (
                probed > PROBE_FEW and pc.count_distinct(column, mode="all").as_py() > most
            ):
                found.append(name)
        except pa.ArrowNotImplementedError:  # a type Arrow cannot count: keep its dictionary
            continue
    return found


def aligned(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of a multiple of ``VECTOR_ROWS`` rows (but the last) and
    of at least ``ALIGNED_ROWS`` rows. delta-rs counts a page's rows batch by batch, so a
    batch of another length shifts every later page off the vectors' edges; and it lets
    large batches overtake small ones, which it gathers first, so a small batch would
    land among the others. A batch that is already a whole number of vectors is passed
    on as it is; the rows of the others are copied once."""
    held: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if not held and batch.num_rows >= ALIGNED_ROWS:
            whole = batch.num_rows - batch.num_rows % VECTOR_ROWS
            yield batch.slice(0, whole)
            batch = batch.slice(whole)
        if batch.num_rows:
            held.append(batch)
            rows += batch.num_rows
        if rows >= ALIGNED_ROWS:
            merged = pa.concat_batches(held)
            whole = rows - rows % VECTOR_ROWS
            yield merged.slice(0, whole)
            held = [merged.slice(whole)] if whole < rows else []
            rows -= whole
    if held:
        yield held[0] if len(held) == 1 else pa.concat_batches(held)


def _head(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema
) -> tuple[pa.Table, Iterator[pa.RecordBatch]]:
    """The first row group's worth of a stream of batches, and the whole stream again."""
    head: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        head.append(batch)
        rows += batch.num_rows
        if rows >= ROW_GROUP_ROWS:
            break
    return pa.Table.from_batches(head, schema), itertools.chain(head, batches)


def _holds(dt: DeltaTable, app_id: str, n: int) -> bool:
    done = dt.transaction_version(app_id)
    return done is not None and done >= n


_sql_text = text_or_null
_dq = ident


def _first_batch(out: pa.Table) -> pa.RecordBatch:
    """DuckDB's result as one record batch (empty input gives an empty batch)."""
    batches = out.combine_chunks().to_batches()
    if batches:
        return batches[0]
    return pa.RecordBatch.from_pylist([], schema=out.schema)


def _write_once(
    lh: Lakehouse,
    name: TableName,
    dt: DeltaTable | None,
    prepared: _Prepared,
    mode: WriteMode,
    keys: list[str] | None,
    predicate: str | None,
    evolve: bool,
    opts: TableOptions,
    txn: Txn | None = None,
    input_versions: dict[str, int] | None = None,
) -> WriteResult:
    given = [txn] if isinstance(txn, tuple) else list(txn or [])
    if given and dt is not None and all(_holds(dt, app, n) for app, n in given):
        return WriteResult(str(name), mode, dt.version(), 0, 0.0, skipped=True)
    properties = writer_properties(opts.compression)
    if dt is None:
        dt = _create(lh, name, plan_schema(str(name), None, prepared.schema, evolve), opts)
    plan = plan_schema(str(name), pa.schema(dt.schema().to_arrow()), prepared.schema, evolve)
    if keys:
        missing = [k for k in keys if k not in plan.target.names]
        if missing:
            raise LakehouseError(
                f"{name}: merge key column(s) {', '.join(missing)} not in the data",
                f"the columns are {', '.join(plan.target.names)}",
            )
    changes: list[str] = []
    if plan.widened:
        _widen(lh, name, dt, plan, properties)
        changes += [f"widened {c} to {type_name(t)}" for c, t in plan.widened.items()]
        dt = open_delta(lh, name)
        assert dt is not None
    changes += [f"added column {c}" for c in plan.new_columns]
    schema_mode = "merge" if plan.new_columns else None
    counts = {"inserted": 0, "updated": 0, "deleted": 0}
    marks = [Transaction(app, n) for app, n in given]
    marks += [Transaction(input_mark(t), v) for t, v in (input_versions or {}).items()]
    commit = commit_properties(mode, max_commit_retries=100, app_transactions=marks or None)
    if (
        mode in ("append", "overwrite")
        and predicate is None
        and schema_mode is None
        and isinstance(prepared.arrow, pa.Table)
        and parallel.eligible(dt, prepared.arrow.num_rows, lh.local)
    ):
        table = pa.Table.from_batches(prepared.batches(plan.target), plan.target)
        properties = writer_properties(opts.compression, table)
        version = parallel.write_files(dt, table, mode=mode, properties=properties, commit=commit)
    elif mode in ("append", "overwrite"):
        head, batches = _head(aligned(prepared.batches(plan.target)), plan.target)
        reader = pa.RecordBatchReader.from_batches(plan.target, batches)
        write_deltalake(
            dt,
            reader,
            mode=mode,
            predicate=predicate,
            schema_mode=schema_mode,
            target_file_size=TARGET_FILE_BYTES,
            writer_properties=writer_properties(opts.compression, head),
            commit_properties=commit,
        )
        version = dt.version()  # the handle moves to the version its own commit made
    else:
        assert keys is not None and dt is not None
        source_schema = pa.schema([f for f in plan.target if f.name in prepared.schema.names])
        source = pa.Table.from_batches(list(prepared.batches(source_schema)), source_schema)
        columns = {_q(c): f"s.{_q(c)}" for c in source.schema.names}
        updates = dict(columns)
        for column, how in prepared.combine.items():
            updates[_q(column)] = COMBINE[how].format(t=f"t.{_q(column)}", s=f"s.{_q(column)}")
        keep = None
        if prepared.delete_flag is not None:
            source = source.append_column("__lh_delete", prepared.delete_flag)
            keep = "NOT s.__lh_delete"
        source = _last_per_key(source, keys)
        # A NULL key matches a NULL key, as in the source's last-per-key above and in the
        # pipelines' de-duplication: a row with a NULL key part is upserted, not added again.
        on = " AND ".join(f"(t.{_q(k)} IS NOT DISTINCT FROM s.{_q(k)})" for k in keys)
        merger = dt.merge(
            source,
            predicate=on,
            source_alias="s",
            target_alias="t",
            merge_schema=bool(plan.new_columns),
            writer_properties=writer_properties(opts.compression, source),
            commit_properties=commit,
        )
        if keep is not None:
            merger = merger.when_matched_delete(predicate="s.__lh_delete")
        metrics = (
            merger.when_matched_update(updates=updates, predicate=keep)
            .when_not_matched_insert(updates=columns, predicate=keep)
            .execute()
        )
        counts["inserted"] = int(metrics.get("num_target_rows_inserted", 0))
        counts["updated"] = int(metrics.get("num_target_rows_updated", 0))
        counts["deleted"] = int(metrics.get("num_target_rows_deleted", 0))
        version = dt.version()
    dt.update_incremental()  # to the newest version: this commit, or one after it
    after_commit(lh, name, dt, opts, change="; ".join(changes) or None)
    return WriteResult(
        table=str(name),
        mode=mode,
        version=version,
        rows=prepared.rows,
        seconds=0.0,
        schema_changes=changes,
        **counts,
    )


def _widen(
    lh: Lakehouse,
    name: TableName,
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


def _create(lh: Lakehouse, name: TableName, plan: SchemaPlan, opts: TableOptions) -> DeltaTable:
    """Version 0 of a table is its creation: schema, partitioning, no rows. The data then
    goes in through the same path as for an existing table, so writers racing to create a
    table append, overwrite or merge one after the other (delta-rs would turn a losing
    data-carrying creation into an append) and every write knows the version it made."""
    with _creation_lock(lh, name):
        dt = open_delta(lh, name)
        if dt is None:
            write_deltalake(
                lh.table_uri(name),
                plan.target.empty_table(),
                mode="append",
                partition_by=list(opts.partition_by or []) or None,
                configuration=_delta_configuration(name),
                # The options travel with the table: a table whose catalog entry is missing
                # (a writer killed before registering it) is registered with its own.
                commit_properties=commit_properties(
                    "create", options=json.dumps(_options_dict(opts))
                ),
                storage_options=lh.storage_options,
            )
            dt = open_delta(lh, name)
    assert dt is not None
    return dt


def _delta_configuration(name: TableName) -> dict[str, str | None] | None:
    """Real-time tables take a commit every micro-batch: a checkpoint every 10 commits
    (not 100) keeps opening them (replaying the log since the last one) fast."""
    if name.layer == "realtime":
        return {"delta.checkpointInterval": "10"}
    return None


@contextmanager
def _creation_lock(lh: Lakehouse, name: TableName) -> Iterator[None]:
    """Serialise processes creating one local table: delta-rs commits a losing creation
    after the winner, and its protocol and metadata would then replace the table's. The
    lock is released by the kernel if the process dies. Object stores get no lock; their
    racing creators keep delta-rs's behaviour."""
    if not lh.local:
        yield
        return
    lock_path = Path(lh.table_uri(name)).parent / f".{name.name}.create.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _last_per_key(source: pa.Table, keys: list[str]) -> pa.Table:
    """Upsert semantics: of several source rows with one key, the last one wins."""
    if source.num_rows == 0:
        return source
    indexed = source.append_column("__row", pa.array(range(source.num_rows), pa.int64()))
    last = indexed.group_by(keys, use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == source.num_rows:
        return source
    return source.take(np.sort(last.column("__row_max").to_numpy()))


def after_commit(
    lh: Lakehouse,
    name: TableName,
    dt: DeltaTable,
    opts: TableOptions | None = None,
    change: str | None = None,
) -> int:
    """Register the table on its first commit and record its new figures and schema."""
    snap = figures_of(dt)
    columns = schema_columns(snap.schema)
    info = lh.catalog.get(str(name))
    if info is None:
        o = opts or options_at_creation(dt) or options_for(name.layer, None)
        lh.catalog.register(
            name=str(name),
            layer=name.layer,
            location=lh.table_uri(name),
            fmt="delta",
            columns=columns,
            options=_options_dict(o),
            owner=o.owner or _user(),
            description=o.description,
            tags=list(o.tags),
            column_tags={k: list(v) for k, v in o.column_tags.items()},
            retention_days=o.retention_days,
            version=snap.version,
        )
    lh.catalog.record_commit(
        str(name),
        version=snap.version,
        row_count=snap.row_count,
        size_bytes=snap.size_bytes,
        num_files=snap.num_files,
        columns=columns,
        change=change,
    )
    return snap.version


def _options_dict(o: TableOptions) -> dict[str, Any]:
    return {
        "partition_by": list(o.partition_by) if o.partition_by is not None else None,
        "date_column": o.date_column,
        "granularity": o.granularity,
        "compression": o.compression,
        "retention_days": o.retention_days,
        "metadata_columns": o.metadata_columns,
        "keys": list(o.keys),
        "owner": o.owner,
        "description": o.description,
        "tags": list(o.tags),
        "column_tags": {k: list(v) for k, v in o.column_tags.items()},
    }


def _options_from_catalog(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    for k in ("partition_by", "keys", "tags"):
        if out.get(k) is not None:
            out[k] = tuple(out[k])
    out["keys"] = out.get("keys") or ()
    out["tags"] = out.get("tags") or ()
    out["column_tags"] = {k: tuple(v) for k, v in (out.get("column_tags") or {}).items()}
    return out


_q = delta_ident


def input_mark(table: str) -> str:
    """The transaction identifier under which a table records the version of an input."""
    return f"lakehouse.input:{table}"


def commit_properties(
    operation: str, options: str | None = None, **properties: Any
) -> CommitProperties:
    """Every commit records which lakehouse operation made it, and who; a creation also
    records the table's options."""
    metadata = {"lakehouse.operation": operation, "lakehouse.user": _user()}
    if options is not None:
        metadata["lakehouse.options"] = options
    return CommitProperties(custom_metadata=metadata, **properties)


def options_at_creation(dt: DeltaTable) -> TableOptions | None:
    """The options a table was created with (see ``_create``), if it records them."""
    try:
        first = dt.history()[-1]
    except Exception:  # noqa: BLE001 - an unreadable history: fall back to the defaults
        return None
    text = first.get("lakehouse.options") if first.get("version", 0) == 0 else None
    if not text:
        return None
    try:
        return TableOptions(**_options_from_catalog(json.loads(text)))
    except (TypeError, ValueError):
        return None


def _user() -> str:
    try:
        return os.environ.get("LAKEHOUSE_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def _translate(name: TableName, exc: DeltaError, dt: DeltaTable | None) -> LakehouseError:
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
