"""The scheduler's jobs, read from the settings: each pipeline with a schedule, table
maintenance and the alert check. A job is what to start (a pipeline folder, or a command
line of ``lakehouse``) and when (a cron expression in a time zone, or an interval), with
its overlap, catch-up and retry policies.

A new kind of job is one more entry in ``COMMANDS`` (a command line of ``lakehouse`` run
in a child process) or one more reader in ``jobs_of``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from croniter import croniter

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.settings.model import Settings

MAINTENANCE = "maintenance"
ALERTS = "alerts"
# Commands the scheduler runs as ``python -m lakehouse.cli ARGS`` (jobs that are no
# pipeline). A command this version does not have yet is recorded as "command missing".
COMMANDS: dict[str, tuple[str, ...]] = {
    MAINTENANCE: ("maintain",),
    ALERTS: ("alerts", "evaluate"),
}
CATCH_UP_CAP = 100  # at most this many missed due times are run (catch_up: all)


@dataclass(frozen=True)
class Timing:
    """When a job is due: a cron expression in a time zone, or every ``every`` seconds
    (counted from the epoch, so every process agrees on the due times)."""

    cron: str | None = None
    timezone: str = "UTC"
    every: float | None = None

    def describe(self) -> str:
        if self.cron is not None:
            return f"{self.cron} ({self.timezone})"
        return f"every {self.every:g} s"

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment`` (UTC)."""
        if self.every is not None:
            step = self.every
            ticks = int(moment.timestamp() // step) + 1
            return datetime.fromtimestamp(ticks * step, UTC)
        assert self.cron is not None
        seconds = len(self.cron.split()) == 6
        local = moment.astimezone(ZoneInfo(self.timezone))
        found = croniter(self.cron, local, second_at_beginning=seconds).get_next(datetime)
        return found.astimezone(UTC)

    def due_between(
        self, after: datetime, until: datetime, cap: int
    ) -> tuple[list[datetime], bool]:
        """Due times in (``after``, ``until``], oldest first: the last ``cap`` of them, and
        whether there were more (found backwards from ``until``, so a long downtime under a
        fine schedule costs ``cap`` steps, not one per missed time)."""
        found: list[datetime] = []
        if self.every is not None:
            last = int(until.timestamp() // self.every)
            first = int(after.timestamp() // self.every) + 1
            ticks = range(max(first, last - cap + 1), last + 1)
            return [
                datetime.fromtimestamp(i * self.every, UTC) for i in ticks
            ], last - first + 1 > cap
        assert self.cron is not None
        seconds = len(self.cron.split()) == 6
        start = until.replace(microsecond=0) + timedelta(seconds=1)
        it = croniter(
            self.cron, start.astimezone(ZoneInfo(self.timezone)), second_at_beginning=seconds
        )
        while True:
            moment = it.get_prev(datetime).astimezone(UTC)
            if moment <= after:
                return found[::-1], False
            if moment <= until:
                if len(found) == cap:
                    return found[::-1], True
                found.append(moment)


@dataclass(frozen=True)
class Job:
    """One scheduled job. ``pipeline`` is the folder of a pipeline job; ``command`` the
    arguments of ``lakehouse`` of a command job."""

    name: str
    kind: Literal["pipeline", "command"]
    timing: Timing
    pipeline: str | None = None
    command: tuple[str, ...] = ()
    overlap: Literal["skip", "queue"] = "skip"
    catch_up: Literal["none", "latest", "all"] = "latest"
    retries: int = 0
    retry_backoff: float = 30.0

    def command_line(self) -> list[str]:
        """How a command job is started: this interpreter, the ``lakehouse`` command."""
        return [sys.executable, "-m", "lakehouse.cli", *self.command]

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1, 2, ...): the backoff, doubled after
        each failed attempt."""
        return float(self.retry_backoff * (2 ** (attempt - 1)))


def jobs_of(settings: Settings) -> dict[str, Job]:
    """Every job the settings schedule, by name: the pipelines (by their key under
    ``pipelines``) with a schedule that are enabled, then maintenance and alerts."""
    jobs: dict[str, Job] = {}
    for name, p in settings.pipelines.items():
        if p.schedule is None or not p.enabled:
            continue
        jobs[name] = Job(
            name=name,
            kind="pipeline",
            timing=Timing(cron=p.schedule, timezone=p.timezone),
            pipeline=p.path,
            overlap=p.overlap,
            catch_up=p.catch_up,
            retries=p.retries,
            retry_backoff=p.retry_backoff,
        )
    for name in (MAINTENANCE, ALERTS):
        if name in jobs:
            raise LakehouseError(
                f"a pipeline is named {name!r}, as the scheduler's {name} job",
                "rename the pipeline's key under pipelines: in lakehouse.yaml",
            )
    if settings.maintenance.schedule is not None:
        jobs[MAINTENANCE] = Job(
            name=MAINTENANCE,
            kind="command",
            timing=Timing(
                cron=settings.maintenance.schedule, timezone=settings.maintenance.timezone
            ),
            command=COMMANDS[MAINTENANCE],
        )
    if settings.alerts.interval > 0:
        jobs[ALERTS] = Job(
            name=ALERTS,
            kind="command",
            timing=Timing(every=settings.alerts.interval),
            command=COMMANDS[ALERTS],
        )
    return jobs
