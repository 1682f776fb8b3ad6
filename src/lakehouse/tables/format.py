"""The table format interface: what the lakehouse needs of a table format. Delta
(``delta_format.py``) is its first implementation; another format (Iceberg, say) is
another module implementing the same members."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pyarrow as pa

from lakehouse.config import TableOptions
from lakehouse.names import TableName
from lakehouse.storage import Locations, Storage
from lakehouse.tables.prepared import Prepared
from lakehouse.tables.schema import SchemaPlan
from lakehouse.tables.snapshot import Figures, Snapshot

Handle = TypeVar("Handle")
Commit = TypeVar("Commit")


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
    def version(self, handle: Handle) -> int:
        """The version ``handle`` shows."""

    @abstractmethod
    def schema(self, handle: Handle) -> pa.Schema:
        """The table's schema at that version."""

    @abstractmethod
    def snapshot(self, handle: Handle) -> Snapshot:
        """The version's live data files with their partition values and statistics, as
        the read path scans them."""

    @abstractmethod
    def figures(self, handle: Handle) -> Figures:
        """The version's row count, size and file count, as the catalog records them."""

    @abstractmethod
    def history(self, handle: Handle, limit: int | None = None) -> list[dict[str, Any]]:
        """The commits newest first, as the format records them."""

    @abstractmethod
    def transaction_version(self, handle: Handle, app_id: str) -> int | None:
        """The last transaction number committed for ``app_id``."""

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
        """Delete the rows matching ``predicate`` (all when None); the format's metrics."""

    @abstractmethod
    def restore(self, handle: Handle, version: int, commit: Commit) -> None:
        """Make the table's content that of ``version``, in a new commit."""

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
    def vacuum(self, handle: Handle, retain_hours: int, dry_run: bool) -> list[str]:
        """Remove the files no version within ``retain_hours`` needs."""
