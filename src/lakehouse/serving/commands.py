"""The serving commands of the CLI: status, refresh, sql."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from lakehouse.service import serving as service

Fmt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]


def register(app: typer.Typer, lh_factory: Any, console: Console, printer: Any) -> None:
    group = typer.Typer(
        help="The serving store (ClickHouse): mirrors of the gold and realtime tables.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="serving")

    @group.command("status")
    def status(fmt: Fmt = "table") -> None:
        """Each mirror: its table's version, the version it holds, rows, lag."""
        rows = service.status(lh_factory())
        if not rows and fmt == "table":
            console.print("[dim]nothing to mirror yet: the gold and realtime layers are empty")
            return
        if fmt == "table":  # the figures that fit a terminal; json and csv have all
            rows = [
                {
                    "table": r["table"],
                    "delta": r.get("delta_version"),
                    "serving": r.get("serving_version"),
                    "rows": r.get("rows"),
                    "lag s": r.get("lag_seconds"),
                    "state": r.get("state"),
                }
                for r in rows
            ]
        printer(rows, fmt, "serving store")

    @group.command("refresh")
    def refresh(
        table: Annotated[str | None, typer.Argument(help="One table (default: all).")] = None,
        fmt: Fmt = "table",
    ) -> None:
        """Bring the mirrors to their tables' newest versions now."""
        done = service.refresh(lh_factory(), table)
        if not done and fmt == "table":
            console.print("every mirror is current", highlight=False)
            return
        printer(done, fmt, "refreshed")

    @group.command("sql")
    def sql(
        query: Annotated[str, typer.Argument(help="ClickHouse SQL; '-' reads standard input.")],
        fmt: Fmt = "table",
    ) -> None:
        """Run a statement in ClickHouse's dialect against the mirrors."""
        text = sys.stdin.read() if query == "-" else query
        printer(service.sql(lh_factory(), text).to_pylist(), fmt, None)
