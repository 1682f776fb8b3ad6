"""Iceberg's write strategies, all copy-on-write: every change reads the data files it
touches, rewrites them with the changed rows and commits one snapshot that removes the old
files and adds the new ones (no delete files). Each snapshot carries the platform's version
number and the transaction numbers of every application, committed with the rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    TableAlreadyExistsError,
    ValidationError,
)
from pyiceberg.io.pyarrow import _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.manifest import DataFile as IcebergDataFile
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema as IcebergSchema
from pyiceberg.transforms import (
    DayTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    YearTransform,
)

from lakehouse.config import TableOptions
from lakehouse.errors import ConstraintViolationError, LakehouseError, SchemaMismatchError
from lakehouse.names import TableName
from lakehouse.quoting import ident, string_list
from lakehouse.scratch import scratch
from lakehouse.storage import Storage
from lakehouse.tables.commits import user
from lakehouse.tables.convert import cast_batch
from lakehouse.tables.format import CommitConflict, FormatError, WriteJob, Written
from lakehouse.tables.iceberg_files import live_files, path_of, plain_names, read_files
from lakehouse.tables.iceberg_tables import (
    CONSTRAINT,
    OPERATION,
    OPTIONS,
    TRANSACTIONS,
    USER,
    VERSION,
    IcebergHandle,
    arrow_schema,
    at_version,
    catalog_of,
    open_table,
    transactions,
)
from lakehouse.tables.iceberg_tables import (
    ident as table_ident,
)
from lakehouse.tables.options import options_dict
from lakehouse.tables.schema import SchemaPlan, type_name
from lakehouse.tables.snapshot import is_local
from lakehouse.tables.upsert import COMBINE, last_per_key


@dataclass
class IcebergCommit:
    """What an Iceberg snapshot of the platform carries besides its files."""

    operation: str
    transactions: list[tuple[str, int]] = field(default_factory=list)


IcebergJob = WriteJob[IcebergHandle, IcebergCommit]

_TRANSFORMS: dict[str, Transform[Any, Any]] = {
    "day": DayTransform(),
    "month": MonthTransform(),
    "year": YearTransform(),
}


# -- creation and schema ------------------------------------------------------------------
def create(
    storage: Storage, name: TableName, plan: SchemaPlan, opts: TableOptions
) -> IcebergHandle:
    """Version 0: the table in the catalog, its schema and partition spec, no snapshot.
    A writer racing to create it loads the winner's table."""
    catalog = catalog_of(storage)
    try:
        catalog.create_namespace(name.layer)
    except NamespaceAlreadyExistsError:
        pass
    found = open_table(storage, name)
    if found is None:
        if catalog.table_exists(table_ident(name)):
            catalog.drop_table(table_ident(name))  # a dropped table's stale catalog row
        schema = pa.schema([pa.field(f.name, f.type, True) for f in plan.target])
        try:
            created = catalog.create_table(
                table_ident(name),
                schema=schema,
                location=storage.table_uri(name),
                properties={
                    OPTIONS: json.dumps(options_dict(opts)),
                    "format-version": "2",
                    "write.parquet.compression-codec": opts.compression or "zstd",
                    # A losing commit is retried by the platform's writer, which reads the
                    # table again: pyiceberg's own retry would keep the version number and
                    # transaction ids (and a merge's rows) computed from the old snapshot.
                    "commit.retry.num-retries": "0",
                },
            )
            spec = _spec(created.schema(), list(opts.partition_by or []))
            if spec.fields:
                with created.update_spec() as update:
                    for part in spec.fields:
                        source = created.schema().find_column_name(part.source_id)
                        assert source is not None
                        update.add_field(source, part.transform, part.name)
        except TableAlreadyExistsError:
            pass
        found = open_table(storage, name)
    assert found is not None
    return at_version(found, name, None)


def _spec(schema: IcebergSchema, partition_by: list[str]) -> PartitionSpec:
    """Partition fields: a column (identity), or ``day(col)``, ``month(col)``, ``year(col)``."""
    fields = []
    for i, entry in enumerate(partition_by):
        found = re.fullmatch(r"\s*(day|month|year)\(\s*(\w+)\s*\)\s*", entry)
        column = found.group(2) if found else entry
        transform: Transform[Any, Any] = (
            _TRANSFORMS[found.group(1)] if found else IdentityTransform()
        )
        try:
            source = schema.find_field(column).field_id
        except ValueError as exc:
            raise LakehouseError(f"no column {column!r} to partition by") from exc
        label = f"{column}_{found.group(1)}" if found else column
        fields.append(PartitionField(source, 1000 + i, transform, label))
    return PartitionSpec(*fields)


def partition_names(handle: IcebergHandle) -> list[str]:
    schema = handle.table.schema()
    out = []
    for part in handle.table.spec().fields:
        column = schema.find_column_name(part.source_id) or part.name
        kind = str(part.transform)
        out.append(column if kind == "identity" else f"{kind}({column})")
    return out


def evolve(handle: IcebergHandle, plan: SchemaPlan) -> None:
    """Widen column types in place: Iceberg promotes int to long, float to double and a
    decimal's precision without rewriting any file; it has no other type change."""
    try:
        with _refusals(), handle.table.update_schema() as update:
            for column, wide in plan.widened.items():
                update.union_by_name(pa.schema([pa.field(column, wide, True)]))
    except ValidationError as exc:
        current = arrow_schema(handle)
        column = next((c for c in plan.widened if f"{c}:" in str(exc)), next(iter(plan.widened)))
        raise SchemaMismatchError(
            str(table_name(handle)),
            column,
            type_name(current.field(column).type),
            type_name(plan.widened[column]),
            hint="an Iceberg table widens int to long, float to double and a decimal's "
            f"precision only ({exc}); cast the data to the table's type",
        ) from exc


# -- commits --------------------------------------------------------------------------------
def commit_files(
    handle: IcebergHandle,
    commit: IcebergCommit,
    removed: list[IcebergDataFile],
    added: pa.Table | None,
    new_columns: pa.Schema | None = None,
    reused: list[IcebergDataFile] | None = None,
    replace: bool = False,
) -> int:
    """One snapshot: ``removed`` files out, ``added`` rows written to new files; the
    schema takes ``new_columns`` first, in the same commit. Returns its version."""
    table = handle.table
    parent = table.current_snapshot()
    version = int(
        parent.summary.additional_properties.get(VERSION, 0)
        if parent is not None and parent.summary is not None
        else 0
    )
    held = transactions(parent)
    for app, n in commit.transactions:
        held[app] = n
    props = {
        VERSION: str(version + 1),
        TRANSACTIONS: json.dumps(held, sort_keys=True),
        OPERATION: commit.operation,
        USER: user(),
    }
    with _refusals():
        tx = table.transaction()
        if new_columns is not None and len(new_columns):
            with tx.update_schema() as evolution:
                evolution.union_by_name(new_columns)
        files: list[IcebergDataFile] = list(reused or [])
        if added is not None and added.num_rows:
            check_constraints(table.properties, added)
            target = schema_to_pyarrow(tx.table_metadata.schema(), include_field_ids=False)
            rows = pa.Table.from_batches(
                [cast_batch(b, target) for b in added.to_batches()], target
            )
            files += list(_dataframe_to_data_files(tx.table_metadata, rows, table.io))
        update = tx.update_snapshot(snapshot_properties=props)
        producer = update.overwrite() if removed or replace else update.fast_append()
        with producer as snap:
            for f in removed:
                snap.delete_data_file(f)
            for f in files:
                snap.append_data_file(f)
        tx.commit_transaction()
    return version + 1


def check_constraints(table_properties: dict[str, str], rows: pa.Table) -> None:
    """The table's CHECK constraints over the rows to be written."""
    checks = {
        k.removeprefix(CONSTRAINT): v
        for k, v in table_properties.items()
        if k.startswith(CONSTRAINT)
    }
    if not checks:
        return
    con = scratch()
    try:
        con.register("__lh_rows", rows)
        for check, expression in checks.items():
            ((bad,),) = con.sql(
                f"SELECT count(*) FROM __lh_rows WHERE ({duck(expression)}) IS NOT TRUE"
            ).fetchall()
            if bad:
                raise ConstraintViolationError(
                    f"{bad} row(s) break the constraint {check} ({expression})",
                    "fix or filter the offending rows; nothing was committed",
                )
    finally:
        con.close()


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except CommitFailedException as exc:
        raise CommitConflict(
            f"another writer committed meanwhile ({exc})", "nothing was changed; run it again"
        ) from exc


def duck(predicate: str) -> str:
    """A predicate as written for Delta (backquoted names) in DuckDB's SQL."""
    return re.sub(r"`([^`]*)`", lambda m: '"' + m.group(1).replace('"', '""') + '"', predicate)


# -- write strategies -------------------------------------------------------------------
def _rows(job: IcebergJob) -> pa.Table:
    target = job.plan.target
    return pa.Table.from_batches(list(job.prepared.batches(target)), target)


def _new(job: IcebergJob) -> pa.Schema | None:
    if not job.plan.new_columns:
        return None
    return pa.schema([job.plan.target.field(c) for c in job.plan.new_columns])


def append(job: IcebergJob) -> Written:
    return Written(commit_files(job.handle, job.commit, [], _rows(job), _new(job)))


def overwrite(job: IcebergJob) -> Written:
    removed = live_files(job.handle)
    return Written(commit_files(job.handle, job.commit, removed, _rows(job), _new(job)))


def replace_where(job: IcebergJob, predicate: str) -> Written:
    """The rows matching ``predicate`` replaced by the data: the files holding such rows
    rewritten without them, the data added, in one snapshot. Rows of the data that do not
    match the predicate are refused, as Delta refuses them."""
    rows = _rows(job)
    con = scratch()
    try:
        con.register("__lh_rows", rows)
        ((stray,),) = con.sql(
            f"SELECT count(*) FROM __lh_rows WHERE ({duck(predicate)}) IS NOT TRUE"
        ).fetchall()
    finally:
        con.close()
    if stray:
        raise FormatError(f"{stray} row(s) of the data do not match the predicate {predicate}")
    removed, kept = _without(job.handle, predicate, job.plan.target)
    if kept is not None:
        rows = pa.concat_tables([kept, rows])
    return Written(commit_files(job.handle, job.commit, removed, rows, _new(job)))


def _without(
    handle: IcebergHandle, predicate: str, schema: pa.Schema
) -> tuple[list[IcebergDataFile], pa.Table | None]:
    """The files holding rows that match ``predicate``, and their other rows."""
    hits = _files_where(handle, f"({duck(predicate)}) IS TRUE")
    if not hits:
        return [], None
    con = scratch()
    try:
        rows = read_files(handle, hits, schema)
        con.register("__lh_rows", rows)
        kept = con.sql(
            f"SELECT * FROM __lh_rows WHERE ({duck(predicate)}) IS NOT TRUE"
        ).to_arrow_table()
    finally:
        con.close()
    return hits, _fit(kept, schema)


def _files_where(handle: IcebergHandle, condition: str) -> list[IcebergDataFile]:
    """The live files with a row meeting ``condition``."""
    return _touched(handle, live_files(handle), f"WHERE {condition}", None)


def _touched(
    handle: IcebergHandle, files: list[IcebergDataFile], tail: str, source: pa.Table | None
) -> list[IcebergDataFile]:
    """The files of ``files`` with a row that ``SELECT ... FROM <file> AS t <tail>`` keeps
    (``s``: ``source``). Local files are read by DuckDB, only the columns the condition
    names and only row groups their statistics do not rule out; others one by one."""
    if not files:
        return []
    con = scratch()
    try:
        if source is not None:
            con.register("s", source)
        if is_local(handle.location) and plain_names(handle):
            by_path = {path_of(f): f for f in files}
            scan = (
                f"read_parquet({string_list(by_path)}, hive_partitioning = false, "
                "union_by_name = true, filename = '__lh_file')"
            )
            found = con.sql(f"SELECT DISTINCT t.__lh_file FROM {scan} AS t {tail}").fetchall()
            hit = {row[0] for row in found}
            return [f for path, f in by_path.items() if path in hit]
        schema = arrow_schema(handle)
        out = []
        for f in files:  # read by pyiceberg: columns found by field id
            con.register("__lh_file_rows", read_files(handle, [f], schema))
            if con.sql(f"SELECT 1 FROM __lh_file_rows AS t {tail} LIMIT 1").fetchall():
                out.append(f)
            con.unregister("__lh_file_rows")
        return out
    finally:
        con.close()


def _fit(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches([cast_batch(b, schema) for b in table.to_batches()], schema)


def merge(job: IcebergJob, keys: list[str]) -> Written:
    """Upsert on ``keys`` (a NULL key part matches a NULL one): the files holding a key of
    the data are read, their rows merged with the data's in one DuckDB query, and written
    back in one overwrite snapshot with the new rows."""
    prepared, target = job.prepared, job.plan.target
    given = pa.schema([f for f in target if f.name in prepared.schema.names])
    source = pa.Table.from_batches(list(prepared.batches(given)), given)
    flag = prepared.delete_flag is not None
    if flag:
        source = source.append_column("__lh_delete", prepared.delete_flag)
    source = last_per_key(source, keys)
    on = " AND ".join(f"t.{ident(k)} IS NOT DISTINCT FROM s.{ident(k)}" for k in keys)
    hits = _touched(job.handle, live_files(job.handle), f"SEMI JOIN s ON {on}", source)
    con = scratch()
    try:
        con.register("s", source)
        con.register("t", read_files(job.handle, hits, target))
        drop = "coalesce(s.__lh_delete, false)" if flag else "false"
        updated = []
        for c in target.names:
            if c in prepared.combine:
                updated.append(
                    COMBINE[prepared.combine[c]].format(t=f"t.{ident(c)}", s=f"s.{ident(c)}")
                    + f" AS {ident(c)}"
                )
            elif c in given.names:
                updated.append(f"s.{ident(c)} AS {ident(c)}")
            else:
                updated.append(f"t.{ident(c)} AS {ident(c)}")
        inserted = [
            f"s.{ident(c)} AS {ident(c)}" if c in given.names else f"NULL AS {ident(c)}"
            for c in target.names
        ]
        kept = con.sql(f"SELECT t.* FROM t ANTI JOIN s ON {on}").to_arrow_table()
        changed = con.sql(
            f"SELECT {', '.join(updated)} FROM t JOIN s ON {on} WHERE NOT {drop}"
        ).to_arrow_table()
        ((deleted,),) = con.sql(f"SELECT count(*) FROM t JOIN s ON {on} WHERE {drop}").fetchall()
        new = con.sql(
            f"SELECT {', '.join(inserted)} FROM s ANTI JOIN t ON {on} WHERE NOT {drop}"
        ).to_arrow_table()
    finally:
        con.close()
    rows = pa.concat_tables([_fit(kept, target), _fit(changed, target), _fit(new, target)])
    version = commit_files(job.handle, job.commit, hits, rows, _new(job))
    return Written(version, inserted=new.num_rows, updated=changed.num_rows, deleted=deleted)


def delete(handle: IcebergHandle, predicate: str | None) -> dict[str, int]:
    commit = IcebergCommit("delete")
    schema = arrow_schema(handle)
    if predicate is None:
        removed = live_files(handle)
        count = sum(int(f.record_count) for f in removed)
        commit_files(handle, commit, removed, None)
        return {"num_deleted_rows": count, "num_removed_files": len(removed)}
    removed, kept = _without(handle, predicate, schema)
    if not removed:
        return {"num_deleted_rows": 0, "num_removed_files": 0}
    before = sum(int(f.record_count) for f in removed)
    after = kept.num_rows if kept is not None else 0
    commit_files(handle, commit, removed, kept)
    return {
        "num_deleted_rows": before - after,
        "num_removed_files": len(removed),
        "num_added_files": 1 if after else 0,
    }


def restore(handle: IcebergHandle, old: IcebergHandle, commit: IcebergCommit) -> None:
    """A new snapshot whose files are those of ``old``."""
    current = live_files(handle)
    wanted = live_files(old)
    have = {str(f.file_path) for f in current}
    keep = {str(f.file_path) for f in wanted}
    removed = [f for f in current if str(f.file_path) not in keep]
    reused = [f for f in wanted if str(f.file_path) not in have]
    commit_files(handle, commit, removed, None, reused=reused, replace=True)


def rewrite(
    handle: IcebergHandle, operation: str, order: list[str] | None, target_size: int
) -> dict[str, int]:
    """Compaction (and clustering, with ``order``): the small files rewritten in one
    snapshot. Nothing to do: no snapshot. The snapshot's Iceberg operation is ``overwrite``
    (its ``lakehouse.operation`` says ``optimize``): pyiceberg 0.12 refuses to summarise a
    ``replace`` snapshot ("Operation not implemented: Operation.REPLACE")."""
    files = live_files(handle)
    small = files if order else [f for f in files if int(f.file_size_in_bytes) < target_size]
    if len(small) < 2 and not order:
        return {"numFilesAdded": 0, "numFilesRemoved": 0}
    if not small:
        return {"numFilesAdded": 0, "numFilesRemoved": 0}
    schema = arrow_schema(handle)
    rows = read_files(handle, small, schema)
    if order:
        rows = rows.sort_by([(c, "ascending") for c in order])
    commit_files(handle, IcebergCommit(operation), small, rows)
    added = len(live_files(at_version(handle.table.refresh(), table_name(handle), None))) - (
        len(files) - len(small)
    )
    return {"numFilesAdded": added, "numFilesRemoved": len(small)}


def table_name(handle: IcebergHandle) -> TableName:
    layer, name = handle.table.name()[-2:]
    return TableName(layer, name)
