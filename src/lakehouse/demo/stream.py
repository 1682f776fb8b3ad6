"""``lakehouse demo --stream``: the real-time path with nothing else installed.

A local broker (see ``streaming/broker.py``) keeps its data next to the warehouse; the
demo's user events go to its ``user-events`` topic; the stream lands them in
``bronze.user_events`` and keeps the ``realtime.*`` windows. Stop it with Ctrl-C; run it
again and it resumes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table as RichTable

from lakehouse.demo.live_events import UserEvents
from lakehouse.errors import LakehouseError
from lakehouse.ingest.kafka import KafkaSettings
from lakehouse.streaming.broker import LocalBroker
from lakehouse.streaming.commands import status_line, stop_on_signals
from lakehouse.streaming.loop import StreamStats, run_stream
from lakehouse.streaming.producer import ensure_topic, produce

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

TOPIC = "user-events"
TABLE = "bronze.user_events"


def run_stream_demo(
    lh: Lakehouse, console: Console, *, rate: float = 20.0, seconds: float | None = None
) -> StreamStats:
    if not lh.local:
        raise LakehouseError(
            "the streaming demo keeps its broker next to a local warehouse",
            "use a warehouse folder, or run `lakehouse stream` against your Kafka",
        )
    with LocalBroker(Path(lh.root) / "_broker") as broker:
        ensure_topic(broker.bootstrap, TOPIC, 3)
        console.print(
            f"broker at {broker.bootstrap}; sending {rate:g} user events a second to "
            f"{TOPIC}; landing them in {TABLE} and the realtime.* windows "
            + ("(Ctrl-C stops)" if seconds is None else f"for {seconds:g} s")
        )
        with stop_on_signals() as stop:
            producer = threading.Thread(
                target=produce,
                args=(broker.bootstrap, TOPIC, rate),
                kwargs={"source": UserEvents(late_share=0.01), "stop": stop},
                daemon=True,
            )
            producer.start()
            if seconds is not None:
                threading.Timer(seconds, stop.set).start()
            settings = KafkaSettings(
                broker.bootstrap, TOPIC, "lakehouse-demo", interval=0.5, instance_id="demo"
            )
            shown = [time.monotonic()]

            def on_batch(stats: StreamStats) -> None:
                show(stats)
                if time.monotonic() - shown[0] >= 15:
                    shown[0] = time.monotonic()
                    console.print(_latest_windows(lh))

            with status_line(console) as show:
                stats = run_stream(
                    lh,
                    TABLE,
                    settings,
                    realtime=True,
                    source_system="demo.event_stream",
                    stop=stop,
                    on_batch=on_batch,
                )
            stop.set()
            producer.join(30)
    console.print(stats.line(), highlight=False)
    console.print(_latest_windows(lh))
    console.print(
        'try: lakehouse sql "SELECT * FROM realtime.events_per_minute '
        'ORDER BY window_start DESC LIMIT 12"; lakehouse serve'
    )
    return stats


def _latest_windows(lh: Lakehouse) -> RichTable:
    table = RichTable(title="realtime.events_per_minute, the last 3 windows")
    for column in ("window_start", "login", "click", "purchase", "logout"):
        table.add_column(column, justify="right")
    if lh.catalog.get("realtime.events_per_minute") is None:
        return table
    rows = lh.sql(
        """
        SELECT strftime(window_start, '%H:%M') AS w,
               sum(events) FILTER (event_type = 'login'),
               sum(events) FILTER (event_type = 'click'),
               sum(events) FILTER (event_type = 'purchase'),
               sum(events) FILTER (event_type = 'logout')
        FROM realtime.events_per_minute GROUP BY window_start
        ORDER BY window_start DESC LIMIT 3
        """
    ).rows()
    for row in rows:
        table.add_row(*[str(v or 0) for v in row])
    return table
