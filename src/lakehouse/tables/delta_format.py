"""Delta Lake, the first implementation of the table format interface (``format.py``),
on delta-rs."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction

from lakehouse.config import TableOptions
from lakehouse.names import TableName
from lakehouse.storage import Locations, Storage
from lakehouse.tables import delta_write
from lakehouse.tables.commits import commit_properties
from lakehouse.tables.encoding import TARGET_FILE_BYTES, writer_properties
from lakehouse.tables.format import TableFormat, WriteJob, Written
from lakehouse.tables.handles import open_delta
from lakehouse.tables.schema import SchemaPlan
from lakehouse.tables.snapshot import Figures, Snapshot, figures_of, snapshot_of


class DeltaFormat(TableFormat[DeltaTable, CommitProperties]):
    name = "delta"

    # -- reading ------------------------------------------------------------------------
    def open(
        self, where: Locations, name: TableName, version: int | None = None
    ) -> DeltaTable | None:
        return open_delta(where, name, version)

    def version(self, handle: DeltaTable) -> int:
        return int(handle.version())

    def schema(self, handle: DeltaTable) -> pa.Schema:
        return pa.schema(handle.schema().to_arrow())

    def snapshot(self, handle: DeltaTable) -> Snapshot:
        return snapshot_of(handle)

    def figures(self, handle: DeltaTable) -> Figures:
        return figures_of(handle)

    def history(self, handle: DeltaTable, limit: int | None = None) -> list[dict[str, Any]]:
        return list(handle.history(limit))

    def transaction_version(self, handle: DeltaTable, app_id: str) -> int | None:
        found = handle.transaction_version(app_id)
        return None if found is None else int(found)

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
        metrics = handle.delete(
            predicate,
            writer_properties=writer_properties(compression),
            commit_properties=commit_properties("delete"),
        )
        return dict(metrics)

    def restore(self, handle: DeltaTable, version: int, commit: CommitProperties) -> None:
        handle.restore(version, commit_properties=commit)

    # -- maintenance ----------------------------------------------------------------------
    def optimize(
        self, handle: DeltaTable, target_size: int | None, compression: str | None
    ) -> dict[str, Any]:
        metrics = handle.optimize.compact(
            target_size=target_size or TARGET_FILE_BYTES,
            writer_properties=writer_properties(compression),
            commit_properties=commit_properties("optimize"),
        )
        return dict(metrics)

    def zorder(
        self, handle: DeltaTable, columns: list[str], compression: str | None
    ) -> dict[str, Any]:
        metrics = handle.optimize.z_order(
            columns,
            target_size=TARGET_FILE_BYTES,
            writer_properties=writer_properties(compression),
            commit_properties=commit_properties("zorder"),
        )
        return dict(metrics)

    def vacuum(self, handle: DeltaTable, retain_hours: int, dry_run: bool) -> list[str]:
        # full=True also removes files no version ever referenced (left by killed writes).
        files = handle.vacuum(
            retention_hours=retain_hours,
            dry_run=dry_run,
            enforce_retention_duration=False,
            full=True,
            commit_properties=commit_properties("vacuum"),
        )
        return list(files)


DELTA = DeltaFormat()
