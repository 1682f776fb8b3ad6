"""Real-time aggregates: tumbling windows over event time, with a watermark.

All the aggregates of a stream live in one Delta table, ``realtime.windows`` (one row per
aggregate, window and key), and each is read through a view of its own name
(``realtime.events_per_minute``...). Every micro-batch adds its events to the rows of
their windows in one MERGE that adds the batch's counts to the stored ones, committed
with the stream's transaction identifiers (one per Kafka partition: the last offset
applied), so a batch is counted once, whatever crashed when; if a crash left the table
behind the bronze table, the stream brings it level from bronze when it starts. One
table rather than one per aggregate: a commit costs the same whatever it holds, and it
is the price of every micro-batch.

The watermark trails the newest event time of the batches before by ``watermark`` (two
minutes by default); it moves at the end of each batch, so within a batch the order of
the events does not matter. An event older than the watermark is late: it stays in
bronze, is not added to its window (that window has been reported as final), and is
counted in ``realtime.late_events`` by the window it belonged to, so nothing is silently
lost. The table commits the newest event time with its counts (as one more transaction
identifier), so after a crash lateness is judged as it would have been.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.ingest.kafka import partition_mark
from lakehouse.quoting import ident
from lakehouse.scratch import scratch

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

TABLE = "realtime.windows"
TIME = "__lh_event_time"
LATE = "__lh_late"


@dataclass(frozen=True)
class Aggregate:
    """One real-time view: per window (and ``key`` column, if any) the number of events
    matching ``where`` (named ``count_as``) and, with ``total``, the sum of that SQL
    expression (named ``total_as``). ``late`` counts the late events instead."""

    view: str
    key: str | None
    count_as: str
    where: str = "true"
    total: str | None = None
    total_as: str | None = None
    late: bool = False
    # The columns it reads, with their types: a batch without one (no event had a value
    # for it yet) reads it as nulls.
    columns: tuple[tuple[str, pa.DataType], ...] = ()

    @property
    def name(self) -> str:
        return self.view.split(".", 1)[1]


_TYPE = ("event_type", pa.string())
USER_EVENTS: tuple[Aggregate, ...] = (
    Aggregate("realtime.events_per_minute", "event_type", "events", columns=(_TYPE,)),
    Aggregate(
        "realtime.logins_per_source",
        "source",
        "logins",
        where="event_type = 'login'",
        columns=(_TYPE, ("source", pa.string())),
    ),
    Aggregate(
        "realtime.purchases_per_minute",
        None,
        "purchases",
        where="event_type = 'purchase'",
        total="amount",
        total_as="revenue",
        columns=(_TYPE, ("amount", pa.float64())),
    ),
    Aggregate("realtime.late_events", "event_type", "events", late=True, columns=(_TYPE,)),
)


class Windows:
    """The real-time windows fed by one bronze table's stream of ``topic``."""

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
        table: str = TABLE,
    ) -> None:
        if width <= timedelta(0) or watermark < timedelta(0):
            raise LakehouseError("a window needs a width > 0 and a watermark >= 0")
        self.lh = lh
        self.source = source
        self.topic = topic
        self.aggregates = aggregates
        self.table = table
        self.event_time = event_time
        self.width_us = int(width / timedelta(microseconds=1))
        self.watermark_us = int(watermark / timedelta(microseconds=1))
        self.newest_us = self._stored(self.newest_mark)
        self._views_made = False

    def mark(self, partition: int) -> str:
        """The window table records, per partition, the last offset it has counted."""
        return f"{self.source}/{partition_mark(self.topic, partition)}"

    @property
    def newest_mark(self) -> str:
        """... and the newest event time it has seen, in microseconds since the epoch."""
        return f"{self.source}/kafka:{self.topic}:newest"

    def apply(self, rows: pa.Table, marks: dict[int, int]) -> int:
        """Add one batch of rows (up to ``marks``, the last offset per partition) to the
        windows, in one commit; the number of late events among them."""
        times = self._event_times(rows)
        late, newest = self._lateness(times, self.newest_us)
        events = rows.append_column(TIME, pa.array(times, pa.timestamp("us", tz="UTC")))
        events = events.append_column(LATE, pa.array(late))
        txn = [(self.mark(p), o) for p, o in sorted(marks.items())]
        if newest is not None:
            txn.append((self.newest_mark, newest))
        self._write(events, txn)
        if not self._views_made:
            self.create_views()
            self._views_made = True
        self.newest_us = newest
        return int(late.sum())

    def behind(self, bronze_marks: dict[int, int]) -> dict[int, int] | None:
        """The offsets the window table holds when that is less than bronze holds (a
        crash came between the commits); None when it is level."""
        held = self._marks(list(bronze_marks))
        if any(held.get(p, -1) < o for p, o in bronze_marks.items()):
            return held
        return None

    def catch_up(self, bronze_marks: dict[int, int]) -> int:
        """Bring the window table level with bronze, from bronze's rows; the number of
        rows applied."""
        held = self.behind(bronze_marks)
        if held is None:
            return 0
        gap = self._bronze_rows_after(held, bronze_marks)
        self.newest_us = self._stored(self.newest_mark)
        self.apply(gap, bronze_marks)
        applied: int = gap.num_rows
        return applied

    def create_views(self) -> None:
        """The views that read each aggregate by its name."""
        for a in self.aggregates:
            key = f", key AS {_q(a.key)}" if a.key else ""
            total = f", total AS {_q(a.total_as)}" if a.total and a.total_as else ""
            self.lh.create_view(
                a.view,
                f"SELECT window_start, window_end{key}, events AS {_q(a.count_as)}{total}, "
                f"last_event_at, updated_at FROM {self.table} "
                f"WHERE aggregate = '{a.name}'",
                description=f"One-minute windows of {self.source}: {a.name}",
            )

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

    def _write(self, events: pa.Table, txn: list[tuple[str, int]]) -> None:
        for a in self.aggregates:
            for column, kind in a.columns:
                if column not in events.column_names:
                    events = events.append_column(column, pa.nulls(events.num_rows, kind))
                elif pa.types.is_null(events.schema.field(column).type):
                    index = events.column_names.index(column)
                    events = events.set_column(index, column, pa.nulls(events.num_rows, kind))
        width = self.width_us
        parts = []
        for a in self.aggregates:
            key = f"CAST({_q(a.key)} AS VARCHAR)" if a.key else "''"
            total = f"CAST(sum({a.total}) AS DOUBLE)" if a.total else "CAST(NULL AS DOUBLE)"
            parts.append(
                f"""
                SELECT '{a.name}' AS aggregate,
                       make_timestamptz((t_us // {width}) * {width}) AS window_start,
                       make_timestamptz((t_us // {width} + 1) * {width}) AS window_end,
                       coalesce({key}, '') AS key,
                       count(*) AS events, {total} AS total,
                       max({TIME}) AS last_event_at, now() AS updated_at
                FROM e
                WHERE {TIME} IS NOT NULL AND {"" if a.late else "NOT "}{LATE} AND ({a.where})
                GROUP BY ALL
                """
            )
        con = scratch()
        try:
            con.register("events", events)
            rows = con.sql(
                "WITH e AS (SELECT *, epoch_us("
                + TIME
                + ") AS t_us FROM events) "
                + " UNION ALL ".join(parts)
            ).to_arrow_table()
        finally:
            con.close()
        self.lh.write(
            self.table,
            rows,
            mode="merge",
            keys=["aggregate", "window_start", "key"],
            merge_combine={"events": "sum", "total": "sum", "last_event_at": "max"},
            txn=txn,
            description=f"Tumbling windows of {width // 1_000_000} s over {self.source}",
        )

    def _stored(self, mark: str) -> int | None:
        if not self.lh.exists(self.table):
            return None
        return self.lh.table(self.table).transaction_version(mark)

    def _marks(self, partitions: list[int]) -> dict[int, int]:
        if not self.lh.exists(self.table):
            return {}
        t = self.lh.table(self.table)
        found = {p: t.transaction_version(self.mark(p)) for p in partitions}
        return {p: v for p, v in found.items() if v is not None}

    def _bronze_rows_after(self, held: dict[int, int], upto: dict[int, int]) -> pa.Table:
        ranges = " OR ".join(
            f'(partition = {p} AND "offset" > {held.get(p, -1)} AND "offset" <= {o})'
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


_q = ident
