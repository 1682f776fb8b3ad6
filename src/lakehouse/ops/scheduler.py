"""The scheduler: starts each job (``ops/jobs.py``) at its due times, in a child process,
while it holds the scheduler's lease (``ops/lease.py``), so among several servers and
``lakehouse scheduler`` processes exactly one acts.

Every tick (at most ``tick`` seconds apart, and at each job's next due time) the holder:

1. sees whether the run of each job ended (its launch's exit, or for a run started
   before a restart, the pipeline's lock and run record): succeeded, failed (a retry is
   planned after the backoff, doubled each attempt), interrupted (its scheduler died:
   the due time is run again), or "command missing";
2. takes in the due times since the last one handled: after downtime the catch-up
   policy says which run (none, the latest, all); a due time that comes while the job's
   last run still goes is skipped and recorded (overlap ``skip``) or queued (``queue``);
3. starts the oldest queued due time, or the retry that is due, if nothing runs.

Each step is written to the job's state over the revision it was read at
(``ops/schedule_store.py``) before a run is started, so a run is started once per due
time even when two schedulers race at a hand-over, and a scheduler killed at any point
leaves a state the next tick recovers from."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.errors import LakehouseError
from lakehouse.ops.jobs import CATCH_UP_CAP, Job, jobs_of
from lakehouse.ops.lease import SCHEDULER, Lease
from lakehouse.ops.schedule_store import JobState, ScheduleStore
from lakehouse.pipeline.lock import pipeline_lock
from lakehouse.pipeline.run import new_run_id
from lakehouse.service.launcher import Launches, run_command

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.scheduler")


class Scheduler:
    """Runs the jobs of ``lh.settings``. ``env``: variables the child processes get on
    top of this process's (which carry the settings file and profile the command was
    given, so a run reads the same settings). ``say`` hears one line per event."""

    def __init__(
        self,
        lh: Lakehouse,
        *,
        env: Mapping[str, str] | None = None,
        tick: float = 0.5,
        lease_seconds: float = 10.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if not lh.local:
            raise LakehouseError(
                "the scheduler runs jobs of a local warehouse only",
                "run it on the machine (or volume) that holds the warehouse folder",
            )
        self.lh = lh
        self.jobs = jobs_of(lh.settings)
        self.store = ScheduleStore(lh.catalog)
        self.lease = Lease(lh.catalog, SCHEDULER, seconds=lease_seconds)
        self.launches = Launches(lh.root)
        self.tick_seconds = tick
        # a due time older than this when first seen was missed (downtime, a hand-over)
        self.grace = lease_seconds + tick
        self.env = {
            **os.environ,
            **(env or {}),
            "LAKEHOUSE_WAREHOUSE": str(Path(lh.root).resolve()),
            "NO_COLOR": "1",
        }
        self.say = say or (lambda _line: None)
        self.holding = False
        self._mine: set[str] = set()  # runs this process started
        self._names: dict[str, str] = {}  # job -> its pipeline's name (for its lock)
        self._stop = threading.Event()
        # the events of the step being planned: (event, due, run id, trigger, reason)
        self._events: list[tuple[str, datetime | None, str | None, str | None, str | None]] = []
        self._ended: list[str] = []  # runs of this process whose outcome the step records
        self._thread: threading.Thread | None = None

    # -- running ----------------------------------------------------------------------------
    def run(self) -> None:
        """Tick until ``stop()``; then end the runs this process started and give the
        lease up."""
        try:
            while not self._stop.is_set():
                try:
                    wait = self.tick()
                except LakehouseError as exc:  # e.g. the catalog away: try again
                    log.warning("scheduler tick failed: %s", exc.message)
                    self.say(f"tick failed: {exc.message}")
                    wait = self.lease.seconds / 2
                self._stop.wait(wait)
        finally:
            self.launches.stop()
            self._interrupted()
            if self.holding:
                self.lease.release()
                self.holding = False

    def _interrupted(self) -> None:
        """The runs ended by this stop: recorded interrupted, their due times queued
        again (the next scheduler runs them first)."""
        for job in self.jobs.values():
            for _attempt in range(3):
                try:
                    state = self.store.state(job.name, job.kind)
                except LakehouseError:
                    return
                if not state.running or state.run_id not in self._mine:
                    break
                self._events, self._ended = [], []
                self._log(
                    job,
                    "interrupted",
                    state.run_due,
                    state.run_id,
                    state.run_trigger,
                    "the scheduler stopped",
                )
                again = (state.run_due,) if state.run_due else ()
                changed = state.but(
                    running=False,
                    outcome="interrupted",
                    error="the scheduler stopped before the run ended",
                    ended_at=datetime.now(UTC),
                    pending=(*again, *state.pending),
                )
                if self.store.save(changed) is not None:
                    for event in self._events:
                        self._write_event(job, *event)
                    break

    def start(self) -> threading.Thread:
        """Run in a thread of this process (the server's main process)."""
        self._thread = threading.Thread(target=self.run, name="lakehouse-scheduler", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def tick(self, now: datetime | None = None) -> float:
        """One round over the jobs; seconds until the next one is needed."""
        held = self.lease.acquire()
        if held != self.holding:
            self.holding = held
            self.say(
                "holding the scheduler lease: running the schedules"
                if held
                else "another scheduler holds the lease: waiting"
            )
        if not held:
            return self.tick_seconds * 2
        now = now or datetime.now(UTC)
        wake = now + timedelta(seconds=self.tick_seconds)
        for job in self.jobs.values():
            state = self._step(job, now)
            for moment in (state.next_due, state.retry_at):
                if moment is not None and moment < wake:
                    wake = moment
        return max(0.0, (wake - datetime.now(UTC)).total_seconds())

    # -- one job ----------------------------------------------------------------------------
    def _step(self, job: Job, now: datetime) -> JobState:
        for _attempt in range(3):  # another process changed the state: read it again
            state = self.store.state(job.name, job.kind)
            self._events, self._ended = [], []
            changed, start = self._plan(job, state, now)
            if changed == state:
                return state
            saved = self.store.save(changed)
            if saved is None:
                continue
            for event in self._events:  # what this step did, once it is the one that counts
                self._write_event(job, *event)
            for run_id in self._ended:
                self._mine.discard(run_id)
                self._forget(run_id)
            if start:
                saved = self._launch(job, saved)
            return saved
        return state

    def _plan(self, job: Job, state: JobState, now: datetime) -> tuple[JobState, bool]:
        """The job's next state, and whether its run is to be started (once saved)."""
        if state.running:
            state = self._check_run(job, state, now)
        state = self._take_due(job, state, now)
        state = state.but(next_due=job.timing.next_after(max(now, state.last_due or now)))
        if state.running:
            return state, False
        if state.retry_at is not None:
            if state.retry_at > now:
                return state, False
            run_id = new_run_id()
            attempt = state.attempt + 1
            self._log(
                job, "started", state.run_due, run_id, "retry", f"retry {attempt} of {job.retries}"
            )
            return self._running(state, run_id, state.run_due, "retry", now, attempt=attempt), True
        if not state.pending:
            return state, False
        if job.kind == "pipeline" and self._locked(job):
            return state, False  # a run started elsewhere (by hand, the API): wait for it
        due, rest = state.pending[0], state.pending[1:]
        run_id = new_run_id()
        self._log(job, "started", due, run_id, "schedule", None)
        return self._running(state.but(pending=rest), run_id, due, "schedule", now, attempt=0), True

    def _running(
        self,
        state: JobState,
        run_id: str,
        due: datetime | None,
        trigger: str,
        now: datetime,
        attempt: int,
    ) -> JobState:
        return state.but(
            running=True,
            run_id=run_id,
            run_due=due,
            run_trigger=trigger,
            run_started_at=now,
            attempt=attempt,
            retry_at=None,
            outcome="running",
            error=None,
            ended_at=None,
        )

    def _take_due(self, job: Job, state: JobState, now: datetime) -> JobState:
        """The due times since the last one taken in, through the catch-up and overlap
        policies; a job seen for the first time starts from now."""
        if state.last_due is None:
            return state.but(last_due=now)
        due, more = job.timing.due_between(state.last_due, now, CATCH_UP_CAP)
        if not due:
            return state
        missed = [d for d in due if (now - d).total_seconds() > self.grace]
        fresh = [d for d in due if d not in missed]
        if more:
            self._log(
                job,
                "missed",
                missed[0] if missed else None,
                None,
                None,
                f"more than {CATCH_UP_CAP} due times missed: only the last "
                f"{CATCH_UP_CAP} are considered",
            )
        take: list[datetime] = list(fresh)
        if missed and job.catch_up == "all":
            take = list(due)
        elif missed and job.catch_up == "latest":
            take = [due[-1]]
            for d in due[:-1]:
                self._log(
                    job,
                    "missed",
                    d,
                    None,
                    None,
                    f"catch-up latest: one run at {due[-1]:%Y-%m-%d %H:%M:%S} UTC "
                    f"for {len(due)} due times",
                )
        elif missed:
            for d in missed:
                self._log(
                    job, "missed", d, None, None, "catch-up none: missed while no scheduler ran"
                )
        busy = state.running or state.retry_at is not None
        if not busy and job.kind == "pipeline" and take:
            busy = self._locked(job)
        if busy and job.overlap == "skip":
            why = (
                f"run {state.run_id} still running"
                if state.running
                else f"retry of run {state.run_id} planned"
                if state.retry_at
                else "a run started elsewhere is still running"
            )
            for d in take:
                self._log(job, "skipped", d, None, None, f"overlap skip: {why}")
            take = []
        pending = list(state.pending) + take
        if len(pending) > CATCH_UP_CAP:
            for d in pending[:-CATCH_UP_CAP]:
                self._log(job, "skipped", d, None, None, f"more than {CATCH_UP_CAP} runs queued")
            pending = pending[-CATCH_UP_CAP:]
        return state.but(last_due=due[-1], pending=tuple(pending))

    def _check_run(self, job: Job, state: JobState, now: datetime) -> JobState:
        """Whether the job's run ended, and how; what follows (a retry)."""
        assert state.run_id is not None
        run_id = state.run_id
        outcome, error = self._outcome(job, run_id)
        if outcome is None:
            return state
        ended = state.but(running=False, outcome=outcome, error=error, ended_at=now)
        self._log(job, outcome, state.run_due, run_id, state.run_trigger, error)
        if run_id in self._mine:
            self._ended.append(run_id)  # forgotten once the outcome is saved
        if outcome == "interrupted":
            # the scheduler died mid-run: the due time is run again, first
            return ended.but(pending=(*(p for p in (state.run_due,) if p), *state.pending))
        if outcome == "failed" and state.attempt < job.retries:
            wait = job.backoff(state.attempt + 1)
            retry_at = now + timedelta(seconds=wait)
            self._log(
                job,
                "retry planned",
                state.run_due,
                run_id,
                None,
                f"retry {state.attempt + 1} of {job.retries} in {wait:g} s",
            )
            return ended.but(retry_at=retry_at)
        return ended

    def _outcome(self, job: Job, run_id: str) -> tuple[str | None, str | None]:
        """(None, None) while the run goes; else its outcome and error."""
        if run_id in self._mine:
            launched = self.launches.state(run_id)
            if launched is None or launched["status"] == "starting":
                return None, None
            if launched["status"] == "succeeded":
                return "succeeded", None
            if job.kind == "command" and self._command_missing(run_id):
                return "command missing", f"this version has no `lakehouse {' '.join(job.command)}`"
            return "failed", launched.get("error")
        # started before this process took the lease (a restart, a hand-over)
        if job.kind == "pipeline":
            if self._locked(job):
                return None, None
            from lakehouse.service.runs import find_run

            found = find_run(self.lh, run_id)
            status = found["status"] if found else None
            if status in ("succeeded", "failed"):
                return str(status), found.get("error") if found else None
        return "interrupted", "the run's scheduler stopped before the run ended"

    def _forget(self, run_id: str) -> None:
        """The launch's files, once its outcome is in the job's state and log (a check
        every minute would otherwise leave three files a minute)."""
        folder = self.launches.folder
        assert folder is not None
        for suffix in (".json", ".err", ".exit"):
            (folder / f"{run_id}{suffix}").unlink(missing_ok=True)

    def _command_missing(self, run_id: str) -> bool:
        folder = self.launches.folder
        assert folder is not None
        try:
            code = (folder / f"{run_id}.exit").read_text().strip()
            text = (folder / f"{run_id}.err").read_text(errors="replace")
        except OSError:
            return False
        return code == "2" and "No such command" in text

    def _launch(self, job: Job, state: JobState) -> JobState:
        assert state.run_id is not None and state.run_trigger is not None
        run_id = state.run_id
        try:
            if job.kind == "pipeline":
                assert job.pipeline is not None
                args = run_command(job.pipeline, run_id, trigger=state.run_trigger)
            else:
                args = job.command_line()
            self.launches.start(run_id, job.name, args, dict(self.env))
        except (LakehouseError, OSError) as exc:
            error = exc.message if isinstance(exc, LakehouseError) else str(exc)
            self._write_event(job, "failed", state.run_due, run_id, state.run_trigger, error)
            failed = state.but(
                running=False, outcome="failed", error=error, ended_at=datetime.now(UTC)
            )
            return self.store.save(failed) or failed
        self._mine.add(run_id)
        self.say(f"{job.name}: started run {run_id} ({state.run_trigger})")
        return state

    def _locked(self, job: Job) -> bool:
        """Whether a run of the job's pipeline holds its lock (in any process)."""
        name = self._pipeline_name(job)
        if name is None:
            return False
        try:
            with pipeline_lock(self.lh, name):
                return False
        except LakehouseError:
            return True

    def _pipeline_name(self, job: Job) -> str | None:
        if job.name not in self._names:
            from lakehouse.pipeline.definition import load_pipeline

            try:
                self._names[job.name] = load_pipeline(job.pipeline or "").name
            except LakehouseError:
                return None  # the run will say what is wrong with the folder
        return self._names[job.name]

    def _log(
        self,
        job: Job,
        event: str,
        due: datetime | None,
        run_id: str | None,
        trigger: str | None,
        reason: str | None,
    ) -> None:
        """Recorded once the step's state is saved."""
        self._events.append((event, due, run_id, trigger, reason))

    def _write_event(
        self,
        job: Job,
        event: str,
        due: datetime | None,
        run_id: str | None,
        trigger: str | None,
        reason: str | None,
    ) -> None:
        self.store.log(
            job.name,
            event,
            due_at=due,
            run_id=run_id,
            trigger=trigger,
            reason=reason,
            holder=self.lease.holder,
        )
        at = f" due {due:%Y-%m-%d %H:%M:%S}" if due else ""
        line = f"{job.name}: {event}{at}" + (f" ({reason})" if reason else "")
        log.info(line)
        if event != "started":
            self.say(line)
