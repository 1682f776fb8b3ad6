"""Apache Iceberg, the second implementation of the table format interface (``format.py``),
on pyiceberg: its SQL catalog lives in the warehouse's catalog database, the data under the
table's usual location. Versions are snapshots numbered by the platform
(``iceberg_tables.py``); every change is copy-on-write (``iceberg_write.py``), so the read
path reads a version's data files as plain parquet."""

from __future__ import annotations

import os
import time
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from lakehouse.config import TableOptions
from lakehouse.errors import TableNotFoundError, VersionNotFoundError
from lakehouse.names import TableName
from lakehouse.storage import Locations, Storage
from lakehouse.tables import iceberg_write
from lakehouse.tables.encoding import TARGET_FILE_BYTES
from lakehouse.tables.format import (
    FormatError,
    Latest,
    NotAppendOnly,
    TableFormat,
    WriteJob,
    Written,
)
from lakehouse.tables.iceberg_files import live_files, path_of, snapshot_of
from lakehouse.tables.iceberg_tables import (
    CONSTRAINT,
    OPERATION,
    OPTIONS,
    USER,
    IcebergHandle,
    arrow_schema,
    at_version,
    catalog_of,
    chain,
    ident,
    metadata_location,
    on_disk,
    open_table,
    properties,
    transactions,
    version_of,
)
from lakehouse.tables.iceberg_write import IcebergCommit, partition_names
from lakehouse.tables.schema import SchemaPlan
from lakehouse.tables.snapshot import Figures, Snapshot, is_local, local_path

IcebergJob = WriteJob[IcebergHandle, IcebergCommit]

# The platform's operations under the names Delta's history gives them.
_OPERATIONS = {
    "merge": "MERGE",
    "delete": "DELETE",
    "restore": "RESTORE",
    "optimize": "OPTIMIZE",
    "zorder": "OPTIMIZE",
    "widen": "WRITE",
}


class IcebergLatest(Latest[IcebergHandle]):
    """Follows the newest version through the catalog's metadata location: while it is
    the one the held table was loaded from, the table is not loaded again (a query then
    costs one catalog row read, not the metadata file's)."""

    def __init__(self, where: Locations, name: TableName) -> None:
        self.where = where
        self.name = name
        self._uuid: str | None = None
        self._handle: IcebergHandle | None = None
        self._location: str | None = None

    def newest(self) -> tuple[IcebergHandle, bool]:
        held = self._handle
        if held is not None and metadata_location(self.where, self.name) == self._location:
            return held, False
        handle = ICEBERG.load(self.where, self.name)
        uuid = str(handle.table.metadata.table_uuid)
        other = self._uuid is not None and uuid != self._uuid
        self._uuid = uuid
        self._handle, self._location = handle, str(handle.table.metadata_location)
        return handle, other

    def stamp(self, version: int | None) -> Hashable:
        return ("metadata", self._location, version)

    def fresh(self, stamp: Hashable) -> bool:
        assert isinstance(stamp, tuple)
        location = stamp[1]
        return location is not None and metadata_location(self.where, self.name) == location


class IcebergFormat(TableFormat[IcebergHandle, IcebergCommit]):
    name = "iceberg"

    # -- reading ------------------------------------------------------------------------
    def open(
        self, where: Locations, name: TableName, version: int | None = None
    ) -> IcebergHandle | None:
        table = open_table(where, name)
        return None if table is None else at_version(table, name, version)

    def exists(self, where: Locations, name: TableName) -> bool:
        return on_disk(where, name)

    def load(self, where: Locations, name: TableName, version: int | None = None) -> IcebergHandle:
        table = open_table(where, name)
        if table is None:
            raise TableNotFoundError(str(name))
        return at_version(table, name, version)

    def latest(self, where: Locations, name: TableName) -> Latest[IcebergHandle]:
        return IcebergLatest(where, name)

    def refresh(self, handle: IcebergHandle) -> IcebergHandle:
        table = handle.table.refresh()
        return IcebergHandle(table, table.current_snapshot(), latest=True)

    def version(self, handle: IcebergHandle) -> int:
        return handle.version

    def schema(self, handle: IcebergHandle) -> pa.Schema:
        return arrow_schema(handle)

    def partition_columns(self, handle: IcebergHandle) -> list[str]:
        return partition_names(handle)

    def constraints(self, handle: IcebergHandle) -> dict[str, str]:
        props = handle.table.properties
        return {k.removeprefix(CONSTRAINT): v for k, v in props.items() if k.startswith(CONSTRAINT)}

    def snapshot(self, handle: IcebergHandle) -> Snapshot:
        return snapshot_of(handle)

    def appended(self, where: Locations, name: TableName, since: int, until: int) -> Snapshot:
        """The files live at ``until`` but not at ``since``, when every snapshot between
        only added rows: it removed no file, or was a restore that kept every file of
        ``since`` (a failed run rolled back), or a compaction of files added since."""
        later = self.load(where, name, until)
        start = {str(f.file_path) for f in live_files(self.load(where, name, since))}
        before = set(start)
        for snap in chain(later.table):
            version = version_of(snap)
            if not since < version <= until:
                continue
            now = {str(f.file_path) for f in live_files(at_version(later.table, name, version))}
            removed = before - now
            operation = properties(snap).get(OPERATION) or "unknown"
            fine = (
                not removed
                or (operation == "restore" and start <= now)
                or (operation in ("optimize", "zorder") and not removed & start)
            )
            if not fine:
                raise NotAppendOnly(str(name), version, operation)
            before = now
        full = snapshot_of(later)
        kept = {path_of(f) for f in live_files(later) if str(f.file_path) not in start}
        return Snapshot(
            version=full.version,
            schema=full.schema,
            partition_columns=(),
            files=tuple(f for f in full.files if f.path in kept),
            direct=full.direct,
            mapping=full.mapping,
            root=full.root,
        )

    def scan(self, handle: IcebergHandle) -> pa.Table:
        if handle.snapshot is None:
            return arrow_schema(handle).empty_table()
        table = handle.table.scan(snapshot_id=handle.snapshot.snapshot_id).to_arrow()
        return table.cast(arrow_schema(handle))

    def figures(self, handle: IcebergHandle) -> Figures:
        files = live_files(handle)
        return Figures(
            version=handle.version,
            schema=arrow_schema(handle),
            row_count=sum(int(f.record_count) for f in files),
            size_bytes=sum(int(f.file_size_in_bytes) for f in files),
            num_files=len(files),
        )

    def history(self, handle: IcebergHandle, limit: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        snaps = chain(handle.table)
        if handle.snapshot is not None:
            snaps = [s for s in snaps if version_of(s) <= handle.version]
        else:
            snaps = []
        for snap in reversed(snaps):
            props = properties(snap)
            out.append(
                {
                    "version": version_of(snap),
                    "timestamp": snap.timestamp_ms,
                    "operation": _OPERATIONS.get(props.get(OPERATION) or "", "WRITE"),
                    "lakehouse.operation": props.get(OPERATION),
                    "operationParameters": _parameters(props.get(OPERATION)),
                    "operationMetrics": {
                        k: v for k, v in props.items() if not k.startswith("lakehouse.")
                    },
                    "lakehouse.user": props.get(USER),
                    "snapshot_id": snap.snapshot_id,
                }
            )
        if not snaps or version_of(snaps[0]) == 1:
            out.append(
                {
                    "version": 0,
                    "timestamp": _created_ms(handle),
                    "operation": "CREATE TABLE",
                    "lakehouse.operation": "create",
                    "operationParameters": {},
                    "operationMetrics": {},
                    "lakehouse.options": handle.table.properties.get(OPTIONS),
                }
            )
        return out[:limit] if limit is not None else out

    def commit_times(self, where: Locations, name: TableName) -> list[dict[str, int]]:
        table = open_table(where, name)
        if table is None:
            return []
        snaps = chain(table)
        out = [{"version": version_of(s), "timestamp": int(s.timestamp_ms)} for s in snaps]
        if not snaps or version_of(snaps[0]) == 1:
            out.insert(0, {"version": 0, "timestamp": _created_ms(at_version(table, name, 0))})
        return out

    def transaction_version(self, handle: IcebergHandle, app_id: str) -> int | None:
        return transactions(handle.snapshot).get(app_id)

    def transactions(self, handle: IcebergHandle) -> dict[str, int]:
        return transactions(handle.snapshot)

    def transactions_at(
        self, where: Locations, name: TableName, version: int, apps: list[str]
    ) -> dict[str, int | None] | None:
        try:
            handle = self.load(where, name, version)
        except VersionNotFoundError:
            return None
        held = transactions(handle.snapshot)
        return {app: held.get(app) for app in apps}

    def transactions_after(self, handle: IcebergHandle, version: int) -> set[str]:
        then: dict[str, int] = {}
        for snap in chain(handle.table):
            if version_of(snap) == version:
                then = transactions(snap)
        now = transactions(handle.snapshot)
        return {app for app, n in now.items() if then.get(app) != n}

    # -- commits ------------------------------------------------------------------------
    def commit(
        self,
        operation: str,
        transactions: list[tuple[str, int]] | None = None,
        max_retries: int | None = None,
    ) -> IcebergCommit:
        return IcebergCommit(operation, list(transactions or []))

    # -- writing ------------------------------------------------------------------------
    def create(
        self, storage: Storage, name: TableName, plan: SchemaPlan, opts: TableOptions
    ) -> IcebergHandle:
        return iceberg_write.create(storage, name, plan, opts)

    def evolve(self, handle: IcebergHandle, plan: SchemaPlan, opts: TableOptions) -> None:
        iceberg_write.evolve(handle, plan)

    def append(self, job: IcebergJob) -> Written:
        return iceberg_write.append(job)

    def overwrite(self, job: IcebergJob) -> Written:
        return iceberg_write.overwrite(job)

    def replace_where(self, job: IcebergJob, predicate: str) -> Written:
        return iceberg_write.replace_where(job, predicate)

    def merge(self, job: IcebergJob, keys: list[str]) -> Written:
        return iceberg_write.merge(job, keys)

    def delete(
        self, handle: IcebergHandle, predicate: str | None, compression: str | None
    ) -> dict[str, Any]:
        try:
            return dict(iceberg_write.delete(handle, predicate))
        except duckdb.Error as exc:  # the predicate's SQL
            raise FormatError(str(exc)) from exc

    def restore(self, handle: IcebergHandle, version: int, commit: IcebergCommit) -> None:
        name = iceberg_write.table_name(handle)
        try:
            old = at_version(handle.table, name, version)
        except VersionNotFoundError as exc:
            raise FormatError(str(exc)) from exc
        iceberg_write.restore(handle, old, commit)

    def add_constraint(self, handle: IcebergHandle, name: str, expression: str) -> None:
        rows = self.scan(handle)
        try:
            iceberg_write.check_constraints({CONSTRAINT + name: expression}, rows)
        except Exception as exc:
            raise FormatError(str(exc)) from exc
        with handle.table.transaction() as tx:
            tx.set_properties({CONSTRAINT + name: expression})

    def drop_constraint(self, handle: IcebergHandle, name: str) -> None:
        if CONSTRAINT + name not in handle.table.properties:
            raise FormatError(f"no constraint {name}")
        with handle.table.transaction() as tx:
            tx.remove_properties(CONSTRAINT + name)

    def forget(self, where: Locations, name: TableName) -> None:
        catalog = catalog_of(where)
        if catalog.table_exists(ident(name)):
            catalog.drop_table(ident(name))

    # -- maintenance ----------------------------------------------------------------------
    def optimize(
        self, handle: IcebergHandle, target_size: int | None, compression: str | None
    ) -> dict[str, Any]:
        return iceberg_write.rewrite(handle, "optimize", None, target_size or TARGET_FILE_BYTES)

    def zorder(
        self, handle: IcebergHandle, columns: list[str], compression: str | None
    ) -> dict[str, Any]:
        return iceberg_write.rewrite(handle, "zorder", columns, TARGET_FILE_BYTES)

    def vacuum(
        self, handle: IcebergHandle, retain_hours: int, dry_run: bool, full: bool = True
    ) -> list[str]:
        """Expire the snapshots older than ``retain_hours`` (never the current one), then
        remove the data files no kept snapshot references; with ``full``, also files no
        snapshot ever referenced, once older than that."""
        table = handle.table
        cutoff = datetime.now(UTC) - timedelta(hours=retain_hours)
        cutoff_ms = int(cutoff.timestamp() * 1000)
        snaps = chain(table)
        current = table.current_snapshot()
        expired = [
            s
            for s in snaps
            if s.timestamp_ms < cutoff_ms and current is not None and s is not current
        ]
        io = table.io

        def referenced(kept: list[Any]) -> set[str]:
            # Each manifest read once: snapshots share most of theirs.
            out: set[str] = set()
            seen: set[str] = set()
            for s in kept:
                for manifest in s.manifests(io):
                    if manifest.manifest_path in seen:
                        continue
                    seen.add(manifest.manifest_path)
                    entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
                    out |= {path_of(e.data_file) for e in entries}
            return out

        before = referenced(snaps)
        after = referenced([s for s in snaps if s not in expired])
        candidates = before - after
        if full and is_local(handle.location):
            root = os.path.join(local_path(handle.location), "data")
            for folder, _, names in os.walk(root):
                for file in names:
                    path = os.path.join(folder, file)
                    if path not in before and os.path.getmtime(path) * 1000 < cutoff_ms:
                        candidates.add(path)
        removed = sorted(candidates)
        if dry_run:
            return removed
        if expired:
            expire = table.maintenance.expire_snapshots()
            expire.by_ids([s.snapshot_id for s in expired]).commit()
        for path in removed:
            if is_local(path):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
            else:
                table.io.delete(path)
        return removed

    def checkpoint(self, handle: IcebergHandle) -> None:
        """Iceberg metadata needs no checkpoint: each version is one metadata file."""

    def last_checkpoint(self, where: Locations, name: TableName) -> int | None:
        """Every Iceberg version is read from its own metadata file, as from a checkpoint:
        the latest version is always checkpointed."""
        table = open_table(where, name)
        return None if table is None else version_of(table.current_snapshot())

    def oldest_readable(self, where: Locations, name: TableName) -> int | None:
        table = open_table(where, name)
        if table is None:
            return None
        snaps = chain(table)
        if not snaps:
            return 0
        first = version_of(snaps[0])
        return 0 if first == 1 else first


def _parameters(operation: str | None) -> dict[str, str]:
    """A write's mode, as Delta's history gives it."""
    modes = {"append": "Append", "overwrite": "Overwrite"}
    return {"mode": modes[operation]} if operation in modes else {}


def _created_ms(handle: IcebergHandle) -> int:
    log = handle.table.metadata.metadata_log
    if log:
        return int(log[0].timestamp_ms)
    return int(handle.table.metadata.last_updated_ms or time.time() * 1000)


ICEBERG = IcebergFormat()
