"""The audit log: every API call and query, as rows of the Delta table ``system.audit_log``.

``record`` only appends to a buffer in memory; a daemon thread writes the buffer through
``Lakehouse.write`` (one commit per flush) at least every ``flush_interval`` seconds, and
sooner when it holds ``max_buffer`` records. A flush that fails keeps its records and writes
them again later, with the same Delta transaction identifier, so a write that did land
before its failure was reported is not written twice.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.audit")

AUDIT_LOG = "system.audit_log"
SCHEMA = pa.schema(
    [
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("principal", pa.string()),
        ("role", pa.string()),
        ("action", pa.string()),
        ("target", pa.string()),
        ("outcome", pa.string()),  # ok | denied | error | unauthenticated
        ("status", pa.int32()),
        ("duration_ms", pa.float64()),
        ("detail", pa.string()),
        ("client", pa.string()),
    ]
)
Row = tuple[
    datetime, str | None, str | None, str, str | None, str, int, float, str | None, str | None
]


class AuditLog:
    """Buffered, thread-safe writer of ``system.audit_log``; ``close()`` writes the rest."""

    def __init__(self, lh: Lakehouse, flush_interval: float = 1.0, max_buffer: int = 10_000):
        if flush_interval <= 0 or max_buffer < 1:
            raise ValueError("flush_interval must be positive and max_buffer at least 1")
        self.lh = lh
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self._buffer: list[Row] = []
        self._lock = threading.Lock()  # the buffer
        self._flushing = threading.Lock()  # one flush at a time
        # A batch whose write failed, with its transaction number: written again as it was.
        self._failed: tuple[list[Row], int] | None = None
        self._app_id = f"lakehouse.audit:{uuid.uuid4().hex}"
        self._batches = 0
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lakehouse-audit", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            audit = ref()
            if audit is not None:
                audit.close()

        self._atexit = close_at_exit
        atexit.register(self._atexit)

    def record(
        self,
        principal: str | None,
        role: str | None,
        action: str,
        target: str | None,
        outcome: str,
        status: int,
        duration_ms: float,
        detail: str | None = None,
        client: str | None = None,
    ) -> None:
        """Add one record to the buffer (no I/O)."""
        row = (
            datetime.now(UTC),
            principal,
            role,
            action,
            target,
            outcome,
            int(status),
            float(duration_ms),
            detail,
            client,
        )
        with self._lock:
            self._buffer.append(row)
            full = len(self._buffer) >= self.max_buffer
        if full:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Records not written yet."""
        with self._lock:
            return len(self._buffer) + (len(self._failed[0]) if self._failed else 0)

    def flush(self) -> None:
        """Write what is buffered now. A failure is logged and the records kept for the next
        flush; it does not raise."""
        with self._flushing:
            if self._failed is not None:
                rows, number = self._failed
                if not self._write(rows, number):
                    self._trim()
                    return
                self._failed = None
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return
            self._batches += 1
            if not self._write(rows, self._batches):
                self._failed = (rows, self._batches)
                self._trim()

    def _trim(self) -> None:
        """While the table cannot be written, keep at most ``100 * max_buffer`` records
        waiting: the oldest beyond that are dropped, and the log says how many."""
        with self._lock:
            extra = len(self._buffer) - 100 * self.max_buffer
            if extra > 0:
                del self._buffer[:extra]
        if extra > 0:
            log.error(
                "audit log: dropped the %d oldest records waiting for %s to be writable",
                extra,
                AUDIT_LOG,
            )

    def close(self) -> None:
        """Stop the background thread and write what is left."""
        if not self._closed.is_set():
            self._closed.set()
            self._wake.set()
            self._thread.join()
            atexit.unregister(self._atexit)
        self.flush()
        left = self.pending
        if left:
            log.error("audit log: %d records could not be written to %s", left, AUDIT_LOG)

    def _write(self, rows: list[Row], number: int) -> bool:
        columns = list(zip(*rows, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA, strict=True)],
            schema=SCHEMA,
        )
        try:
            self.lh.write(
                AUDIT_LOG,
                table,
                mode="append",
                txn=(self._app_id, number),
                description="Every API call and query: who, what, outcome, status, duration",
            )
        except Exception as exc:  # noqa: BLE001 - kept and written again on the next flush
            log.warning(
                "audit log: could not write %d records to %s (kept for the next flush): %s",
                len(rows),
                AUDIT_LOG,
                exc,
            )
            return False
        return True

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._closed.is_set():
                return
            if self.pending:
                self.flush()
                if self._failed is not None:
                    # Wait a whole interval before trying again, even when the buffer is full.
                    self._closed.wait(self.flush_interval)
