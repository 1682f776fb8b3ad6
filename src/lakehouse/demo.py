"""The demo: sample data into bronze, queried back. It grows into the whole medallion
platform as the pipeline lands."""

from __future__ import annotations

import time

import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakehouse.ingest.generators import app_events
from lakehouse.warehouse import Lakehouse

SOURCE = "demo.app"


def run_demo(lh: Lakehouse, *, events: int = 1500, console: Console | None = None) -> None:
    console = console or Console()
    started = time.perf_counter()
    data = app_events(events)
    batches = data.to_batches(max_chunksize=max(500, events // 4))
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("bronze.app_events", total=len(batches))
        # The demo replaces its sample each run, so running it twice gives the same table.
        for i, batch in enumerate(batches):
            lh.write(
                "bronze.app_events",
                pa.Table.from_batches([batch]),
                mode="overwrite" if i == 0 else "append",
                source_system=SOURCE,
                source="generator:app_events",
                description="Raw app events from the demo generator",
                tags=("demo",),
            )
            progress.advance(task)
    from lakehouse.cli import print_arrow

    console.print()
    print_arrow(
        lh.sql(
            """
            SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users,
                   round(sum(amount), 2) AS revenue
            FROM bronze.app_events GROUP BY ALL ORDER BY events DESC
            """
        ).to_arrow(),
        "table",
        title="bronze.app_events by event type",
    )
    print_arrow(
        lh.sql(
            """
            SELECT CAST(event_time AS DATE) AS day, app_type, count(*) AS events,
                   count(DISTINCT user_id) AS daily_users
            FROM bronze.app_events GROUP BY ALL ORDER BY day, app_type
            """
        ).to_arrow(),
        "table",
        title="Daily users per app type",
    )
    t = lh.table("bronze.app_events")
    console.print(
        f"\n[bold green]done[/bold green] in {time.perf_counter() - started:.1f} s: "
        f"bronze.app_events has {t.count():,} rows at version {t.version} in {lh.root}"
    )
    console.print(
        "try next (after `source .venv/bin/activate`):\n"
        "  lakehouse tables\n"
        "  lakehouse describe bronze.app_events\n"
        "  lakehouse history bronze.app_events\n"
        '  lakehouse sql "SELECT * FROM bronze.app_events VERSION AS OF 1 LIMIT 5"'
    )
