"""The table format interface: what the lakehouse needs of a table format. Delta
(``delta_format.py``) and Iceberg (``iceberg_format.py``) implement it; ``formats.py``
chooses a table's."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pyarrow as pa

from lakehouse.config import TableOptions
from lakehouse.errors import LakehouseError
from lakehouse.names import TableName
from lakehouse.storage import Locations, Storage
from lakehouse.tables.prepared import Prepared
from lakehouse.tables.schema import SchemaPlan
from lakehouse.tables.snapshot import Figures, Snapshot

Handle = TypeVar("Handle")
Commit = TypeVar("Commit")


class NotAppendOnly(LakehouseError):
    """Rows were changed or removed in a range of versions, not only added."""

    def __init__(self, table: str, version: int, operation: str) -> None:
        super().__init__(
            f"{table} changed rows at version {version} ({operation}), not only added them",
            "recompute from the whole table (lakehouse run --full-refresh)",
        )
        self.version = version
        self.operation = operation


class FormatError(LakehouseError):
    """An operation the table format refused (a bad predicate, a restore it cannot make);
    the message is the format's own."""


class CommitConflict(FormatError):
    """A commit refused because another writer changed the table meanwhile; the table is
    at its last good version and the operation can be tried again."""


class Latest(ABC, Generic[Handle]):
    """Follows one table's newest version for a reader that asks often (the SQL engine
    asks on every query), as cheaply as the format allows."""

    @abstractmethod
    def newest(self) -> tuple[Handle, bool]:
        """The table at its newest version, and whether it is another table than the one
        returned last time (dropped and made again under the same name)."""

    @abstractmethod
    def stamp(self, version: int | None) -> Hashable:
        """What ``fresh`` needs to tell that ``version`` (the one a result was computed
        from) is still the newest."""

    @abstractmethod
    def fresh(self, stamp: Hashable) -> bool:
        """Whether the table is still at the version ``stamp`` was made for."""


@dataclass
class WriteJob(Generic[Handle, Commit]):
    """One attempt at writing prepared data to an open table."""

    handle: Handle
    prepared: Prepared
    plan: SchemaPlan
    opts: TableOptions
    commit: Commit
    local: bool


@dataclass
class Written:
    """The version a write committed, and the rows a merge inserted, updated, deleted."""

    version: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


class TableFormat(ABC, Generic[Handle, Commit]):
    """A table format: ``Handle`` is an open table at one version, ``Commit`` what a
    commit carries (its operation, user and transaction identifiers)."""

    name: str

    # -- reading ------------------------------------------------------------------------
    @abstractmethod
    def open(self, where: Locations, name: TableName, version: int | None = None) -> Handle | None:
        """The table at ``version`` (None: the latest); None if there is no table."""

    @abstractmethod
    def exists(self, where: Locations, name: TableName) -> bool:
        """Whether a table of this format lies at the table's location."""

    @abstractmethod
    def load(self, where: Locations, name: TableName, version: int | None = None) -> Handle:
        """The table at ``version`` (None: the latest) for a reader, or the reason it cannot
        be read: ``TableNotFoundError``, ``VersionNotFoundError`` (no such version, or its
        log or files are gone), ``UnsupportedFeatureError``, ``SQLError`` (unreadable)."""

    @abstractmethod
    def latest(self, where: Locations, name: TableName) -> Latest[Handle]:
        """A follower of the table's newest version."""

    @abstractmethod
    def refresh(self, handle: Handle) -> Handle:
        """The table of ``handle`` at its newest version (after a commit through it)."""

    @abstractmethod
    def version(self, handle: Handle) -> int:
        """The version ``handle`` shows."""

    @abstractmethod
    def schema(self, handle: Handle) -> pa.Schema:
        """The table's schema at that version."""

    @abstractmethod
    def partition_columns(self, handle: Handle) -> list[str]:
        """The columns the table is partitioned by."""

    @abstractmethod
    def constraints(self, handle: Handle) -> dict[str, str]:
        """The table's CHECK constraints by name."""

    @abstractmethod
    def snapshot(self, handle: Handle) -> Snapshot:
        """The version's live data files with their partition values and statistics, as
        the read path scans them."""

    @abstractmethod
    def appended(self, where: Locations, name: TableName, since: int, until: int) -> Snapshot:
        """The files holding the rows added after version ``since`` up to ``until``;
        raises ``NotAppendOnly`` if rows were changed or removed in between."""

    @abstractmethod
    def scan(self, handle: Handle) -> pa.Table:
        """Every row of the version, read by the format's own reader (for storage the
        engine does not read itself)."""

    @abstractmethod
    def figures(self, handle: Handle) -> Figures:
        """The version's row count, size and file count, as the catalog records them."""

    @abstractmethod
    def history(self, handle: Handle, limit: int | None = None) -> list[dict[str, Any]]:
        """The commits newest first, as the format records them."""

    @abstractmethod
    def commit_times(self, where: Locations, name: TableName) -> list[dict[str, int]]:
        """``version`` and ``timestamp`` (ms) of each commit that can still be read, even
        when the latest version cannot be opened."""

    @abstractmethod
    def transaction_version(self, handle: Handle, app_id: str) -> int | None:
        """The last transaction number committed for ``app_id``."""

    @abstractmethod
    def transactions(self, handle: Handle) -> dict[str, int]:
        """Every application's last transaction number at the version (what can still be
        told: for Delta, the apps of commits not cleaned up)."""

    @abstractmethod
    def transactions_at(
        self, where: Locations, name: TableName, version: int, apps: list[str]
    ) -> dict[str, int | None] | None:
        """The transaction numbers the table held for ``apps`` at ``version`` (None for an
        app: none committed); None if that version can no longer be read."""

    @abstractmethod
    def transactions_after(self, handle: Handle, version: int) -> set[str]:
        """The application ids committed after ``version`` up to ``handle``'s (what can
        still be told: commits cleaned up are not)."""

    # -- commits ------------------------------------------------------------------------
    @abstractmethod
    def commit(
        self,
        operation: str,
        transactions: list[tuple[str, int]] | None = None,
        max_retries: int | None = None,
    ) -> Commit:
        """What a commit of ``operation`` carries, with transaction identifiers (app id,
        number) that make it idempotent."""

    # -- writing ------------------------------------------------------------------------
    @abstractmethod
    def create(
        self, storage: Storage, name: TableName, plan: SchemaPlan, opts: TableOptions
    ) -> Handle:
        """Version 0 of a table: its schema and partitioning, no rows."""

    @abstractmethod
    def evolve(self, handle: Handle, plan: SchemaPlan, opts: TableOptions) -> None:
        """Widen the column types ``plan`` widens (new columns come with the write)."""

    @abstractmethod
    def append(self, job: WriteJob[Handle, Commit]) -> Written:
        """Add the rows of a prepared write."""

    @abstractmethod
    def overwrite(self, job: WriteJob[Handle, Commit]) -> Written:
        """Replace the table's rows with those of a prepared write."""

    @abstractmethod
    def replace_where(self, job: WriteJob[Handle, Commit], predicate: str) -> Written:
        """Replace the rows matching ``predicate`` with those of a prepared write."""

    @abstractmethod
    def merge(self, job: WriteJob[Handle, Commit], keys: list[str]) -> Written:
        """Upsert the rows of a prepared write on ``keys``."""

    @abstractmethod
    def delete(
        self, handle: Handle, predicate: str | None, compression: str | None
    ) -> dict[str, Any]:
        """Delete the rows matching ``predicate`` (all when None); the format's metrics.
        Raises ``FormatError`` when the format refuses."""

    @abstractmethod
    def restore(self, handle: Handle, version: int, commit: Commit) -> None:
        """Make the table's content that of ``version``, in a new commit. Raises
        ``FormatError`` when the format refuses."""

    @abstractmethod
    def add_constraint(self, handle: Handle, name: str, expression: str) -> None:
        """A CHECK constraint every row must satisfy; ``FormatError`` if one does not."""

    @abstractmethod
    def drop_constraint(self, handle: Handle, name: str) -> None:
        """Remove a CHECK constraint; ``FormatError`` if there is none of that name."""

    def forget(self, where: Locations, name: TableName) -> None:
        """Drop the table from the format's own catalog, if it keeps one (its files are
        removed by the caller)."""

    # -- maintenance ----------------------------------------------------------------------
    @abstractmethod
    def optimize(
        self, handle: Handle, target_size: int | None, compression: str | None
    ) -> dict[str, Any]:
        """Compact small files into larger ones."""

    @abstractmethod
    def zorder(self, handle: Handle, columns: list[str], compression: str | None) -> dict[str, Any]:
        """Rewrite the files clustered on ``columns``."""

    @abstractmethod
    def vacuum(
        self, handle: Handle, retain_hours: int, dry_run: bool, full: bool = True
    ) -> list[str]:
        """Remove the files no version within ``retain_hours`` needs; with ``full``, also
        files no version ever referenced (left by killed writers) older than that."""

    @abstractmethod
    def checkpoint(self, handle: Handle) -> None:
        """Write a checkpoint of the version, so readers load it without replaying the
        log."""

    @abstractmethod
    def last_checkpoint(self, where: Locations, name: TableName) -> int | None:
        """The version of the table's latest checkpoint; None if it has none."""

    @abstractmethod
    def oldest_readable(self, where: Locations, name: TableName) -> int | None:
        """The oldest version from which on every version's files are all still there
        (vacuum removes the files of older ones); None if not even the latest is."""
