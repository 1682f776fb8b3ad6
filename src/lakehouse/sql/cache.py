"""The result cache of sandboxed statements: in memory, least recently used out first,
bounded by bytes.

An entry is one statement text, row limit, set of masked columns and set of bound
parameters; it remembers a stamp of
every table it read (the table version it saw, or a view's definition) and is served only
while each stamp still holds, so a new version of any of those tables retires it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

DEFAULT_MAX_BYTES = 256 * 2**20

# (sql text, row limit, masked columns per table, bound parameters: () when none)
Key = tuple[str, int, tuple[tuple[str, tuple[str, ...]], ...], tuple[tuple[str, str], ...]]


def params_key(params: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """The parameters bound to a statement as part of a cache key: each name with its
    value's type and text (so 1 and '1' differ)."""
    if not params:
        return ()
    return tuple(sorted((name, f"{type(v).__name__}:{v!r}") for name, v in params.items()))


@dataclass(frozen=True)
class Reads:
    """The tables a statement text names, and every table it reads (through views too)."""

    named: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    table: pa.Table
    truncated: bool
    stamps: tuple[tuple[str, Hashable], ...]  # (table, what it was when read)
    nbytes: int


class ResultCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._reads: dict[str, Reads] = {}
        self._per_sql: dict[str, int] = {}  # entries per statement text
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def reads(self, sql: str) -> Reads | None:
        """What a cached statement text read, to build its key before running anything."""
        return self._reads.get(sql)

    def get(self, key: Key, fresh: Callable[[str, Hashable], bool]) -> Entry | None:
        """The entry, if every table it read is still as it was; a stale one is dropped."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        if all(fresh(name, stamp) for name, stamp in entry.stamps):
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
            return entry
        with self._lock:
            if self._entries.get(key) is entry:
                self._drop(key)
        return None

    def put(
        self,
        key: Key,
        reads: Reads,
        table: pa.Table,
        truncated: bool,
        stamps: tuple[tuple[str, Hashable], ...],
    ) -> bool:
        """Keep a result; False when it is larger than the whole cache."""
        nbytes = table.get_total_buffer_size() + len(key[0]) + 200
        if nbytes > self.max_bytes:
            return False
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = Entry(table, truncated, stamps, nbytes)
            self.bytes += nbytes
            self._reads[key[0]] = reads
            self._per_sql[key[0]] = self._per_sql.get(key[0], 0) + 1
            while self.bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._reads.clear()
            self._per_sql.clear()
            self.bytes = 0

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.nbytes
        left = self._per_sql[key[0]] - 1
        if left:
            self._per_sql[key[0]] = left
        else:
            del self._per_sql[key[0]]
            self._reads.pop(key[0], None)
