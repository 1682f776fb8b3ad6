"""The dashboard commands of the CLI: list, validate, show, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from lakehouse.dashboards.model import Dashboard
from lakehouse.dashboards.reader import default_folder, find_file, load_folder, read_dashboard
from lakehouse.errors import LakehouseError

Dir = Annotated[
    str | None,
    typer.Option(
        "--dir",
        help="The folder of dashboard files (default: $LAKEHOUSE_DASHBOARDS or ./dashboards).",
        show_default=False,
    ),
]
Vars = Annotated[list[str] | None, typer.Option("--var", help="A variable's value: name=value.")]
SHOWN_ROWS = 5


def _folder(folder: str | None) -> Path:
    return Path(folder) if folder else default_folder()


def _load(folder: str | None, name: str) -> Dashboard:
    path = find_file(_folder(folder), name)
    dashboard, problems = read_dashboard(path)
    if dashboard is None:
        raise LakehouseError(str(problems[0]), "fix the file: lakehouse dashboards validate")
    return dashboard


def _variables(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        if "=" not in item:
            raise LakehouseError(f"--var {item!r} is not name=value", "e.g. --var page=checkout")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def register(app: typer.Typer, lh_factory: Any, console: Console, printer: Any) -> None:
    group = typer.Typer(
        help="Dashboards as files: list, validate, show, export to Grafana.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="dashboards")

    @group.command("list")
    def list_command(
        folder: Dir = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    ) -> None:
        """The dashboard files of the folder: title, panels, refresh, first problem."""
        rows = []
        for path, dashboard, problems in load_folder(_folder(folder)):
            errors = [p for p in problems if p.severity == "error"]
            rows.append(
                {
                    "name": path.stem,
                    "title": dashboard.title if dashboard else None,
                    "panels": len(dashboard.panels) if dashboard else 0,
                    "refresh_seconds": dashboard.refresh if dashboard else None,
                    "file": str(path),
                    "error": str(errors[0]) if errors else None,
                }
            )
        printer(rows, fmt, "dashboards")

    @group.command("validate")
    def validate_command(
        folder: Annotated[
            str | None,
            typer.Argument(help="The folder (default: $LAKEHOUSE_DASHBOARDS or ./dashboards)."),
        ] = None,
    ) -> None:
        """Check every dashboard file against the warehouse: keys, SQL, parameters,
        tables, columns. Exit 1 when any problem is an error."""
        from lakehouse.dashboards.validate import validate

        root = _folder(folder)
        files = load_folder(root)
        problems = validate(root, lh_factory())
        errors = [p for p in problems if p.severity == "error"]
        for problem in problems:
            style = "red" if problem.severity == "error" else "yellow"
            console.print(f"[{style}]{escape(str(problem))}[/{style}]", soft_wrap=True)
        panels = sum(len(d.panels) for _p, d, _f in files if d is not None)
        summary = (
            f"{len(files)} dashboard(s), {panels} panel(s): {len(errors)} error(s), "
            f"{len(problems) - len(errors)} warning(s)"
        )
        if errors:
            console.print(f"[bold red]{summary}[/bold red]", highlight=False)
            raise typer.Exit(1)
        console.print(f"[green]{summary}[/green]", highlight=False)

    @group.command("show")
    def show_command(
        name: Annotated[str, typer.Argument(help="The dashboard's name (its file's, no .yaml).")],
        folder: Dir = None,
        var: Vars = None,
        start: Annotated[
            str | None, typer.Option("--from", help="Start of the time range (ISO time).")
        ] = None,
        end: Annotated[
            str | None, typer.Option("--to", help="End of the time range (ISO time).")
        ] = None,
    ) -> None:
        """Run every panel of a dashboard and print each result compactly."""
        from lakehouse.dashboards.run import Caller, run_panel, values_for

        dashboard = _load(folder, name)
        lh = lh_factory()
        caller = Caller()
        values = values_for(lh, dashboard, caller, _variables(var), start, end)
        shown = ", ".join(
            f"{k}={v.isoformat() if hasattr(v, 'isoformat') else v}" for k, v in values.items()
        )
        console.print(f"[bold]{escape(dashboard.title)}[/bold]  [dim]{escape(shown)}[/dim]")
        for problem in dashboard.problems:
            console.print(f"[yellow]{escape(str(problem))}[/yellow]", soft_wrap=True)
        for panel in dashboard.panels:
            result = run_panel(lh, panel, values, caller)
            head = f"[bold cyan]{panel.id}[/bold cyan] {escape(panel.title)} [dim]({panel.kind})"
            if result.error is not None:
                console.print(f"{head}[/dim]  [red]error: {escape(result.error.message)}[/red]")
                if result.error.hint:
                    console.print(f"    [yellow]hint: {escape(result.error.hint)}[/yellow]")
                continue
            assert result.table is not None
            console.print(
                f"{head} {result.row_count} row(s), {result.elapsed_ms:.0f} ms, "
                f"engine {result.engine}[/dim]"
            )
            grid = RichTable(show_edge=False, pad_edge=False, box=None, header_style="dim")
            for column in result.columns:
                grid.add_column(column, overflow="fold")
            for row in result.table.slice(0, SHOWN_ROWS).to_pylist():
                grid.add_row(*("" if v is None else escape(str(v)) for v in row.values()))
            console.print(grid)
            if result.row_count > SHOWN_ROWS:
                console.print(f"    [dim]... {result.row_count - SHOWN_ROWS} more[/dim]")

    @group.command("export")
    def export_command(
        name: Annotated[str, typer.Argument(help="The dashboard's name.")],
        grafana: Annotated[
            Path, typer.Option("--grafana", help="Write the Grafana dashboard JSON to this file.")
        ],
        folder: Dir = None,
    ) -> None:
        """Write the dashboard as a Grafana dashboard reading ClickHouse."""
        from lakehouse.dashboards.grafana import export_grafana

        dashboard = _load(folder, name)
        grafana.write_text(json.dumps(export_grafana(dashboard), indent=2) + "\n")
        console.print(
            f"wrote {grafana}: {len(dashboard.panels)} panel(s) for Grafana's ClickHouse "
            "data source (choose it when importing)",
            highlight=False,
        )
