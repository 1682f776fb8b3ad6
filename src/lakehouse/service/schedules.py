"""The scheduled jobs as the CLI (``lakehouse schedule list``), the API (``GET
/schedules``) and the web UI show them: each job's schedule and policies, its next due
time, its last run and how it ended; which scheduler holds the lease; what happened at
each due time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.ops.jobs import jobs_of
from lakehouse.ops.lease import SCHEDULER, Lease
from lakehouse.ops.schedule_store import ScheduleStore

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

SCHEDULE_COLUMNS = (
    "job",
    "kind",
    "schedule",
    "next_run",
    "last_run",
    "last_trigger",
    "outcome",
    "run_id",
    "queued",
    "retry_at",
    "overlap",
    "catch_up",
    "retries",
    "error",
)


def list_schedules(lh: Lakehouse, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per job the settings schedule (in ``SCHEDULE_COLUMNS``): ``next_run`` is
    its next due time, ``last_run`` when its last run started, ``outcome`` how that run
    ended (running, succeeded, failed, interrupted, command missing), or None if the
    scheduler never ran it."""
    now = now or datetime.now(UTC)
    states = ScheduleStore(lh.catalog).states()
    rows = []
    for job in jobs_of(lh.settings).values():
        state = states.get(job.name)
        rows.append(
            {
                "job": job.name,
                "kind": job.kind,
                "schedule": job.timing.describe(),
                "next_run": job.timing.next_after(now),
                "last_run": state.run_started_at if state else None,
                "last_trigger": state.run_trigger if state else None,
                "outcome": state.outcome if state else None,
                "run_id": state.run_id if state else None,
                "queued": len(state.pending) if state else 0,
                "retry_at": state.retry_at if state else None,
                "overlap": job.overlap,
                "catch_up": job.catch_up,
                "retries": job.retries,
                "error": state.error if state else None,
            }
        )
    return rows


def scheduler_status(lh: Lakehouse) -> dict[str, Any]:
    """Which process holds the scheduler's lease (``holder``, ``since``, ``until``), and
    whether it is live (not expired)."""
    row = Lease(lh.catalog, SCHEDULER).current()
    if row is None:
        return {"holder": None, "since": None, "until": None, "live": False}
    until = row["expires_at"]
    assert isinstance(until, datetime)
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    since = row["acquired_at"]
    assert isinstance(since, datetime)
    return {
        "holder": row["holder"],
        "since": since if since.tzinfo else since.replace(tzinfo=UTC),
        "until": until,
        "live": until > datetime.now(UTC),
    }


def schedule_history(
    lh: Lakehouse, job: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The latest ``limit`` events of the scheduler (of ``job``, or of all), oldest
    first: started (with the run id and trigger), skipped, missed, ended, retries."""
    return ScheduleStore(lh.catalog).history(job, limit)
