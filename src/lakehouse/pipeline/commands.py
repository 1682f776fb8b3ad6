"""The pipeline commands of the CLI: validate, run, runs, quality."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.definition import Pipeline, load_pipeline
from lakehouse.pipeline.records import TRIGGERS, RunReport

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

STATUS_STYLE = {
    "ok": "green",
    "unchanged": "dim",
    "failed": "bold red",
    "not run": "yellow",
    "rolled back": "yellow",
}


def run_with_progress(
    lh: Lakehouse,
    pipeline: Pipeline,
    console: Console,
    *,
    full_refresh: bool = False,
    select: list[str] | None = None,
    run_id: str | None = None,
    trigger: str = "manual",
    engine: str | None = None,
    master: str | None = None,
) -> RunReport:
    """Run with a progress bar and a line per dataset as it finishes."""
    from lakehouse.service.runs import start_run

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"pipeline {pipeline.name}", total=1)

        def on_progress(event: str, name: str, details: dict[str, Any]) -> None:
            if event == "run":
                progress.update(task, total=len(details["datasets"]))
            elif event == "start":
                progress.update(task, description=f"{name}")
            elif event == "file":
                progress.update(task, description=f"{name} <- {details['file'].split('/')[-1]}")
            elif event == "done":
                item = details["item"]
                style = STATUS_STYLE.get(item.status, "white")
                figures = (
                    f"read {item.rows_read:,}  written {item.rows_written:,}"
                    + (f"  dropped {item.rows_dropped:,}" if item.rows_dropped else "")
                    + (f"  quarantined {item.rows_quarantined:,}" if item.rows_quarantined else "")
                    + (
                        f"  deduplicated {item.rows_deduplicated:,}"
                        if item.rows_deduplicated
                        else ""
                    )
                )
                on = f" on {item.engine}" if item.engine and item.engine != "duckdb" else ""
                line = (
                    f"[{style}]{item.status:>9}[/{style}]  {name:<34} "
                    f"{figures if item.status == 'ok' else ''}  [dim]{item.seconds:.2f}s "
                    f"{item.strategy}{on}[/dim]"
                )
                progress.console.print(line, soft_wrap=True, highlight=False)
                progress.advance(task)

        return start_run(
            lh,
            pipeline,
            full_refresh=full_refresh,
            select=select,
            run_id=run_id,
            on_progress=on_progress,
            trigger=trigger,
            engine=engine,
            master=master,
        )


def _variables(values: list[str] | None) -> dict[str, str]:

    out = {}
    for item in values or []:
        if "=" not in item:
            raise LakehouseError(f"--var {item!r} is not name=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


Vars = Annotated[list[str] | None, typer.Option("--var", help="A pipeline variable: name=value.")]
EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Run every dataset's query on duckdb, spark or auto (default: as the datasets, "
        "the pipeline's settings or engine.default say).",
    ),
]
MasterOption = Annotated[
    str | None,
    typer.Option("--master", help="Spark's master: local[N], local[*] or spark://host:port."),
]


def _engine(value: str | None) -> str | None:
    if value is not None and value not in ("duckdb", "spark", "auto"):
        raise LakehouseError(f"unknown engine {value!r}", "use duckdb, spark or auto")
    return value


def register(app: typer.Typer, lh_factory: Any, console: Console, printer: Any) -> None:
    @app.command()
    def validate(
        folder: Annotated[str, typer.Argument(help="The pipeline folder.")],
        var: Vars = None,
        engine: EngineOption = None,
    ) -> None:
        """Check a pipeline without running it: headers, SQL, tables, cycles, columns (and,
        for datasets on Spark, that Spark can run their SQL)."""
        from lakehouse.pipeline.plan import validate as check
        from lakehouse.spark.routing import explain

        pipeline = load_pipeline(folder, _variables(var))
        lh = lh_factory()
        plan = check(pipeline, lh, engine=_engine(engine))
        rows = [
            {
                "dataset": name,
                "kind": pipeline.datasets[name].kind,
                "reads": ", ".join(pipeline.datasets[name].depends_on),
                "refresh": plan.strategy[name],
                **dict(
                    zip(
                        ("engine", "why"),
                        explain(lh.engine, lh.settings, pipeline, name, _engine(engine)),
                        strict=True,
                    )
                ),
            }
            for name in plan.order
        ]
        printer(rows, "table", f"pipeline {pipeline.name}: {len(rows)} datasets, in run order")
        if not plan.unchecked:
            console.print("[green]valid[/green]")
            return
        console.print(
            f"[yellow]valid as far as it could be checked: the columns of "
            f"{len(plan.unchecked)} dataset(s) are not known before a run[/yellow]",
            soft_wrap=True,
        )
        for name, why in plan.unchecked.items():
            console.print(f"  {name}: {why}", soft_wrap=True, highlight=False)

    @app.command()
    def run(
        folder: Annotated[str, typer.Argument(help="The pipeline folder.")],
        full_refresh: Annotated[
            bool, typer.Option("--full-refresh", help="Recompute from all input rows.")
        ] = False,
        select: Annotated[
            list[str] | None,
            typer.Option(
                "--select",
                "-s",
                help="Datasets to run: NAME, NAME+ (and downstream), +NAME (and upstream).",
            ),
        ] = None,
        var: Vars = None,
        run_id: Annotated[
            str | None, typer.Option("--run-id", help="Name the run (default: made up).")
        ] = None,
        trigger: Annotated[
            str,
            typer.Option(
                "--trigger",
                help="What started the run, as recorded: manual, schedule, api, airflow or retry.",
            ),
        ] = "manual",
        engine: EngineOption = None,
        master: MasterOption = None,
    ) -> None:
        """Run a pipeline: each dataset processes what is new since the last run."""
        if trigger not in TRIGGERS:
            raise LakehouseError(
                f"unknown trigger {trigger!r}", f"use one of {', '.join(TRIGGERS)}"
            )
        pipeline = load_pipeline(folder, _variables(var))
        report = run_with_progress(
            lh_factory(),
            pipeline,
            console,
            full_refresh=full_refresh,
            select=select,
            run_id=run_id,
            trigger=trigger,
            engine=_engine(engine),
            master=master,
        )
        written = sum(d.rows_written for d in report.datasets)
        console.print(
            f"[bold green]run {report.run_id} succeeded[/bold green] in {report.seconds:.1f} s: "
            f"{len(report.datasets)} datasets, {written:,} rows written",
            soft_wrap=True,
        )

    @app.command()
    def runs(
        run_id: Annotated[str | None, typer.Argument(help="Show one run's datasets.")] = None,
        pipeline: Annotated[str | None, typer.Option(help="Only this pipeline's runs.")] = None,
        limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    ) -> None:
        """List pipeline runs, newest first, or the per-dataset figures of one run."""
        from lakehouse.service import runs as service

        lh = lh_factory()
        if not service.has_runs(lh):
            console.print("[dim]no runs yet: lakehouse run FOLDER[/dim]")
            return
        if run_id is not None:
            rows = service.run_datasets(lh, run_id, service.DATASET_COLUMNS)
            printer(rows, fmt, f"run {run_id}")
            return
        rows = service.list_runs(lh, pipeline, limit, service.RUN_COLUMNS)
        printer(rows, fmt, "pipeline runs")

    @app.command()
    def quality(
        table: Annotated[str, typer.Argument(help="A dataset, e.g. silver.app_events.")],
        runs_back: Annotated[int, typer.Option("--runs", help="How many runs back.")] = 1,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    ) -> None:
        """Expectation results of a table's latest runs, with a quality score."""
        from lakehouse.service.quality import table_quality

        lh = lh_factory()
        report = table_quality(lh, table, runs_back)
        rows = report["results"]
        if fmt == "table":  # samples are for json and csv; a terminal shows the figures
            rows = [{k: v for k, v in r.items() if k != "sample"} for r in rows]
        title = f"{table}: quality score {report['score']}, {report['status']}"
        printer(rows, fmt, title)
        if fmt == "table" and report["quarantined"]:
            unreadable = any(r["check_type"] == "readable" for r in report["results"])
            if unreadable:
                console.print(
                    f"{report['quarantined']:,} record(s) in {table}_quarantine could not be "
                    "read; the table keeps their raw text and the reason",
                    soft_wrap=True,
                )
                return
            from lakehouse.pipeline.records import pipeline_folder

            folder = pipeline_folder(lh, report["table"])
            command = f"lakehouse replay {report['table']}" + (
                f" -p {shlex.quote(folder)}" if folder else " -p PIPELINE_FOLDER"
            )
            console.print(
                f"{report['quarantined']:,} row(s) in {report['table']}_quarantine; after a "
                f"fix, `{command}` sends them through the checks again",
                soft_wrap=True,
            )

    @app.command()
    def replay(
        table: Annotated[str, typer.Argument(help="The dataset whose quarantine to replay.")],
        folder: Annotated[
            str | None,
            typer.Option(
                "--pipeline", "-p", help="The pipeline folder (default: the one that wrote it)."
            ),
        ] = None,
        var: Vars = None,
    ) -> None:
        """Send a dataset's quarantined rows through its (fixed) checks again."""
        from lakehouse.service.replay import replay as replay_table

        done = replay_table(lh_factory(), table, folder, _variables(var))
        dropped = ", ".join(f"{n:,} by {name}" for name, n in sorted(done["dropped_by"].items()))
        console.print(
            f"{table}: {done['replayed']:,} quarantined row(s) replayed: "
            f"{done['written']:,} now pass and were written, "
            f"{done['still_failing']:,} still fail and stay quarantined, "
            f"{done['dropped']:,} dropped"
            + (f" ({dropped})" if dropped else "")
            + f", {done['deduplicated']:,} already in the table by key"
            + (f" (run {done['run_id']})" if done["run_id"] else ""),
            soft_wrap=True,
        )

    @app.command()
    def lineage(
        table: Annotated[str, typer.Argument(help="A table, e.g. gold.user_segments.")],
        upstream: Annotated[bool, typer.Option("--upstream", help="Only what it reads.")] = False,
        downstream: Annotated[
            bool, typer.Option("--downstream", help="Only what reads it.")
        ] = False,
        columns: Annotated[bool, typer.Option("--columns", help="Show column edges.")] = False,
        openlineage: Annotated[
            str | None,
            typer.Option("--openlineage", help="Write OpenLineage events (JSON lines) to FILE."),
        ] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    ) -> None:
        """Where a table's data comes from and where it goes (table and column level)."""
        import json

        from lakehouse.lineage import lineage_json, lineage_report

        lh = lh_factory()
        direction = "upstream" if upstream and not downstream else "both"
        if downstream and not upstream:
            direction = "downstream"
        if openlineage:
            from lakehouse.lineage import write_openlineage

            count = write_openlineage(lh, openlineage, table=table)
            console.print(f"wrote {count} OpenLineage event(s) to {openlineage}")
            return
        if fmt == "json":
            data = lineage_json(lh, table, direction=direction, columns=columns)
            console.print_json(json.dumps(data, default=str))
            return
        console.print(
            lineage_report(lh, table, direction=direction, columns=columns), highlight=False
        )
