"""``lakehouse health`` and ``lakehouse alerts list|evaluate``."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from lakehouse.errors import LakehouseError
from lakehouse.service import health as service

Fmt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]
_COLOURS = {"healthy": "green", "degraded": "yellow", "unhealthy": "red"}


def _check(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise LakehouseError(f"unknown format {fmt!r}", "use --format table or json")


def register(app: typer.Typer, lh_factory: Any, console: Console, printer: Any) -> None:
    @app.command("health")
    def health(fmt: Fmt = "table") -> None:
        """The health report: each table's freshness, last run, quality, files, growth and
        serving lag; each layer and the whole healthy, degraded or unhealthy, with the
        reasons. Exit code: 0 healthy, 2 degraded, 1 unhealthy."""
        _check(fmt)
        report = service.report(lh_factory())
        if fmt == "json":
            sys.stdout.write(json.dumps(report, default=str, indent=2) + "\n")
        else:
            _print(report, console, printer)
        code = service.EXIT_CODES[report["state"]]
        if code:
            raise typer.Exit(code)

    group = typer.Typer(help="Alerts: the rules of lakehouse.yaml, firing and resolved.")
    app.add_typer(group, name="alerts")

    @group.command("list")
    def list_alerts(
        limit: Annotated[int, typer.Option(help="History events to show.")] = 20,
        fmt: Fmt = "table",
    ) -> None:
        """The alerts firing now and the latest events."""
        _check(fmt)
        found = service.alerts(lh_factory(), limit)
        if fmt == "json":
            sys.stdout.write(json.dumps(found, default=str, indent=2) + "\n")
            return
        cols = ("rule", "severity", "subject", "message", "occurred_at")
        if found["firing"]:
            printer([{c: a[c] for c in cols} for a in found["firing"]], fmt, "firing")
        else:
            console.print("no alert is firing", highlight=False)
        if found["history"]:
            shown = ("occurred_at", "rule", "event", "subject", "delivery", "message")
            printer([{c: a[c] for c in shown} for a in found["history"]], fmt, "history")

    @group.command("evaluate")
    def evaluate(fmt: Fmt = "table") -> None:
        """Evaluate the rules once and deliver what fired or resolved (the scheduler runs
        this every alerts.interval). Exit code 1 when a delivery failed (the event stays
        pending and is sent again at the next evaluation)."""
        _check(fmt)
        done = service.evaluate(lh_factory())
        if fmt == "json":
            sys.stdout.write(json.dumps(done.as_dict(), default=str, indent=2) + "\n")
        else:
            for e in done.fired:
                console.print(f"[red]fired[/red] {e['rule']}: {e['message']}", highlight=False)
            for e in done.resolved:
                console.print(
                    f"[green]resolved[/green] {e['rule']}: {e['message']}", highlight=False
                )
            console.print(f"{done.firing} alert(s) firing", highlight=False)
        if done.errors:
            for error in done.errors:
                print(f"error: {error}", file=sys.stderr)
            print(
                "  hint: the events stay pending in system.alerts and are sent again at the "
                "next evaluation; check the receiver and alerts.webhooks in lakehouse.yaml",
                file=sys.stderr,
            )
            raise typer.Exit(1)


def _print(report: dict[str, Any], console: Console, printer: Any) -> None:
    rows = [
        {
            "table": t["table"],
            "state": t["state"],
            "age": _age(t["age_seconds"]),
            "sla": _age(t["sla_seconds"]),
            "last run": (t["last_run"] or {}).get("status"),
            "quality": None
            if t["quality_pass_rate"] is None
            else f"{t['quality_pass_rate'] * 100:.0f} %",
            "small files": t["small_files"],
            "size": t["size_bytes"],
            "growth/day": t["growth_bytes_per_day"],
            "since compaction": t["versions_since_compaction"],
            "serving lag": t["serving_lag_seconds"],
        }
        for t in report["tables"]
    ]
    printer(rows, "table", "tables")
    if report["pipelines"]:
        printer(
            [
                {
                    "pipeline": p["pipeline"],
                    "state": p["state"],
                    "schedule": p["schedule"],
                    "last run": (p["last_run"] or {}).get("status"),
                    "lag s": p["lag_seconds"],
                }
                for p in report["pipelines"]
            ],
            "table",
            "pipelines",
        )
    for name, layer in report["layers"].items():
        colour = _COLOURS[layer["state"]]
        console.print(
            f"{name}: [{colour}]{layer['state']}[/{colour}] ({layer['tables']} tables)",
            highlight=False,
        )
    colour = _COLOURS[report["state"]]
    console.print(f"overall: [bold {colour}]{report['state']}[/bold {colour}]", highlight=False)
    for reason in report["reasons"]:
        console.print(f"  - {reason}", highlight=False, markup=False)


def _age(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
