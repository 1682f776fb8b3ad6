"""``lakehouse scheduler`` (the schedules, in the foreground, without the API) and
``lakehouse schedule list|history``."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lakehouse.errors import LakehouseError

TABLE_COLUMNS = ("job", "schedule", "next_run", "last_run", "last_trigger", "outcome", "queued")
schedule_app = typer.Typer(help="The scheduled jobs: pipelines, maintenance, alerts.")


def _fmt(fmt: str) -> str:
    if fmt not in ("table", "json", "csv"):
        raise LakehouseError(f"unknown format {fmt!r}", "use --format table, json or csv")
    return fmt


def _shown(rows: list[dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    if fmt != "table":
        return rows
    out = []
    for row in rows:
        out.append(
            {
                k: (v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v)
                for k, v in row.items()
            }
        )
    return out


def register(
    app: typer.Typer,
    lh_factory: Callable[[], Any],
    console: Any,
    print_records: Callable[..., None],
) -> None:
    @app.command("scheduler")
    def scheduler_command(
        lease: Annotated[
            float,
            typer.Option(
                help="Seconds the scheduler's lease lasts: another scheduler takes over "
                "this long after this one stops renewing it."
            ),
        ] = 10.0,
    ) -> None:
        """Run the schedules (pipelines, maintenance, alerts) in the foreground, without
        the API, until Ctrl-C or SIGTERM. Among several schedulers and servers, one acts."""
        from lakehouse.ops.scheduler import Scheduler

        if lease < 1:
            raise LakehouseError(f"--lease must be at least 1 second, got {lease:g}")
        lh = lh_factory()
        scheduler = Scheduler(
            lh,
            lease_seconds=lease,
            say=lambda line: console.print(line, highlight=False, soft_wrap=True),
        )
        console.print(f"Scheduler of {lh.root} ({scheduler.lease.holder}):", highlight=False)
        for job in scheduler.jobs.values():
            console.print(f"  {job.name}: {job.timing.describe()}", highlight=False)
            if job.pipeline is not None and not Path(job.pipeline).is_dir():
                console.print(
                    f"  [yellow]warning:[/yellow] no pipeline folder {job.pipeline}: its runs "
                    f"will fail until there is one (pipelines.{job.name}.path)",
                    highlight=False,
                )
        if not scheduler.jobs:
            console.print("  no job is scheduled (pipelines need a schedule in lakehouse.yaml)")

        def stop(_signum: int, _frame: Any) -> None:
            scheduler.stop(timeout=0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        scheduler.run()
        console.print("Scheduler stopped.")

    @schedule_app.command("list")
    def list_command(
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    ) -> None:
        """Each job: its schedule, next run, last run and outcome, queued runs, retries."""
        from lakehouse.service.schedules import list_schedules, scheduler_status

        _fmt(fmt)
        lh = lh_factory()
        rows = list_schedules(lh)
        if fmt == "table":  # the figures an operator looks at first; json and csv have all
            rows = [{c: r[c] for c in TABLE_COLUMNS} for r in rows]
        print_records(_shown(rows, fmt), fmt, title="Schedules")
        if fmt == "table":
            status = scheduler_status(lh)
            if status["live"]:
                console.print(f"[dim]scheduler: {status['holder']}[/dim]", highlight=False)
            else:
                console.print(
                    "[dim]no scheduler is running (lakehouse scheduler, or lakehouse serve)[/dim]"
                )

    @schedule_app.command("history")
    def history_command(
        job: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
        limit: Annotated[int, typer.Option(help="The latest this many events.")] = 50,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    ) -> None:
        """What the scheduler did at each due time: started, skipped, missed, ended."""
        from lakehouse.service.schedules import schedule_history

        _fmt(fmt)
        rows = schedule_history(lh_factory(), job, limit)
        columns = ("at", "job", "event", "due_at", "run_id", "trigger", "reason")
        rows = [{c: r.get(c) for c in columns} for r in rows]
        print_records(_shown(rows, fmt), fmt, title="Scheduler events")

    app.add_typer(schedule_app, name="schedule")
