"""``lakehouse demo``: the example platform end to end (SPEC section 11).

It writes the four sources as files into ``<warehouse>/landing`` (once; a second demo keeps
them, so it builds the same tables), runs the ``pipelines/demo`` pipeline over them, and
prints what was built.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table as RichTable

from lakehouse.errors import LakehouseError
from lakehouse.warehouse import Lakehouse

if TYPE_CHECKING:
    from lakehouse.pipeline import Pipeline, RunReport

LAYER_ORDER = ("bronze", "silver", "gold")


def demo_pipeline_folder() -> Path:
    """``pipelines/demo`` of the working directory, else the one next to the package."""
    here = Path("pipelines/demo")
    if (here / "pipeline.yml").exists():
        return here
    bundled = Path(__file__).resolve().parents[3] / "pipelines" / "demo"
    if (bundled / "pipeline.yml").exists():
        return bundled
    raise LakehouseError(
        "the demo pipeline (pipelines/demo) was not found",
        "run the demo from the project folder, or pass --pipeline",
    )


def run_demo(
    lh: Lakehouse,
    *,
    events: int = 1500,
    console: Console | None = None,
    pipeline_folder: Path | None = None,
) -> None:
    from lakehouse.demo.landing import write_sources
    from lakehouse.pipeline import load_pipeline
    from lakehouse.pipeline.commands import run_with_progress

    console = console or Console()
    if not lh.local:
        raise LakehouseError("the demo writes its sources to a local folder", "use a folder")
    started = time.perf_counter()
    pipeline = load_pipeline(pipeline_folder or demo_pipeline_folder())
    landing = Path(lh.root) / "landing"
    marker = landing / "_generated.json"
    if marker.exists():
        made = json.loads(marker.read_text()).get("parameters", {}).get("events")
        if made != events:
            console.print(
                f"[yellow]the landing folder holds {made} app events, not {events}: "
                "starting the demo over[/yellow]"
            )
            _reset(lh, pipeline, landing)
    if not marker.exists():
        with console.status(f"generating the sources ({events:,} app events) in {landing}"):
            write_sources(landing, events=events)
    report = run_with_progress(lh, pipeline, console)
    _summary(lh, pipeline, report, console, time.perf_counter() - started)


def _reset(lh: Lakehouse, pipeline: Pipeline, landing: Path) -> None:
    names = set(lh.catalog.names())
    for ds in pipeline.datasets.values():
        for table in (ds.name, ds.quarantine):
            if table in names:
                lh.drop(table)
    shutil.rmtree(landing, ignore_errors=True)


def _summary(
    lh: Lakehouse, pipeline: Pipeline, report: RunReport, console: Console, seconds: float
) -> None:
    from lakehouse.pipeline.quality_report import result_status

    grid = RichTable(title="tables built", header_style="bold cyan")
    for column in ("layer", "table", "kind", "rows", "version"):
        grid.add_column(column, justify="right" if column in ("rows", "version") else "left")
    infos = {i.name: i for i in lh.tables()}
    for layer in LAYER_ORDER:
        for name, ds in sorted(pipeline.datasets.items()):
            if ds.layer != layer or name not in infos:
                continue
            info = infos[name]
            grid.add_row(layer, name, ds.kind, f"{info.row_count:,}", str(info.version))
            quarantine = infos.get(ds.quarantine)
            if quarantine is not None and quarantine.row_count:
                grid.add_row(
                    "", f"  {ds.quarantine}", "quarantine", f"{quarantine.row_count:,}", ""
                )
    console.print(grid)
    checks = RichTable(title="data quality (this run)", header_style="bold cyan")
    for column in ("dataset", "expectation", "action", "result"):
        checks.add_column(column)
    colours = {"passed": "green", "warning": "yellow", "failed": "red"}
    for item in report.datasets:
        for c in item.checks:
            status = result_status(c.passed, c.action)
            result = f"[{colours[status]}]{status}[/{colours[status]}]"
            if not c.passed:
                result += f": {c.failed_rows:,} of {c.total_rows:,} rows"
            checks.add_row(item.dataset, c.expectation, c.action, result)
    if checks.row_count:
        console.print(checks)
    else:
        console.print("[dim]no expectation was checked: nothing new arrived[/dim]")
    written = sum(d.rows_written for d in report.datasets)
    console.print(
        f"\n[bold green]done[/bold green] in {seconds:.1f} s: run {report.run_id}, "
        f"{len(report.datasets)} datasets, {written:,} rows written, warehouse {lh.root}",
        soft_wrap=True,
    )
    console.print(
        "try next (after `source .venv/bin/activate`):\n"
        "  lakehouse tables --layer gold\n"
        '  lakehouse sql "SELECT * FROM gold.daily_summary ORDER BY day"\n'
        '  lakehouse sql "SELECT segment, count(*) FROM gold.user_segments GROUP BY ALL"\n'
        "  lakehouse runs\n"
        "  lakehouse quality silver.app_events\n"
        "  lakehouse quality bronze.app_events   # lines that could not be read\n"
        "  lakehouse lineage gold.user_segments --upstream\n"
        "  lakehouse history silver.customers\n"
        "  lakehouse serve           # then open the URL it prints, and the dashboard\n"
        "                            # at /#/dashboards/platform (live with demo --stream)\n"
        "  lakehouse serving status  # the gold and realtime mirrors in ClickHouse\n"
        "  lakehouse demo            # again: nothing new, the same tables",
        soft_wrap=True,
        highlight=False,
    )
