"""The owner's answers, kept for a moment: many readers of one dashboard ask the same
statements, and the store runs one statement at a time.

An answer is reused while it is younger than ``ttl`` seconds and no refresh changed a
mirror since it was read (``changed()`` forgets every answer), so a reader never sees
rows older than the mirrors it could read instead, give or take ``ttl`` for
statements that read the clock. Concurrent askers of the same statement wait for the
one that runs it."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pyarrow as pa

Query = Callable[[str, dict[str, Any] | None], pa.Table]


class Results:
    def __init__(
        self, query: Query, ttl: float = 1.0, entries: int = 512, max_bytes: int = 8 << 20
    ) -> None:
        self._query = query
        self.ttl = ttl
        self.entries = entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[int, float, pa.Table]] = OrderedDict()
        self._running: dict[str, tuple[int, threading.Event]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    def changed(self) -> None:
        """A mirror changed: no answer read before may be given again."""
        with self._lock:
            self._generation += 1
            self._kept.clear()

    def query(
        self, sql: str, params: dict[str, Any] | None = None, fresh: bool = False
    ) -> pa.Table:
        """The answer to ``sql``: one kept from a moment ago, or (``fresh``, or none
        kept) read now and kept for the next asker. Askers of the same statement while
        it runs wait for its answer."""
        key = json.dumps([sql, params or {}], sort_keys=True, default=str)
        if fresh:
            with self._lock:
                generation = self._generation
                self.misses += 1
            table = self._query(sql, params)
            self._keep(key, generation, table)
            return table
        while True:
            with self._lock:
                kept = self._kept.get(key)
                if kept is not None and kept[0] == self._generation:
                    if time.monotonic() - kept[1] <= self.ttl:
                        self._kept.move_to_end(key)
                        self.hits += 1
                        return kept[2]
                running = self._running.get(key)
                if running is None or running[0] != self._generation:
                    generation = self._generation
                    done = threading.Event()
                    self._running[key] = (generation, done)
                    self.misses += 1
                    break
            running[1].wait()  # another thread reads it; then take its answer
        try:
            table = self._query(sql, params)
            self._keep(key, generation, table)  # before the waiters wake
            return table
        finally:
            with self._lock:
                if self._running.get(key) == (generation, done):
                    del self._running[key]
            done.set()

    def _keep(self, key: str, generation: int, table: pa.Table) -> None:
        with self._lock:
            if generation == self._generation and table.nbytes <= self.max_bytes:
                self._kept[key] = (generation, time.monotonic(), table)
                self._kept.move_to_end(key)
                while len(self._kept) > self.entries:
                    self._kept.popitem(last=False)
