"""The scheduler on real pipelines, real child processes and real scheduler processes:
catch-up, overlap, retries with backoff, one acting scheduler among several (and the
server's), kill -9 mid-run, ``schedule list`` and ``GET /schedules``, bad cron."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from lakehouse import Lakehouse
from lakehouse.ops.schedule_store import ScheduleStore
from lakehouse.ops.scheduler import Scheduler
from lakehouse.pipeline import load_pipeline, run_pipeline
from lakehouse.settings import load_settings
from lakehouse.settings.load import SettingsError
from lakehouse.settings.model import MaintenanceSettings, PipelineSettings, Settings
from tests.helpers.commits import commits
from tests.helpers.server import start_server

# No maintenance or alert jobs unless a test asks: they would start commands of their own.
QUIET = {"maintenance": MaintenanceSettings(schedule=None), "alerts": {"interval": 0}}
QUIET_YAML = "maintenance: {schedule: null}\nalerts: {interval: 0}\n"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll ``check`` until it answers something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def write_files(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return folder


def tiny_pipeline(folder: Path, name: str) -> Path:
    """One gold dataset of one row: a run that costs little beyond its process."""
    return write_files(folder, {"pipeline.yml": f"name: {name}\n", "gold/one.sql": "SELECT 1 AS x"})


def gate_pipeline(folder: Path, name: str) -> Path:
    """A dataset that waits while a ``hold`` file exists beside the folder and fails while
    a ``fail`` file does: runs that go on, or fail, for as long as a test wants."""
    gate = folder / "gate"
    code = f"""
        import time
        from pathlib import Path

        import pyarrow as pa

        from lakehouse.pipeline import dataset

        GATE = Path({str(gate)!r})


        @dataset("gold.{name}_gate", inputs=[])
        def gate(ctx):
            deadline = time.monotonic() + 120
            while (GATE / "hold").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            if (GATE / "fail").exists():
                raise RuntimeError("told to fail")
            return pa.table({{"x": [1]}})
    """
    gate.mkdir(parents=True, exist_ok=True)
    return write_files(folder, {"pipeline.yml": f"name: {name}\n", "gold/gate.py": code})


def events(lh: Lakehouse, job: str | None = None, event: str | None = None) -> list[dict]:
    found = ScheduleStore(lh.catalog).history(job)
    return [e for e in found if event is None or e["event"] == event]


def run_rows(lh: Lakehouse, pipeline: str) -> list[dict]:
    if lh.catalog.get("system.pipeline_runs") is None:
        return []
    return lh.sql(
        "SELECT run_id, status, trigger, started_at, ended_at FROM system.pipeline_runs "
        f"WHERE pipeline = '{pipeline}' ORDER BY started_at"
    ).to_dicts()


@pytest.fixture
def stopping() -> Iterator[list[Scheduler]]:
    """Schedulers a test runs in threads, stopped (with their runs) whatever happens."""
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; killed at the end with every child they left."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for p in [proc, *family]:
            try:
                p.kill()
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
        proc.wait(timeout=30)


def scheduler_process(config: Path, *args: str, out: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    sink = open(out, "w") if out else subprocess.DEVNULL  # noqa: SIM115 - closed by the OS
    return subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", "--config", str(config), "scheduler", *args],
        env={**env, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        stdout=sink,
        stderr=subprocess.STDOUT,
        cwd=config.parent,
    )


# -- catch-up after downtime ------------------------------------------------------------------
def test_catch_up_none_latest_all(tmp_path, stopping):
    """A daily job whose scheduler was down for six days: none runs nothing (six missed),
    latest runs once for all six, all runs each of the six, one after the other."""
    now = datetime.now(UTC)
    cron = f"0 {(now.hour + 12) % 24} * * *"  # no due time while the test runs
    pipelines = {
        policy: PipelineSettings(
            path=str(tiny_pipeline(tmp_path / policy, f"p_{policy}")),
            schedule=cron,
            catch_up=policy,
        )
        for policy in ("none", "latest", "all")
    }
    lh = Lakehouse(tmp_path / "wh", settings=Settings(pipelines=pipelines, **QUIET))
    scheduler = Scheduler(lh)
    scheduler.tick(now - timedelta(days=6, minutes=1))  # the last tick before the downtime
    stopping.append(scheduler)
    scheduler.start()

    def started(job: str) -> int:
        return len(events(lh, job, "started"))

    wait_for("six runs of catch-up all", lambda: len(events(lh, "all", "succeeded")) == 6)
    wait_for("the run of catch-up latest", lambda: events(lh, "latest", "succeeded"))
    assert started("none") == 0 and len(events(lh, "none", "missed")) == 6
    assert started("latest") == 1 and len(events(lh, "latest", "missed")) == 5
    assert started("all") == 6
    due = [e["due_at"] for e in events(lh, "all", "started")]
    assert due == sorted(due) and len(set(due)) == 6
    # the runs never overlapped, and each recorded how it was started
    runs = run_rows(lh, "p_all")
    assert [r["trigger"] for r in runs] == ["schedule"] * 6
    for before, after in zip(runs, runs[1:], strict=False):
        assert before["ended_at"] <= after["started_at"]
    assert [r["trigger"] for r in run_rows(lh, "p_latest")] == ["schedule"]
    assert run_rows(lh, "p_none") == []


# -- overlap ----------------------------------------------------------------------------------
def test_overlap_skip_is_recorded_and_queue_runs_after(tmp_path, stopping):
    settings = Settings(
        pipelines={
            "skipper": PipelineSettings(
                path=str(gate_pipeline(tmp_path / "skipper", "skipper")),
                schedule="* * * * * *",
                overlap="skip",
            ),
            "queuer": PipelineSettings(
                path=str(gate_pipeline(tmp_path / "queuer", "queuer")),
                schedule="* * * * * *",
                overlap="queue",
            ),
        },
        **QUIET,
    )
    for name in ("skipper", "queuer"):
        (tmp_path / name / "gate" / "hold").touch()
    lh = Lakehouse(tmp_path / "wh", settings=settings)
    scheduler = Scheduler(lh)
    stopping.append(scheduler)
    scheduler.start()
    wait_for("two skipped due times", lambda: len(events(lh, "skipper", "skipped")) >= 2)
    assert all("still running" in e["reason"] for e in events(lh, "skipper", "skipped"))
    wait_for(
        "two queued due times",
        lambda: len(ScheduleStore(lh.catalog).states()["queuer"].pending) >= 2,
    )
    assert len(events(lh, "queuer", "started")) == 1  # the others wait for it
    assert events(lh, "queuer", "skipped") == []
    first_due = events(lh, "queuer", "started")[0]["due_at"]
    queued = ScheduleStore(lh.catalog).states()["queuer"].pending[0]
    (tmp_path / "queuer" / "gate" / "hold").unlink()
    wait_for("the queued run", lambda: len(events(lh, "queuer", "started")) >= 2)
    second = events(lh, "queuer", "started")[1]
    assert second["due_at"] == queued > first_due
    scheduler.stop()
    # one run of a pipeline at a time
    for name in ("skipper", "queuer"):
        runs = [r for r in run_rows(lh, name) if r["ended_at"] is not None]
        for before, after in zip(runs, runs[1:], strict=False):
            assert before["ended_at"] <= after["started_at"]
    assert len(run_rows(lh, "skipper")) == 1  # still holding: the skipped ones never ran


# -- retries ----------------------------------------------------------------------------------
def test_retries_with_backoff_are_recorded(tmp_path, stopping):
    folder = gate_pipeline(tmp_path / "flaky", "flaky")
    (folder / "gate" / "fail").touch()
    settings = Settings(
        pipelines={
            "flaky": PipelineSettings(
                path=str(folder), schedule="*/2 * * * * *", retries=2, retry_backoff=1
            )
        },
        **QUIET,
    )
    lh = Lakehouse(tmp_path / "wh", settings=settings)
    scheduler = Scheduler(lh)
    stopping.append(scheduler)
    scheduler.start()
    wait_for(
        "a run and its two retries, failed",
        lambda: (
            [r["trigger"] for r in run_rows(lh, "flaky") if r["status"] == "failed"][:3]
            == ["schedule", "retry", "retry"]
        ),
    )
    scheduler.stop()
    runs = run_rows(lh, "flaky")[:3]
    # each retry waited its backoff (1 s, then 2 s) after the attempt before it ended
    for before, after, backoff in zip(runs, runs[1:], (1, 2), strict=False):
        assert (after["started_at"] - before["ended_at"]).total_seconds() >= backoff
    planned = events(lh, "flaky", "retry planned")
    assert [e["reason"] for e in planned[:2]] == ["retry 1 of 2 in 1 s", "retry 2 of 2 in 2 s"]
    started = events(lh, "flaky", "started")
    assert [e["trigger"] for e in started[:3]] == ["schedule", "retry", "retry"]
    assert len({e["due_at"] for e in started[:3]}) == 1  # the retries are of that due time
    # due times that came while a retry waited were skipped, not run
    assert any("retry" in (e["reason"] or "") for e in events(lh, "flaky", "skipped"))


# -- command jobs -----------------------------------------------------------------------------
def test_a_missing_command_is_recorded_not_fatal(tmp_path, stopping):
    """Maintenance and alerts run commands of ``lakehouse``; one this version lacks is
    recorded as "command missing" and the scheduler goes on."""
    settings = Settings(
        pipelines={},
        maintenance=MaintenanceSettings(schedule="* * * * * *"),
        alerts={"interval": 0},
    )
    lh = Lakehouse(tmp_path / "wh", settings=settings)
    scheduler = Scheduler(lh)
    # a command no version has (maintain and alerts evaluate may exist by now)
    scheduler.jobs["maintenance"] = replace(
        scheduler.jobs["maintenance"], command=("no-such-command",)
    )
    stopping.append(scheduler)
    scheduler.start()
    found = wait_for("the job's outcome", lambda: events(lh, "maintenance", "command missing"))
    assert "no-such-command" in found[0]["reason"]
    wait_for("the next due time", lambda: len(events(lh, "maintenance", "started")) >= 2)


# -- one scheduler acts; the server's scheduler; kill -9 of the holder ------------------------
def test_one_scheduler_acts_among_a_server_and_another_scheduler(tmp_path, procs):
    tiny = tiny_pipeline(tmp_path / "tiny", "tiny")
    config = tmp_path / "lakehouse.yaml"
    config.write_text(
        f"warehouse: wh\n{QUIET_YAML}"
        f"pipelines:\n  tiny: {{path: {tiny}, schedule: '*/2 * * * * *'}}\n"
    )
    lh = Lakehouse(tmp_path / "wh")
    first = scheduler_process(config, "--lease", "2")
    procs.append(first)
    wait_for("the first scheduler's lease", lambda: _holder_pid(lh) == first.pid)
    server = start_server(
        tmp_path / "wh",
        args=["--workers", "2"],
        env={"LAKEHOUSE_CONFIG": str(config)},
        cwd=tmp_path,
    )
    procs.append(server.proc)
    wait_for("three runs", lambda: len(events(lh, "tiny", "started")) >= 3)
    assert _holder_pid(lh) == first.pid  # the server waits while the lease is held

    # kill -9 the acting scheduler: the server's main process takes over
    killed_at = datetime.now(UTC)
    first.kill()
    first.wait()
    wait_for(
        "a run started by the server",
        lambda: any(e["at"] > killed_at for e in events(lh, "tiny", "started")),
        timeout=30,
    )
    assert _holder_pid(lh) == server.proc.pid
    started = events(lh, "tiny", "started")
    holders = Counter(e["holder"] for e in started)
    assert {int(h.split(":")[1]) for h in holders} == {first.pid, server.proc.pid}
    due = Counter(e["due_at"] for e in started if e["trigger"] == "schedule")
    assert max(due.values()) == 1, "a due time was run twice"

    with server.client(server.login_token) as client:
        answer = client.get("/schedules", params={"history": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scheduler"]["live"] and body["scheduler"]["holder"].split(":")[1] == str(
        server.proc.pid
    )
    tiny_row = next(s for s in body["schedules"] if s["job"] == "tiny")
    assert tiny_row["schedule"] == "*/2 * * * * * (UTC)" and tiny_row["last_run"]
    assert tiny_row["outcome"] in ("running", "succeeded")
    assert len(body["history"]) == 5
    server.stop()


def _holder_pid(lh: Lakehouse) -> int | None:
    from lakehouse.service.schedules import scheduler_status

    status = scheduler_status(lh)
    return int(status["holder"].split(":")[1]) if status["live"] else None


def test_schedules_endpoint_needs_the_run_permission(tmp_path):
    from fastapi.testclient import TestClient

    from lakehouse.access import Access, AuditLog
    from lakehouse.api.app import create_app

    tiny = tiny_pipeline(tmp_path / "tiny", "tiny")
    settings = Settings(pipelines={"tiny": PipelineSettings(path=str(tiny), schedule="0 3 * * *")})
    lh = Lakehouse(tmp_path / "wh", settings=settings)
    access = Access(lh)
    tokens = {role: access.create_token(f"t-{role}", role) for role in ("engineer", "analyst")}
    app = create_app(lh, access, AuditLog(lh))
    with TestClient(app) as client:
        denied = client.get("/schedules", headers={"Authorization": f"Bearer {tokens['analyst']}"})
        allowed = client.get(
            "/schedules", headers={"Authorization": f"Bearer {tokens['engineer']}"}
        )
    assert denied.status_code == 403, denied.text
    assert allowed.status_code == 200, allowed.text
    jobs = {s["job"]: s for s in allowed.json()["schedules"]}
    assert set(jobs) == {"tiny", "maintenance", "alerts"}
    assert jobs["tiny"]["next_run"].endswith("03:00:00Z") or "T03:00:00" in jobs["tiny"]["next_run"]
    assert jobs["tiny"]["outcome"] is None and allowed.json()["scheduler"]["live"] is False


# -- kill -9 mid-run --------------------------------------------------------------------------
BRONZE = "kind: files\npath: {landing}\n"
SILVER = """
    -- kind: append
    -- keys: [id]
    SELECT id, grp, CAST(v AS BIGINT) AS v FROM bronze.raw
"""
GOLD = "SELECT grp, count(*) AS n, sum(v) AS total FROM silver.events GROUP BY grp"
LOAD_COLUMNS = ("_ingested_at", "_ingest_date", "_source")


def contents(lh: Lakehouse, pipeline) -> dict[str, list]:
    out = {}
    for ds in pipeline.datasets.values():
        columns = [c for c in lh.table(ds.name).schema.names if c not in LOAD_COLUMNS]
        select = ", ".join(f'"{c}"' for c in columns)
        out[ds.name] = sorted(lh.sql(f"SELECT {select} FROM {ds.name}").rows(), key=repr)
    return out


def test_kill_9_mid_run_then_restart_gives_the_uninterrupted_tables(tmp_path, procs):
    landing = tmp_path / "landing"
    landing.mkdir()
    for f in range(8):
        lines = [json.dumps({"id": f"{f}-{i}", "grp": f"g{i % 3}", "v": i}) for i in range(200)]
        (landing / f"part{f}.jsonl").write_text("\n".join(lines) + "\n")
    folder = write_files(
        tmp_path / "flow",
        {
            "bronze/raw.yml": BRONZE.format(landing=landing),
            "silver/events.sql": SILVER,
            "gold/totals.sql": GOLD,
        },
    )
    config = tmp_path / "lakehouse.yaml"
    config.write_text(
        f"warehouse: wh\n{QUIET_YAML}"
        f"pipelines:\n  flow: {{path: {folder}, schedule: '*/2 * * * * *'}}\n"
    )
    warehouse = tmp_path / "wh"
    first = scheduler_process(config, out=tmp_path / "first.log")
    procs.append(first)
    # killed as soon as the run has made the first bronze commits (its work half done)
    wait_for(
        "the run's first bronze commits",
        lambda: len(list(warehouse.glob("bronze/raw/_delta_log/*.json"))) >= 3,
        timeout=60,
    )
    children = psutil.Process(first.pid).children(recursive=True)
    os.kill(first.pid, signal.SIGKILL)
    for child in children:
        child.kill()
    first.wait()
    psutil.wait_procs(children, timeout=30)
    lh = Lakehouse(warehouse)
    assert [r["status"] for r in run_rows(lh, "flow")] == ["running"]
    assert len(list(warehouse.glob("bronze/raw/_delta_log/*.json"))) < 10, "the run had ended"

    second = scheduler_process(config, out=tmp_path / "second.log")
    procs.append(second)
    wait_for(
        "a successful run after the restart",
        lambda: any(r["status"] == "succeeded" for r in run_rows(lh, "flow")),
        timeout=90,
    )
    os.kill(second.pid, signal.SIGTERM)
    second.wait(timeout=30)
    statuses = [r["status"] for r in run_rows(lh, "flow")]
    assert statuses[0] == "interrupted" and "succeeded" in statuses
    assert all(r["trigger"] == "schedule" for r in run_rows(lh, "flow"))
    interrupted = events(lh, "flow", "interrupted")
    assert interrupted and interrupted[0]["run_id"] == run_rows(lh, "flow")[0]["run_id"]

    pipeline = load_pipeline(folder)
    reference = Lakehouse(tmp_path / "reference")
    run_pipeline(reference, pipeline)
    expected = contents(reference, pipeline)
    assert sum(len(v) for v in expected.values()) == 1600 * 2 + 3
    assert contents(Lakehouse(warehouse), pipeline) == expected
    assert commits(warehouse) > 0


# -- settings and the list --------------------------------------------------------------------
def test_invalid_cron_names_the_key_and_the_line(tmp_path):
    config = tmp_path / "lakehouse.yaml"
    config.write_text(
        "warehouse: wh\npipelines:\n  nightly:\n    path: p\n    schedule: '61 * * * *'\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--config", str(config), "scheduler"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
    )
    assert done.returncode == 1
    said = " ".join(done.stderr.split())
    assert "lakehouse.yaml:5" in said and "pipelines.nightly.schedule" in said
    assert "not a cron expression" in said
    assert not (tmp_path / "wh").exists()  # nothing was started or written
    for good in ("*/10 * * * * *", "@hourly", "0 3 * * mon-fri"):
        config.write_text(f"pipelines:\n  nightly:\n    path: p\n    schedule: '{good}'\n")
        assert load_settings(config).settings.pipelines["nightly"].schedule == good
    for bad in ("* * * * * * *", "* * *", "*/10 * * * * 99"):
        config.write_text(f"pipelines:\n  nightly:\n    path: p\n    schedule: '{bad}'\n")
        with pytest.raises(SettingsError, match="not a cron expression"):
            load_settings(config)


def test_schedule_list_formats(tmp_path, stopping):
    tiny = tiny_pipeline(tmp_path / "tiny", "tiny")
    config = tmp_path / "lakehouse.yaml"
    config.write_text(
        "warehouse: wh\nalerts: {interval: 0}\n"
        "maintenance: {schedule: '0 3 * * *', timezone: Europe/Paris}\n"
        f"pipelines:\n  tiny: {{path: {tiny}, schedule: '* * * * * *', retries: 1}}\n"
    )
    settings = load_settings(config).settings
    lh = Lakehouse.from_settings(settings)
    scheduler = Scheduler(lh)
    stopping.append(scheduler)
    scheduler.start()
    wait_for("a run", lambda: events(lh, "tiny", "succeeded"))
    scheduler.stop()

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "lakehouse.cli", "--config", str(config), "schedule", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    rows = {r["job"]: r for r in json.loads(cli("list", "--format", "json"))}
    assert set(rows) == {"tiny", "maintenance"}
    # the stop may have ended a later run: then it is told interrupted, to be run again
    state = ScheduleStore(lh.catalog).states()["tiny"]
    assert rows["tiny"]["outcome"] == state.outcome in ("succeeded", "interrupted")
    assert rows["tiny"]["run_id"] == state.run_id and rows["tiny"]["last_trigger"] == "schedule"
    if state.outcome == "interrupted":
        assert state.pending[0] == state.run_due
    assert rows["tiny"]["retries"] == 1 and rows["tiny"]["last_run"] is not None
    assert rows["maintenance"]["schedule"] == "0 3 * * * (Europe/Paris)"
    assert rows["maintenance"]["last_run"] is None
    paris = datetime.fromisoformat(rows["maintenance"]["next_run"]).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    assert (paris.hour, paris.minute) == (3, 0)
    csv = cli("list", "--format", "csv").splitlines()
    assert csv[0].startswith('"job","kind","schedule","next_run","last_run"')
    assert len(csv) == 3
    table = cli("list")
    assert "tiny" in table and state.outcome in table and "maintenance" in table
    assert "no scheduler is running" in table
    history = json.loads(cli("history", "tiny", "--format", "json"))
    assert {"started", "succeeded"} <= {e["event"] for e in history}
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse.cli",
            "--config",
            str(config),
            "schedule",
            "list",
            "--format",
            "xml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "unknown format" in bad.stderr


def test_due_times_follow_the_time_zone_and_catch_up_is_bounded():
    from lakehouse.ops.jobs import Timing

    paris = Timing(cron="0 3 * * *", timezone="Europe/Paris")
    winter = paris.next_after(datetime(2026, 1, 10, 12, tzinfo=UTC))
    summer = paris.next_after(datetime(2026, 7, 10, 12, tzinfo=UTC))
    assert winter == datetime(2026, 1, 11, 2, tzinfo=UTC)  # UTC+1
    assert summer == datetime(2026, 7, 11, 1, tzinfo=UTC)  # UTC+2
    # a week down under a schedule of every second: the last 100 due times, no more work
    every = Timing(cron="* * * * * *")
    until = datetime(2026, 1, 10, 12, tzinfo=UTC)
    started = time.monotonic()
    due, more = every.due_between(until - timedelta(days=7), until, 100)
    assert time.monotonic() - started < 2
    assert more and len(due) == 100 and due[-1] == until
    assert due[0] == until - timedelta(seconds=99)
    assert Timing(every=60).due_between(until - timedelta(minutes=3), until, 100) == (
        [until - timedelta(minutes=2), until - timedelta(minutes=1), until],
        False,
    )
