"""``lakehouse airflow export``: a pipeline as an Airflow DAG file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lakehouse.errors import LakehouseError


def register(app: typer.Typer, where: Callable[[], dict[str, Any]], console: Console) -> None:
    """``where()`` gives the warehouse, config and profile the tasks are to use."""
    group = typer.Typer(help="Pipelines as Apache Airflow DAGs.", no_args_is_help=True)
    app.add_typer(group, name="airflow")

    @group.command("export")
    def export(
        folder: Annotated[str, typer.Argument(help="The pipeline folder.")],
        out: Annotated[
            str | None,
            typer.Option("--out", "-o", help="The DAG file (default DAG_ID.py; - for stdout)."),
        ] = None,
        per: Annotated[str, typer.Option(help="One task per dataset or per layer.")] = "dataset",
        schedule: Annotated[
            str | None, typer.Option(help="A cron expression or preset (default: none).")
        ] = None,
        dag_id: Annotated[
            str | None, typer.Option("--dag-id", help="Default lakehouse_PIPELINE.")
        ] = None,
        var: Annotated[
            list[str] | None, typer.Option("--var", help="A pipeline variable: name=value.")
        ] = None,
        lakehouse_command: Annotated[
            str | None,
            typer.Option(
                "--lakehouse-command",
                help="How a task calls lakehouse (default: this environment's executable).",
            ),
        ] = None,
    ) -> None:
        """Write an Airflow DAG file running the pipeline: tasks and dependencies baked in,
        each task a lakehouse run of its datasets (trigger airflow) on this warehouse."""
        from lakehouse.airflow.export import render
        from lakehouse.airflow.tasks import dag_spec
        from lakehouse.pipeline.commands import _variables

        spec = dag_spec(
            folder,
            per=per,
            dag_id=dag_id,
            schedule=schedule,
            variables=_variables(var),
            lakehouse_command=lakehouse_command,
            **where(),
        )
        text = render(spec)
        if out == "-":
            sys.stdout.write(text)
            return
        target = Path(out or f"{spec['dag_id']}.py")
        if target.is_dir():
            raise LakehouseError(f"{target} is a folder", "give the file: --out FOLDER/NAME.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        console.print(
            f"wrote DAG {spec['dag_id']} ({len(spec['tasks'])} tasks, one per {per}) to {target}",
            soft_wrap=True,
            highlight=False,
        )
