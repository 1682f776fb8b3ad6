"""The scheduler's memory, in the catalog: each job's state (``schedule_state``) and what
happened at each due time (``schedule_log``). A scheduler that restarts, or another one
taking over, reads where the last one was from here.

A state is written only over the revision it was read at (``save`` answers False when
another process changed it first), so two schedulers racing at a lease hand-over cannot
both start the run of one due time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from lakehouse.catalog.schema import schedule_log, schedule_state

if TYPE_CHECKING:
    from lakehouse.catalog import Catalog


@dataclass(frozen=True)
class JobState:
    job: str
    kind: str
    last_due: datetime | None = None  # the last due time taken in (run, queued or not)
    next_due: datetime | None = None
    pending: tuple[datetime, ...] = ()  # due times waiting for their run, oldest first
    run_id: str | None = None  # the run in progress, else the last one
    run_due: datetime | None = None
    run_trigger: str | None = None
    run_started_at: datetime | None = None
    running: bool = False
    attempt: int = 0  # retries made for run_due
    retry_at: datetime | None = None
    outcome: str | None = None  # succeeded, failed, interrupted, command missing, ...
    error: str | None = None
    ended_at: datetime | None = None
    revision: int = field(default=0, compare=False)

    def but(self, **changes: Any) -> JobState:
        return replace(self, **changes)


_TIMES = ("last_due", "next_due", "run_due", "run_started_at", "retry_at", "ended_at")


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _from_row(row: Any) -> JobState:
    data = dict(row._mapping)
    pending = tuple(datetime.fromisoformat(x) for x in json.loads(data.pop("pending_json")))
    data.pop("updated_at", None)
    values: dict[str, Any] = {f.name: data[f.name] for f in fields(JobState) if f.name in data}
    for name in _TIMES:
        values[name] = _aware(values[name])
    values["running"] = bool(values["running"])
    return JobState(pending=pending, **values)


def _to_row(state: JobState) -> dict[str, Any]:
    out = {f.name: getattr(state, f.name) for f in fields(JobState)}
    out["pending_json"] = json.dumps([d.isoformat() for d in out.pop("pending")])
    out["running"] = int(out["running"])
    out["updated_at"] = datetime.now(UTC)
    return out


class ScheduleStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def states(self) -> dict[str, JobState]:
        """Every job's state, by job (jobs no longer in the settings included)."""

        def go() -> dict[str, JobState]:
            with self.catalog.engine.connect() as conn:
                rows = conn.execute(select(schedule_state)).fetchall()
            return {row.job: _from_row(row) for row in rows}

        return self.catalog._retry(go)

    def state(self, job: str, kind: str) -> JobState:
        """``job``'s state, made (with nothing handled yet) if it has none."""
        found = self.states().get(job)
        if found is not None:
            return found
        fresh = JobState(job=job, kind=kind)

        def go() -> None:
            try:
                with self.catalog.engine.begin() as conn:
                    conn.execute(insert(schedule_state).values(**_to_row(fresh)))
            except IntegrityError:  # made by another process meanwhile
                pass

        self.catalog._retry(go)
        return self.states()[job]

    def save(self, state: JobState) -> JobState | None:
        """Write ``state`` over the revision it was read at: the new state, or None when
        another process changed the job first (read it again)."""
        row = _to_row(state)
        row["revision"] = state.revision + 1
        table = schedule_state.c

        def go() -> int:
            with self.catalog.engine.begin() as conn:
                return int(
                    conn.execute(
                        update(schedule_state)
                        .where(and_(table.job == state.job, table.revision == state.revision))
                        .values(**row)
                    ).rowcount
                )

        if self.catalog._retry(go) != 1:
            return None
        return state.but(revision=state.revision + 1)

    def log(
        self,
        job: str,
        event: str,
        *,
        due_at: datetime | None = None,
        run_id: str | None = None,
        trigger: str | None = None,
        reason: str | None = None,
        holder: str | None = None,
    ) -> None:
        """One event of a job: started, skipped, missed, ended, retry planned, ..."""
        values = dict(
            job=job,
            due_at=due_at,
            event=event,
            run_id=run_id,
            trigger=trigger,
            reason=reason,
            holder=holder,
            at=datetime.now(UTC),
        )

        def go() -> None:
            with self.catalog.engine.begin() as conn:
                conn.execute(insert(schedule_log).values(**values))

        self.catalog._retry(go)

    def history(self, job: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest ``limit`` events (of ``job``, or of all), oldest first."""
        query = select(schedule_log).order_by(schedule_log.c.id.desc()).limit(limit)
        if job is not None:
            query = query.where(schedule_log.c.job == job)

        def go() -> list[dict[str, Any]]:
            with self.catalog.engine.connect() as conn:
                rows = conn.execute(query).fetchall()
            out = []
            for row in reversed(rows):
                item = dict(row._mapping)
                item["due_at"], item["at"] = _aware(item["due_at"]), _aware(item["at"])
                out.append(item)
            return out

        return self.catalog._retry(go)
