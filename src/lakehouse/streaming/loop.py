"""The micro-batch loop: Kafka into bronze, then into the real-time windows.

Per batch: the messages the table does not hold yet land in bronze (and its quarantine)
with their partitions' offsets in the same commit; the window table adds the batch's
events to their windows, with the same offsets in its commit; the group's offsets are
committed last, for lag tools only. A process killed at any point resumes from what the
tables hold, so every message is in bronze once and counted in its window once.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.ingest.kafka import Batch, KafkaSettings, KafkaSource, land, table_marks
from lakehouse.streaming.lag import LagFile
from lakehouse.streaming.windows import Windows
from lakehouse.tables.handles import Handles

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

COMPACT_EVERY = 25  # batches between compactions of the window table


@dataclass
class StreamStats:
    table: str
    topic: str
    batches: int = 0
    messages: int = 0
    rows: int = 0
    quarantined: int = 0
    late: int = 0
    version: int | None = None  # the bronze table's, after the last batch
    committed_at: float | None = None  # time.time() of the last batch's commits
    lag: int | None = None
    caught_up: int = 0  # rows applied to real-time tables a crash had left behind
    assigned_at: float | None = None  # time.time() when the first partitions were assigned
    _recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def landed(self, messages: int, rows: int, quarantined: int, version: int | None) -> None:
        self.batches += 1
        self.messages += messages
        self.rows += rows
        self.quarantined += quarantined
        self.version = version
        self.committed_at = time.time()
        self._recent.append((time.monotonic(), messages))

    def rate(self) -> float:
        """Messages per second over the last few seconds."""
        now = time.monotonic()
        recent = [(t, n) for t, n in self._recent if now - t <= 5.0]
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 1.0)
        return sum(n for _, n in recent) / span

    def line(self) -> str:
        last = (
            time.strftime("%H:%M:%S", time.localtime(self.committed_at))
            if self.committed_at
            else "none yet"
        )
        lag = "?" if self.lag is None else f"{self.lag:,}"
        return (
            f"{self.topic} -> {self.table}: {self.rate():,.0f} msg/s, lag {lag}, "
            f"{self.messages:,} messages in {self.batches:,} batches, "
            f"{self.quarantined:,} quarantined, {self.late:,} late, "
            f"last commit v{self.version} at {last}"
        )


def run_stream(
    lh: Lakehouse,
    table: str,
    settings: KafkaSettings,
    *,
    realtime: bool = False,
    source_system: str | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[StreamStats], None] | None = None,
    max_messages: int | None = None,
    idle_seconds: float | None = None,
    windows: Windows | None = None,
) -> StreamStats:
    """Run until ``stop`` is set, ``max_messages`` have landed, or no message came for
    ``idle_seconds``. ``realtime`` feeds the user-event windows (``streaming.windows``).

    The next batch is consumed while this one is written (the consumer runs in a thread
    of its own); assignments it receives are acted on here, between two batches."""
    stop = stop or threading.Event()
    source = KafkaSource(lh, table, settings)
    table = source.table
    stats = StreamStats(table, settings.topic)
    if realtime and windows is None:
        windows = Windows(lh, table, settings.topic)
    marks: dict[int, int] = {}
    held: dict[int, int] = {}  # the quarantine's
    # Each thread's open tables (the loop's, the window merge's), kept between batches.
    handles = Handles()
    fetch = _Fetcher(source, stop)
    source.open()
    fetch.start()
    counting = _Counting(lh, windows, stats, handles) if windows is not None else None
    idle_since = time.monotonic()
    lag = LagFile(Path(lh.root), table, settings.topic) if lh.local else None
    try:
        with handles.used(), _fewer_collections():
            while not stop.is_set():
                batch = fetch.next()
                now = time.monotonic()
                stats.lag = fetch.lag
                if lag is not None:
                    lag.publish(marks, fetch.highs)
                for partitions in fetch.assignments():
                    stats.assigned_at = stats.assigned_at or fetch.assigned_at
                    # Offsets only grow: what the tables hold now is at least what we knew.
                    _raise(marks, table_marks(lh, table, settings.topic, partitions))
                    _raise(held, table_marks(lh, f"{table}_quarantine", settings.topic, partitions))
                    level = {p: marks[p] for p in partitions if p in marks}
                    if counting is not None and level:
                        counting.wait()  # the windows of batches already landed first
                        stats.caught_up += counting.windows.catch_up(level)
                    idle_since = now  # a group's first assignment can take seconds
                if batch is None:
                    if on_batch is not None:
                        on_batch(stats)
                    waited = now - idle_since
                    if not source.assigned and waited < max(30.0, idle_seconds or 0):
                        waited = 0.0
                    if idle_seconds is not None and waited >= idle_seconds:
                        break
                    continue
                idle_since = now
                batch = batch.after(marks)
                if not len(batch):
                    continue
                landed = land(
                    lh,
                    table,
                    batch,
                    source_system=source_system,
                    format=settings.format,
                    key_columns=settings.key_columns,
                    quarantine_marks=held,
                )
                _raise(marks, landed.marks)
                if landed.quarantined:
                    _raise(held, landed.marks)
                if counting is not None:
                    counting.add(landed.rows, landed.marks)
                fetch.commit(landed.marks)
                stats.landed(len(batch), landed.rows.num_rows, landed.quarantined, landed.version)
                if on_batch is not None:
                    on_batch(stats)
                if max_messages is not None and stats.messages >= max_messages:
                    break
                idle_since = time.monotonic()  # idle time counts from the end of the work
    finally:
        if lag is not None:
            lag.remove()
        fetch.finish()
        source.close()
        if counting is not None:
            counting.finish()
    return stats


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cycle collector runs after every 700 new objects by default. A batch makes
    100,000 message objects, so it ran over a hundred times a batch, each older-generation
    run walking the whole heap of a process that holds Arrow, Delta and DuckDB: a quarter
    of the stream's time. The messages are freed by reference counting, so collecting
    every 50,000 objects costs nothing in memory. The setting is restored on the way out."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Counting(threading.Thread):
    """Adds each landed batch to the real-time windows, in order, while the loop lands
    the next one: a batch is visible in ``realtime.*`` one window merge after bronze, and
    the loop's pace is the slower of the two, not their sum. The window table records its
    own offsets, so a crash between the two loses nothing (``Windows.catch_up``)."""

    def __init__(
        self, lh: Lakehouse, windows: Windows, stats: StreamStats, handles: Handles
    ) -> None:
        super().__init__(name="lakehouse-windows", daemon=True)
        self.handles = handles
        self.lh = lh
        self.windows = windows
        self.stats = stats
        self.queue: queue.Queue[tuple[pa.Table, dict[int, int]] | None] = queue.Queue(1)
        self.error: BaseException | None = None
        self.applied = 0
        self.start()

    def add(self, rows: pa.Table, marks: dict[int, int]) -> None:
        self._raise_error()
        self.queue.put((rows, dict(marks)))

    def wait(self) -> None:
        self.queue.join()
        self._raise_error()

    def finish(self) -> None:
        self.queue.put(None)
        self.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def run(self) -> None:
        with self.handles.used():
            self._run()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    self.stats.late += self.windows.apply(*item)
                    self.applied += 1
                    if self.applied % COMPACT_EVERY == 0:
                        # A commit per batch leaves a small file per batch.
                        self.lh.table(self.windows.table).optimize()
            except BaseException as exc:  # raised in the loop's thread at its next step
                self.error = exc
            finally:
                self.queue.task_done()


def _raise(marks: dict[int, int], found: dict[int, int]) -> None:
    for p, offset in found.items():
        if offset > marks.get(p, -1):
            marks[p] = offset


class _Fetcher(threading.Thread):
    """Consumes the next batch while the last one is written. Every call on the consumer
    happens in this thread (assignments, group commits, lag), so the writer thread never
    waits on the broker and the consumer is never used from two threads at once."""

    def __init__(self, source: KafkaSource, stop: threading.Event) -> None:
        super().__init__(name="lakehouse-kafka-fetch", daemon=True)
        self.source = source
        self.stop = stop
        self.done = threading.Event()
        self.queue: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self.lag: int | None = None
        self.highs: dict[int, int] = {}  # per partition, the broker's high watermark
        self.assigned_at: float | None = None
        self.error: BaseException | None = None
        self._assigned: list[list[int]] = []
        self._commit: dict[int, int] | None = None
        self._lock = threading.Lock()
        source.on_assign = self._on_assign

    def _on_assign(self, partitions: list[int]) -> None:
        with self._lock:
            self._assigned.append(partitions)
            self.assigned_at = self.assigned_at or time.time()

    def assignments(self) -> list[list[int]]:
        with self._lock:
            found, self._assigned = self._assigned, []
        return found

    def commit(self, marks: dict[int, int]) -> None:
        with self._lock:
            self._commit = {**(self._commit or {}), **marks}

    def run(self) -> None:
        last_lag = 0.0
        try:
            while not self.done.is_set() and not self.stop.is_set():
                with self._lock:
                    marks, self._commit = self._commit, None
                if marks:
                    self.source.commit(marks)
                if time.monotonic() - last_lag >= 1.0:
                    self.lag, last_lag = self.source.lag(), time.monotonic()
                    self.highs = self.source.high_watermarks()
                batch = self.source.next_batch()
                if batch is not None:
                    batch.prepare()
                while not self.done.is_set():
                    try:
                        self.queue.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the writer thread, which raises it
            self.error = exc
            self.done.set()

    def next(self) -> Batch | None:
        """The next batch; None after a wait with no message (or when fetching ended)."""
        while True:
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                if self.error is not None:
                    raise self.error from None
                if self.done.is_set() or not self.is_alive():
                    return None

    def finish(self) -> None:
        """Stop fetching, and pass the last offsets on to the group."""
        self.done.set()
        self.join(30)
        with self._lock:
            marks, self._commit = self._commit, None
        if marks and self.error is None:
            self.source.commit(marks)
