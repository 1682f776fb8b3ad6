"""``lakehouse maintain [TABLE] [--dry-run]``: what each table needs, and doing it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from lakehouse.service import maintenance as service

Fmt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
SHOWN = ("table", "action", "status", "reason", "seconds")


def register(app: typer.Typer, lh_factory: Any, console: Console, printer: Any) -> None:
    @app.command()
    def maintain(
        table: Annotated[str | None, typer.Argument(help="One table (default: all).")] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Only show what each table needs and why.")
        ] = False,
        fmt: Fmt = "table",
    ) -> None:
        """Compact, z-order, apply retention, vacuum and checkpoint the tables as the
        maintenance policies in lakehouse.yaml say. Exits with 1 if an action failed."""
        if fmt not in ("table", "json", "csv"):
            from lakehouse.errors import LakehouseError

            raise LakehouseError(f"unknown format {fmt!r}", "use --format table, json or csv")
        records = service.maintain(lh_factory(), table, dry_run=dry_run)
        if fmt == "table":  # the figures that fit a terminal; json and csv have all
            rows = [{k: r.get(k) for k in SHOWN} for r in records]
            printer(rows, fmt, "maintenance plan" if dry_run else "maintenance")
        else:
            keys = list(dict.fromkeys(k for r in records for k in r))
            printer([{k: r.get(k) for k in keys} for r in records], fmt, None)
        if service.failed(records):
            raise typer.Exit(1)
