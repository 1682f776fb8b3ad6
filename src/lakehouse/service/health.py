"""The health report and the alerts, as the CLI, the API, the UI and the scheduler use
them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.ops import alerts as ops_alerts
from lakehouse.ops import health as ops_health

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.health")

EXIT_CODES = {"healthy": 0, "unhealthy": 1, "degraded": 2}
"""``lakehouse health``'s exit code for each overall state."""


def report(lh: Lakehouse) -> dict[str, Any]:
    """The health report: tables, layers, pipelines, the overall state and its reasons."""
    return ops_health.build_report(lh)


def visible_report(full: dict[str, Any], readable: set[str]) -> dict[str, Any]:
    """``full`` cut to the tables in ``readable``: layers and the overall state are judged
    again from those alone, so no other table's name shows."""
    from datetime import datetime

    tables = [t for t in full["tables"] if t["table"] in readable]
    now = datetime.fromisoformat(full["generated_at"])
    return ops_health.summarize(tables, full["pipelines"], now)


def write_report(lh: Lakehouse) -> Path | None:
    """Write the report to ``<warehouse>/_health/report.json``."""
    return ops_health.write_report(lh)


def after_run(lh: Lakehouse) -> None:
    """Called when a run ends: the report written; a failure is logged, never raised."""
    try:
        ops_health.write_report(lh)
    except Exception as exc:  # noqa: BLE001 - the run's outcome is not the report's
        log.warning("the health report was not written after the run: %s", exc)


def alerts(lh: Lakehouse, limit: int = 100) -> dict[str, Any]:
    """The alerts firing now and the latest ``limit`` events."""
    return {"firing": ops_alerts.firing(lh), "history": ops_alerts.history(lh, limit)}


def evaluate(lh: Lakehouse) -> ops_alerts.Evaluation:
    """Evaluate the alert rules once and deliver the events."""
    return ops_alerts.evaluate(lh)
