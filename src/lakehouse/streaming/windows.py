"""Real-time aggregates: tumbling windows over event time, with a watermark.

Every micro-batch adds its events to per-window rows of the ``realtime`` tables: a merge
on (window_start, keys) that adds the batch's counts to the stored ones. Each table's
merge commits with the stream's transaction identifiers (one per Kafka partition: the
last offset applied), so a batch is counted once, whatever crashed when; a table that a
crash left behind the bronze table is brought level from bronze when the stream starts.

The watermark trails the newest event time of the batches before by ``watermark`` (two
minutes by default); it moves at the end of each batch, so within a batch the order of
the events does not matter. An event older than the watermark is late: it stays in
bronze, is not added to its window (that window has been reported as final), and is
counted in ``realtime.late_events`` by the window it belonged to, so nothing is silently
lost. Each table commits the newest event time with its counts (as one more transaction
identifier), so a table brought level after a crash judges lateness as it would have.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.ingest.kafka import partition_mark
from lakehouse.scratch import scratch
from lakehouse.tables.writer import Handles

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

TIME = "__lh_event_time"
LATE = "__lh_late"


@dataclass(frozen=True)
class Aggregate:
    """One real-time table: per window and ``keys``, the ``measures`` (column: (SQL
    aggregate over the window's events, how a new batch's value combines with the stored
    one: sum, min or max)) of the events matching ``where``."""

    table: str
    keys: tuple[str, ...]
    measures: dict[str, tuple[str, str]]
    where: str = "true"
    late: bool = False  # counts the late events instead of the others
    # The columns it reads, with their types: a batch without one (no event had a value
    # for it yet) reads it as nulls.
    columns: tuple[tuple[str, pa.DataType], ...] = ()


_TYPE = (("event_type", pa.string()),)
USER_EVENTS: tuple[Aggregate, ...] = (
    Aggregate(
        "realtime.events_per_minute",
        ("event_type",),
        {"events": ("count(*)", "sum")},
        columns=_TYPE,
    ),
    Aggregate(
        "realtime.logins_per_source",
        ("source",),
        {"logins": ("count(*)", "sum")},
        where="event_type = 'login'",
        columns=(*_TYPE, ("source", pa.string())),
    ),
    Aggregate(
        "realtime.purchases_per_minute",
        (),
        {"purchases": ("count(*)", "sum"), "revenue": ("sum(amount)", "sum")},
        where="event_type = 'purchase'",
        columns=(*_TYPE, ("amount", pa.float64())),
    ),
    Aggregate(
        "realtime.late_events",
        ("event_type",),
        {"events": ("count(*)", "sum")},
        late=True,
        columns=_TYPE,
    ),
)


@dataclass
class Applied:
    events: int = 0  # added to windows
    late: int = 0
    untimed: int = 0  # without a readable event time
    tables: list[str] = field(default_factory=list)


class Windows:
    """The real-time tables fed by one bronze table's stream of ``topic``."""

    def __init__(
        self,
        lh: Lakehouse,
        source: str,
        topic: str,
        *,
        aggregates: tuple[Aggregate, ...] = USER_EVENTS,
        event_time: str = "event_time",
        width: timedelta = timedelta(minutes=1),
        watermark: timedelta = timedelta(minutes=2),
    ) -> None:
        if width <= timedelta(0) or watermark < timedelta(0):
            raise LakehouseError("a window needs a width > 0 and a watermark >= 0")
        self.lh = lh
        self.source = source
        self.topic = topic
        self.aggregates = aggregates
        self.event_time = event_time
        self.width_us = int(width / timedelta(microseconds=1))
        self.watermark_us = int(watermark / timedelta(microseconds=1))
        self.newest_us = self._newest_stored()
        self.pool = ThreadPoolExecutor(max_workers=len(aggregates))
        self.handles: Handles | None = None  # open tables kept between batches

    def mark(self, partition: int) -> str:
        """Each real-time table records, per partition, the last offset it has counted."""
        return f"{self.source}/{partition_mark(self.topic, partition)}"

    @property
    def newest_mark(self) -> str:
        """... and the newest event time it has seen, in microseconds since the epoch."""
        return f"{self.source}/kafka:{self.topic}:newest"

    def watermark(self) -> int | None:
        """Events before this time (microseconds since the epoch) are late."""
        return None if self.newest_us is None else self.newest_us - self.watermark_us

    def apply(
        self,
        rows: pa.Table,
        marks: dict[int, int],
        only: list[Aggregate] | None = None,
        newest_before: int | None = None,
    ) -> Applied:
        """Add one batch of rows (up to ``marks``, the last offset per partition) to the
        windows of every table (or of ``only`` these, judging lateness by the newest time
        ``newest_before`` they had seen)."""
        times = self._event_times(rows)
        before = self.newest_us if only is None else newest_before
        late, newest = self._lateness(times, before)
        events = rows.append_column(TIME, pa.array(times, pa.timestamp("us", tz="UTC")))
        events = events.append_column(LATE, pa.array(late))
        report = Applied(
            events=int((~late & ~np.isnat(times)).sum()),
            late=int(late.sum()),
            untimed=int(np.isnat(times).sum()),
        )
        targets = list(only if only is not None else self.aggregates)
        txn = [(self.mark(p), o) for p, o in sorted(marks.items())]
        if newest is not None:
            txn.append((self.newest_mark, newest))
        futures = [self.pool.submit(self._write, a, events, txn) for a in targets]
        for future in futures:
            future.result()
        report.tables = [a.table for a in targets]
        if only is None:
            self.newest_us = newest
        return report

    def behind(self, bronze_marks: dict[int, int]) -> list[tuple[Aggregate, dict[int, int]]]:
        """The tables that hold less than bronze (a crash came between the commits), with
        the offsets they hold."""
        lagging = []
        for a in self.aggregates:
            held = self._marks(a.table, list(bronze_marks))
            if any(held.get(p, -1) < o for p, o in bronze_marks.items()):
                lagging.append((a, held))
        return lagging

    def catch_up(self, bronze_marks: dict[int, int]) -> int:
        """Bring every lagging table level with bronze, from bronze's rows; the number of
        rows applied."""
        applied = 0
        for aggregate, held in self.behind(bronze_marks):
            gap = self._bronze_rows_after(held, bronze_marks)
            newest = self._stored(aggregate.table, self.newest_mark)
            self.apply(gap, bronze_marks, only=[aggregate], newest_before=newest)
            applied += gap.num_rows
        self.newest_us = self._newest_stored()
        return applied

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # -- the parts -------------------------------------------------------------------------
    def _event_times(self, rows: pa.Table) -> np.ndarray:
        if self.event_time not in rows.column_names:
            return np.full(rows.num_rows, np.datetime64("NaT"), "datetime64[us]")
        values = pa.table({"t": rows.column(self.event_time)})  # noqa: F841 - read by DuckDB
        con = scratch()
        try:
            out = con.sql(
                "SELECT epoch_us(try_cast(t AS TIMESTAMPTZ)) AS us FROM values"
            ).fetchnumpy()["us"]
        finally:
            con.close()
        us = np.ma.filled(np.ma.asarray(out).astype(np.int64), np.iinfo(np.int64).min)
        result = us.astype("datetime64[us]")
        result[us == np.iinfo(np.int64).min] = np.datetime64("NaT")
        return result

    def _lateness(self, times: np.ndarray, before: int | None) -> tuple[np.ndarray, int | None]:
        """Which events are late (older than the watermark the batches before set), and
        the newest event time after this batch."""
        valid = ~np.isnat(times)
        us = times.astype(np.int64)
        if before is None:
            late = np.zeros(len(us), bool)
        else:
            late = valid & (us < before - self.watermark_us)
        newest = before
        if valid.any():
            top = int(us[valid].max())
            newest = top if newest is None else max(newest, top)
        return late, newest

    def _write(self, a: Aggregate, events: pa.Table, txn: list[tuple[str, int]]) -> None:
        with self.handles.used() if self.handles is not None else nullcontext():
            self._write_windows(a, events, txn)

    def _write_windows(self, a: Aggregate, events: pa.Table, txn: list[tuple[str, int]]) -> None:
        for column, kind in a.columns:
            if column not in events.column_names:
                events = events.append_column(column, pa.nulls(events.num_rows, kind))
            elif pa.types.is_null(events.schema.field(column).type):
                index = events.column_names.index(column)
                events = events.set_column(index, column, pa.nulls(events.num_rows, kind))
        keys = "".join(f", {_q(k)}" for k in a.keys)
        measures = "".join(f", {sql} AS {_q(name)}" for name, (sql, _) in a.measures.items())
        width = self.width_us
        con = scratch()
        try:
            rows = con.sql(
                f"""
                SELECT make_timestamptz(({TIME}_us // {width}) * {width}) AS window_start,
                       make_timestamptz(({TIME}_us // {width} + 1) * {width}) AS window_end
                       {keys} {measures},
                       max({TIME}) AS last_event_at,
                       now() AS updated_at
                FROM (SELECT *, epoch_us({TIME}) AS {TIME}_us FROM events) AS e
                WHERE {TIME} IS NOT NULL AND {"" if a.late else "NOT "}{LATE} AND ({a.where})
                GROUP BY ALL
                """
            ).to_arrow_table()
        finally:
            con.close()
        combine = {name: how for name, (_, how) in a.measures.items()}
        combine["last_event_at"] = "max"
        if rows.num_rows == 0:  # nothing to count: commit the marks only
            self.lh.write(a.table, rows, txn=txn, description=self._description())
            return
        self.lh.write(
            a.table,
            rows,
            mode="merge",
            keys=["window_start", *a.keys],
            merge_combine=combine,
            txn=txn,
            description=self._description(),
        )

    def _description(self) -> str:
        return f"Tumbling windows of {self.width_us // 1_000_000} s over {self.source}"

    def _newest_stored(self) -> int | None:
        found = [self._stored(a.table, self.newest_mark) for a in self.aggregates]
        known = [f for f in found if f is not None]
        return max(known) if known else None

    def _stored(self, table: str, mark: str) -> int | None:
        return self.lh.table(table).transaction_version(mark) if self._exists(table) else None

    def _marks(self, table: str, partitions: list[int]) -> dict[int, int]:
        if not self._exists(table):
            return {}
        t = self.lh.table(table)
        found = {p: t.transaction_version(self.mark(p)) for p in partitions}
        return {p: v for p, v in found.items() if v is not None}

    def _bronze_rows_after(self, held: dict[int, int], upto: dict[int, int]) -> pa.Table:
        ranges = " OR ".join(
            f"(partition = {p} AND \"offset\" > {held.get(p, -1)} AND \"offset\" <= {o})"
            for p, o in upto.items()
        )
        return self.lh.sql(
            f"""
            SELECT * EXCLUDE (partition, "offset") FROM (
                SELECT *, CAST(split_part(_source, ':', 2) AS INTEGER) AS partition,
                       CAST(split_part(_source, ':', 3) AS BIGINT) AS "offset"
                FROM {self.source}
                WHERE split_part(_source, ':', 1) = '{self.topic}'
            ) WHERE {ranges}
            ORDER BY partition, "offset"
            """
        ).to_arrow()

    def _exists(self, table: str) -> bool:
        return self.lh.catalog.get(table) is not None or self.lh.discover(table)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
