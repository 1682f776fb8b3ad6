"""The engine interface: what the table handles, the SQL read path, the API and the
pipeline runner need of a SQL engine. DuckDB's ``SQLEngine`` (``engine.py``) is its first
implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pyarrow as pa

from lakehouse.sql.result import Result
from lakehouse.sql.sandbox import SafeResult
from lakehouse.tables.snapshot import Snapshot


class Engine(ABC):
    # -- queries --------------------------------------------------------------------------
    @abstractmethod
    def query(self, sql: str, tables: dict[str, str] | None = None) -> Result:
        """Run ``sql``; ``tables`` maps table names to the views to read instead."""

    @abstractmethod
    def prepare(self, sql: str, tables: dict[str, str] | None = None) -> tuple[str, list[str]]:
        """``sql`` with its table names turned into the views ``query`` would read, and the
        references that name no table."""

    @abstractmethod
    def cursor(self) -> Any:
        """This thread's connection: Arrow registered on it, SELECTs run and streamed as
        record batches, files written by it."""

    # -- pinned inputs --------------------------------------------------------------------
    @abstractmethod
    def version_view(self, name: str, version: int) -> str:
        """A view of one version of a table."""

    @abstractmethod
    def changes_view(self, name: str, since: int, until: int) -> str:
        """A view of the rows a table gained after version ``since`` up to ``until``."""

    @abstractmethod
    def pinned(self, view: str) -> Snapshot | None:
        """The files a view of ``version_view`` or ``changes_view`` reads, for another
        engine to read the same rows (None: not such a view)."""

    @abstractmethod
    def row_count(self, view: str) -> int:
        """The number of rows of a view ``version_view`` or ``changes_view`` returned."""

    # -- tables ---------------------------------------------------------------------------
    @abstractmethod
    def read(self, name: str, version: int | None = None) -> pa.Table:
        """A whole table version as Arrow, through the reader path SQL uses."""

    @abstractmethod
    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        """The files of a table version the reader path scans."""

    @abstractmethod
    def resolve_version(self, name: str, version: int | None, ts: datetime | None) -> int:
        """``version``, or the version current at ``ts``."""

    @abstractmethod
    def suggest(self, name: str, can_read: Callable[[str], bool] | None = None) -> list[str]:
        """Tables named like ``name`` (that ``can_read`` allows)."""

    @abstractmethod
    def forget(self, name: str) -> None:
        """Drop what the engine holds of a table that no longer exists."""

    # -- the API's read-only path -----------------------------------------------------------
    @abstractmethod
    def lock_down(self) -> None:
        """From now on the engine reads the warehouse's files only and cannot be changed."""

    @abstractmethod
    def safe_query(
        self,
        sql: str,
        *,
        limit: int = 1000,
        timeout: float = 30.0,
        masked: Callable[[str], list[str]] | None = None,
        can_read: Callable[[str], bool] | None = None,
        params: dict[str, Any] | None = None,
    ) -> SafeResult:
        """One checked read-only statement, limited in rows and time, its result cached;
        ``params`` are bound to its named parameters (``$name``) by the engine."""

    @abstractmethod
    def cached_query(
        self,
        sql: str,
        *,
        limit: int = 1000,
        masked: Callable[[str], list[str]] | None = None,
        can_read: Callable[[str], bool] | None = None,
        params: dict[str, Any] | None = None,
    ) -> SafeResult | None:
        """``safe_query``'s answer if the cache holds it, else None."""

    @abstractmethod
    def cache_clear(self) -> None:
        """Forget every result ``safe_query`` keeps."""
