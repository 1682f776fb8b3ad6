"""How far each scheduled pipeline is behind its schedule: the first time it was due
after its latest run started (or, never run, its latest due time), in its time zone,
against now."""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

DEFAULT_AFTER = 900.0  # behind by more than this is degraded, without a schedule_lag rule


def due_since(schedule: str, timezone: str, last_start: datetime | None, now: datetime) -> datetime:
    """The first due time after ``last_start`` (the latest due time if never run)."""
    from croniter import croniter

    zone = ZoneInfo(timezone)
    if last_start is None:
        return croniter(schedule, now.astimezone(zone)).get_prev(datetime).astimezone(UTC)
    return croniter(schedule, last_start.astimezone(zone)).get_next(datetime).astimezone(UTC)


def pipeline_lags(lh: Lakehouse, now: datetime) -> list[dict[str, Any]]:
    """Each pipeline of the settings (and each that has runs): its schedule, latest run,
    the due time it missed, how late it is (0 when on time), state and reasons."""
    runs = _latest_runs(lh)
    out = []
    for name in sorted(set(lh.settings.pipelines) | set(runs)):
        conf = lh.settings.pipelines.get(name)
        run = runs.get(name)
        started = run["started_at"] if run else None
        row: dict[str, Any] = {
            "pipeline": name,
            "schedule": conf.schedule if conf else None,
            "timezone": conf.timezone if conf else None,
            "last_run": None
            if run is None
            else {
                "run_id": run["run_id"],
                "status": run["status"],
                "started_at": started.isoformat() if started else None,
                "trigger": run.get("trigger"),
            },
            "due_at": None,
            "lag_seconds": 0.0,
            "state": "healthy",
            "reasons": [],
        }
        if conf is not None and conf.schedule and conf.enabled:
            due = due_since(conf.schedule, conf.timezone, started, now)
            row["due_at"] = due.isoformat()
            lag = max(0.0, (now - due).total_seconds())
            row["lag_seconds"] = round(lag, 3)
            limit = allowed_lag(lh, name)
            if lag > limit:
                row["state"] = "degraded"
                row["reasons"].append(
                    f"behind its schedule by {lag / 60:.0f} min (due {due:%Y-%m-%d %H:%M} UTC)"
                )
        if run is not None and run["status"] == "failed":
            row["state"] = "unhealthy"
            row["reasons"].append(f"its latest run ({run['run_id']}) failed")
        out.append(row)
    return out


def allowed_lag(lh: Lakehouse, pipeline: str) -> float:
    """The smallest ``after`` of the schedule_lag rules naming ``pipeline``."""
    found = [
        r.after
        for r in lh.settings.alerts.rules
        if r.when == "schedule_lag"
        and r.after is not None
        and any(fnmatch(pipeline, p) for p in r.pipelines)
    ]
    return min(found, default=DEFAULT_AFTER)


def _latest_runs(lh: Lakehouse) -> dict[str, dict[str, Any]]:
    """Each pipeline's latest run (``system.pipeline_runs``), by pipeline name."""
    from lakehouse.pipeline.records import RUNS

    if lh.catalog.get(RUNS) is None:
        return {}
    rows = lh.sql(
        f"SELECT * FROM {RUNS} QUALIFY row_number() OVER "
        "(PARTITION BY pipeline ORDER BY started_at DESC) = 1"
    ).to_dicts()
    return {row["pipeline"]: row for row in rows}
