"""Delta Lake, the first implementation of the table format interface (``format.py``),
on delta-rs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError, DeltaError

from lakehouse.config import TableOptions
from lakehouse.names import TableName
from lakehouse.storage import Locations, Storage
from lakehouse.tables import delta_read, delta_write
from lakehouse.tables.changes import appended
from lakehouse.tables.commits import commit_properties
from lakehouse.tables.encoding import TARGET_FILE_BYTES, writer_properties
from lakehouse.tables.format import (
    CommitConflict,
    FormatError,
    Latest,
    TableFormat,
    WriteJob,
    Written,
)
from lakehouse.tables.handles import open_delta
from lakehouse.tables.schema import SchemaPlan
from lakehouse.tables.snapshot import (
    Figures,
    Snapshot,
    figures_of,
    is_local,
    local_path,
    snapshot_of,
)


class DeltaFormat(TableFormat[DeltaTable, CommitProperties]):
    name = "delta"

    # -- reading ------------------------------------------------------------------------
    def open(
        self, where: Locations, name: TableName, version: int | None = None
    ) -> DeltaTable | None:
        return open_delta(where, name, version)

    def exists(self, where: Locations, name: TableName) -> bool:
        uri = where.table_uri(name)
        return bool(DeltaTable.is_deltatable(uri, storage_options=where.storage_options))

    def load(self, where: Locations, name: TableName, version: int | None = None) -> DeltaTable:
        return delta_read.load(where, name, version)

    def latest(self, where: Locations, name: TableName) -> Latest[DeltaTable]:
        return delta_read.DeltaLatest(where, name)

    def refresh(self, handle: DeltaTable) -> DeltaTable:
        handle.update_incremental()
        return handle

    def version(self, handle: DeltaTable) -> int:
        return int(handle.version())

    def schema(self, handle: DeltaTable) -> pa.Schema:
        return pa.schema(handle.schema().to_arrow())

    def partition_columns(self, handle: DeltaTable) -> list[str]:
        return list(handle.metadata().partition_columns)

    def constraints(self, handle: DeltaTable) -> dict[str, str]:
        config = handle.metadata().configuration
        prefix = "delta.constraints."
        return {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}

    def snapshot(self, handle: DeltaTable) -> Snapshot:
        return snapshot_of(handle)

    def appended(self, where: Locations, name: TableName, since: int, until: int) -> Snapshot:
        handle = delta_read.load(where, name, until)
        return appended(handle, str(name), since, until, where.storage_options)

    def scan(self, handle: DeltaTable) -> pa.Table:
        return delta_read.scan(handle)

    def figures(self, handle: DeltaTable) -> Figures:
        return figures_of(handle)

    def history(self, handle: DeltaTable, limit: int | None = None) -> list[dict[str, Any]]:
        return list(handle.history(limit))

    def commit_times(self, where: Locations, name: TableName) -> list[dict[str, int]]:
        return delta_read.commit_times(where, name)

    def transaction_version(self, handle: DeltaTable, app_id: str) -> int | None:
        found = handle.transaction_version(app_id)
        return None if found is None else int(found)

    def transactions(self, handle: DeltaTable) -> dict[str, int]:
        apps = delta_read.transactions_after(handle, -1)
        found = {app: handle.transaction_version(app) for app in apps}
        return {app: int(n) for app, n in found.items() if n is not None}

    def transactions_at(
        self, where: Locations, name: TableName, version: int, apps: list[str]
    ) -> dict[str, int | None] | None:
        return delta_read.transactions_at(where, name, version, apps)

    def transactions_after(self, handle: DeltaTable, version: int) -> set[str]:
        return delta_read.transactions_after(handle, version)

    # -- commits ------------------------------------------------------------------------
    def commit(
        self,
        operation: str,
        transactions: list[tuple[str, int]] | None = None,
        max_retries: int | None = None,
    ) -> CommitProperties:
        extra: dict[str, Any] = {}
        if max_retries is not None:
            extra["max_commit_retries"] = max_retries
        marks = [Transaction(app, n) for app, n in transactions or []]
        return commit_properties(operation, app_transactions=marks or None, **extra)

    # -- writing ------------------------------------------------------------------------
    def create(
        self, storage: Storage, name: TableName, plan: SchemaPlan, opts: TableOptions
    ) -> DeltaTable:
        return delta_write.create(storage, name, plan, opts)

    def evolve(self, handle: DeltaTable, plan: SchemaPlan, opts: TableOptions) -> None:
        delta_write.widen(handle, plan, writer_properties(opts.compression))

    def append(self, job: WriteJob[DeltaTable, CommitProperties]) -> Written:
        return delta_write.append(job)

    def overwrite(self, job: WriteJob[DeltaTable, CommitProperties]) -> Written:
        return delta_write.overwrite(job)

    def replace_where(self, job: WriteJob[DeltaTable, CommitProperties], predicate: str) -> Written:
        return delta_write.replace_where(job, predicate)

    def merge(self, job: WriteJob[DeltaTable, CommitProperties], keys: list[str]) -> Written:
        return delta_write.merge(job, keys)

    def delete(
        self, handle: DeltaTable, predicate: str | None, compression: str | None
    ) -> dict[str, Any]:
        with _refusals():
            metrics = handle.delete(
                predicate,
                writer_properties=writer_properties(compression),
                commit_properties=commit_properties("delete"),
            )
        return dict(metrics)

    def restore(self, handle: DeltaTable, version: int, commit: CommitProperties) -> None:
        try:
            handle.restore(version, commit_properties=commit)
        except DeltaError as exc:
            raise FormatError(str(exc)) from exc

    def add_constraint(self, handle: DeltaTable, name: str, expression: str) -> None:
        try:
            handle.alter.add_constraint(
                {name: expression}, commit_properties=commit_properties("constraint")
            )
        except DeltaError as exc:
            raise FormatError(str(exc)) from exc

    def drop_constraint(self, handle: DeltaTable, name: str) -> None:
        try:
            handle.alter.drop_constraint(name, raise_if_not_exists=True)
        except DeltaError as exc:
            raise FormatError(str(exc)) from exc

    # -- maintenance ----------------------------------------------------------------------
    def optimize(
        self, handle: DeltaTable, target_size: int | None, compression: str | None
    ) -> dict[str, Any]:
        with _refusals():
            metrics = handle.optimize.compact(
                target_size=target_size or TARGET_FILE_BYTES,
                writer_properties=writer_properties(compression),
                commit_properties=commit_properties("optimize"),
            )
        return dict(metrics)

    def zorder(
        self, handle: DeltaTable, columns: list[str], compression: str | None
    ) -> dict[str, Any]:
        with _refusals():
            metrics = handle.optimize.z_order(
                columns,
                target_size=TARGET_FILE_BYTES,
                writer_properties=writer_properties(compression),
                commit_properties=commit_properties("zorder"),
            )
        return dict(metrics)

    def vacuum(
        self, handle: DeltaTable, retain_hours: int, dry_run: bool, full: bool = True
    ) -> list[str]:
        # full=True also removes files no version ever referenced (left by killed writes).
        def run(dry: bool) -> list[str]:
            with _refusals():
                return list(
                    handle.vacuum(
                        retention_hours=retain_hours,
                        dry_run=dry,
                        enforce_retention_duration=False,
                        full=full,
                        commit_properties=commit_properties("vacuum"),
                    )
                )

        if not is_local(handle.table_uri):
            return run(dry_run)
        # The log keeps naming removed files after a vacuum deleted them: list those there.
        root = local_path(handle.table_uri)
        files = [f for f in run(True) if os.path.exists(os.path.join(root, f))]
        if files and not dry_run:
            run(False)
        return files

    def checkpoint(self, handle: DeltaTable) -> None:
        with _refusals():
            handle.create_checkpoint()

    def last_checkpoint(self, where: Locations, name: TableName) -> int | None:
        return delta_read.last_checkpoint(where, name)

    def oldest_readable(self, where: Locations, name: TableName) -> int | None:
        return delta_read.oldest_readable(where, name)


@contextmanager
def _refusals() -> Iterator[None]:
    """delta-rs's refusals as the format interface's: a commit conflict, or another."""
    try:
        yield
    except CommitFailedError as exc:
        raise CommitConflict(
            f"another writer committed meanwhile ({exc})",
            "nothing was changed; run it again",
        ) from exc
    except DeltaError as exc:
        raise FormatError(str(exc)) from exc


DELTA = DeltaFormat()
