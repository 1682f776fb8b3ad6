"""The streaming commands of the CLI: stream, produce."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.streaming.loop import StreamStats
    from lakehouse.warehouse import Lakehouse

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
Bootstrap = Annotated[
    str,
    typer.Option(
        "--bootstrap",
        envvar="KAFKA_BOOTSTRAP",
        help="Kafka bootstrap address, host:port.",
    ),
]


def register(app: typer.Typer, lh: Callable[[], Lakehouse], console: Console) -> None:
    @app.command()
    def stream(
        topic: Annotated[str, typer.Option(help="The Kafka topic to read.")],
        table: Annotated[str, typer.Option(help="The bronze table to land it in.")],
        bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
        group: Annotated[
            str | None, typer.Option(help="Consumer group (default lakehouse-<table>).")
        ] = None,
        instance_id: Annotated[
            str | None,
            typer.Option(
                help="This process's static member id in the group (default: the group; "
                "give each process of one group its own)."
            ),
        ] = None,
        batch_size: Annotated[
            int, typer.Option(help="Messages per micro-batch at most.")
        ] = 100_000,
        interval: Annotated[
            float, typer.Option(help="Seconds a micro-batch waits for messages at most.")
        ] = 0.5,
        start: Annotated[
            str, typer.Option("--from", help="Where partitions the table has not read start.")
        ] = "earliest",
        fmt: Annotated[
            str, typer.Option("--format", help="json, or debezium (change events).")
        ] = "json",
        key: Annotated[
            list[str] | None, typer.Option(help="Debezium: key column(s) when messages have none.")
        ] = None,
        realtime: Annotated[
            bool, typer.Option(help="Also feed the realtime.* windows (user events).")
        ] = False,
        watermark: Annotated[
            float, typer.Option(help="Seconds behind the newest event time an event is late.")
        ] = 120.0,
        source_system: Annotated[str | None, typer.Option(help="Recorded on each row.")] = None,
        max_messages: Annotated[
            int | None, typer.Option(help="Stop after this many messages.")
        ] = None,
        idle_exit: Annotated[
            float | None, typer.Option(help="Stop after this many seconds without messages.")
        ] = None,
    ) -> None:
        """Land a Kafka topic in a bronze table, exactly once, in micro-batches."""
        from lakehouse.ingest.kafka import KafkaSettings
        from lakehouse.streaming.loop import run_stream
        from lakehouse.streaming.windows import Windows

        warehouse = lh()
        group = group or f"lakehouse-{table.replace('.', '-')}"
        settings = KafkaSettings(
            bootstrap=bootstrap,
            topic=topic,
            group=group,
            instance_id=instance_id or group,
            batch_size=batch_size,
            interval=interval,
            start=start,
            format=fmt,
            key_columns=key or None,
        )
        windows = None
        if realtime:
            windows = Windows(warehouse, table, topic, watermark=timedelta(seconds=watermark))
        with stop_on_signals() as stop, status_line(console) as show:
            stats = run_stream(
                warehouse,
                table,
                settings,
                realtime=realtime,
                windows=windows,
                source_system=source_system or f"kafka:{topic}",
                stop=stop,
                on_batch=show,
                max_messages=max_messages,
                idle_seconds=idle_exit,
            )
        console.print(stats.line(), highlight=False)

    @app.command()
    def produce(
        topic: Annotated[str, typer.Option(help="The topic to send to.")] = "user-events",
        rate: Annotated[float, typer.Option(help="Events a second.")] = 5.0,
        bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
        count: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
        seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
        partitions: Annotated[int, typer.Option(help="Partitions of a new topic.")] = 3,
        late_share: Annotated[
            float, typer.Option(help="Share of events sent minutes late (0 to 1).")
        ] = 0.01,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 17,
    ) -> None:
        """Send the demo's user events (login, click, purchase, logout) to a topic."""
        from lakehouse.streaming.producer import UserEvents, ensure_topic
        from lakehouse.streaming.producer import produce as send

        if not 0 <= late_share <= 1:
            raise LakehouseError("--late-share is a share: from 0 to 1")
        ensure_topic(bootstrap, topic, partitions)
        console.print(f"sending {rate:g} user events a second to {topic} at {bootstrap}")
        with stop_on_signals() as stop, status_line(console) as show:
            sent = send(
                bootstrap,
                topic,
                rate,
                source=UserEvents(seed=seed, late_share=late_share),
                count=count,
                seconds=seconds,
                stop=stop,
                on_sent=lambda n: show(f"{n:,} events sent to {topic}"),
            )
        console.print(f"{sent:,} events sent to {topic}")


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM: the loop finishes its batch and stops."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def status_line(console: Console) -> Iterator[Callable[[StreamStats | str], None]]:
    """A line of figures: redrawn in place on a terminal, printed every 5 s otherwise."""
    every = 0.25 if console.is_terminal else 5.0
    last = [0.0]

    def text(what: StreamStats | str) -> str:
        return what if isinstance(what, str) else what.line()

    if not console.is_terminal or os.environ.get("CI"):

        def show_plain(what: StreamStats | str) -> None:
            now = time.monotonic()
            if now - last[0] >= every:
                last[0] = now
                console.print(text(what), highlight=False)

        yield show_plain
        return
    with Live(Text(""), console=console, refresh_per_second=4, transient=True) as live:

        def show(what: StreamStats | str) -> None:
            now = time.monotonic()
            if now - last[0] >= every:
                last[0] = now
                live.update(Text(text(what)))

        yield show
