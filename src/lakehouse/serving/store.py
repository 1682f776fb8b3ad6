"""One connection to the serving store through clickhouse-connect, which speaks to both
kinds: ClickHouse in this process (chDB, ``chdb:///folder``) and a ClickHouse server
(``http(s)://host:port``). Each mirror table's comment records what it holds."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.names import LAYERS
from lakehouse.serving.types import quote_name

STAGE = "__lh_stage_"  # the prefix of a mirror being built (never read)
MARK = "lakehouse_mirror"
READERS = 4  # queries the store runs at once


class ServingError(LakehouseError):
    """The serving store could not be reached or refused a statement."""


@dataclass(frozen=True)
class Held:
    """What one mirror table holds: the version of each table it was made from."""

    table: str
    versions: dict[str, int]
    rows: int
    refreshed_at: str

    def comment(self) -> str:
        return json.dumps(
            {MARK: 1, "versions": self.versions, "rows": self.rows, "at": self.refreshed_at},
            sort_keys=True,
        )

    @staticmethod
    def parse(table: str, text: str) -> Held | None:
        try:
            found = json.loads(text)
        except ValueError:
            return None
        if not isinstance(found, dict) or found.get(MARK) != 1:
            return None
        versions = {str(k): int(v) for k, v in (found.get("versions") or {}).items()}
        return Held(table, versions, int(found.get("rows", 0)), str(found.get("at", "")))


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def table_ref(name: str) -> str:
    layer, table = name.split(".", 1)
    return f"{quote_name(layer)}.{quote_name(table)}"


def string_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Store:
    """The serving store: one connection for the statements that change it (one at a
    time), and up to ``readers`` more for queries, which run side by side (chDB runs
    queries of several connections in parallel; a server gives each its own session)."""

    def __init__(self, dsn: str, readers: int = READERS) -> None:
        self.dsn = dsn
        self.embedded = dsn.startswith("chdb:")
        self._lock = threading.Lock()
        self._client: Any = self._connect()
        self._databases: set[str] = set()
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()  # idle reading connections
        self._opened: list[Any] = []
        self._slots = threading.BoundedSemaphore(readers)
        self._closed = False

    def _connect(self) -> Any:
        import clickhouse_connect

        try:
            return clickhouse_connect.get_client(dsn=self.dsn)
        except Exception as exc:  # noqa: BLE001 - any failure to connect, said plainly
            raise ServingError(
                f"the serving store at {_shown(self.dsn)} cannot be reached: {_reason(exc)}",
                "start the ClickHouse server or fix LAKEHOUSE_SERVING_URL"
                if not self.embedded
                else "another process may hold it: see `lakehouse serving status`",
            ) from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._client.close()
            for reader in self._opened:
                reader.close()
            self._opened.clear()

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A reading connection for one query (opened the first time one is short)."""
        with self._slots:
            try:
                client = self._free.get_nowait()
            except queue.Empty:
                with self._lock:
                    if self._closed:
                        raise ServingError("the serving store was closed") from None
                    client = self._connect()
                    self._opened.append(client)
            try:
                yield client
            finally:
                self._free.put(client)

    # -- statements ---------------------------------------------------------------------
    def command(self, sql: str) -> None:
        with self._lock:
            try:
                self._client.command(sql)
            except Exception as exc:  # noqa: BLE001
                raise ServingError(
                    f"the serving store refused a statement: {_reason(exc)}"
                ) from exc

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """A SELECT in ClickHouse's dialect; ``params`` bound to ``{name:Type}`` holes."""
        with self._reading() as client:
            try:
                table: pa.Table = client.query_arrow(sql, parameters=params or {})
            except Exception as exc:  # noqa: BLE001
                raise ServingError(
                    f"the serving store could not run the query: {_reason(exc)}",
                    "serving SQL is ClickHouse's dialect; mirrors are named layer.table",
                ) from exc
        return table

    def insert_arrow(self, name: str, table: pa.Table) -> None:
        with self._lock:
            try:
                self._client.insert_arrow(name, table)
            except Exception as exc:  # noqa: BLE001
                raise ServingError(f"the serving store refused rows: {_reason(exc)}") from exc

    def ensure_database(self, layer: str) -> None:
        if layer not in self._databases:
            self.command(f"CREATE DATABASE IF NOT EXISTS {quote_name(layer)}")
            self._databases.add(layer)

    # -- what it holds --------------------------------------------------------------------
    def held(self) -> dict[str, Held]:
        return held_in(self.query)

    def stages(self) -> list[str]:
        return stages_in(self.query)


Query = Callable[[str, dict[str, Any] | None], pa.Table]


def held_in(query: Query) -> dict[str, Held]:
    """Every mirror table of the store ``query`` reaches and what it holds."""
    layers = ", ".join(string_literal(layer) for layer in LAYERS)
    rows = query(
        f"SELECT database, name, comment FROM system.tables WHERE database IN ({layers})", None
    ).to_pylist()
    out = {}
    for row in rows:
        if row["name"].startswith(STAGE):
            continue
        name = f"{row['database']}.{row['name']}"
        found = Held.parse(name, row["comment"] or "")
        if found is not None:
            out[name] = found
    return out


def stages_in(query: Query) -> list[str]:
    """Mirror tables left half-built (by a refresh that was killed)."""
    layers = ", ".join(string_literal(layer) for layer in LAYERS)
    rows = query(
        f"SELECT database, name FROM system.tables WHERE database IN ({layers}) "
        f"AND startsWith(name, {string_literal(STAGE)})",
        None,
    ).to_pylist()
    return [f"{r['database']}.{r['name']}" for r in rows]


def _shown(dsn: str) -> str:
    """A DSN without its password."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return dsn


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
