"""The service layer the CLI, the API and the UI share: runs and their figures, quality,
restore, replay, launches, tokens and grants, as plain Python calls."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.pipeline import load_pipeline
from lakehouse.service import access, launcher, quality, replay, restore, runs

SILVER = """
    -- kind: append
    -- keys: [event_id]
    -- expectations:
    --   - {name: has_user, not_null: user_id, action: quarantine}
    SELECT event_id, user_id, n FROM bronze.raw
"""
GOLD = """
    SELECT user_id, count(*) AS events, sum(n) AS total FROM silver.events GROUP BY user_id
"""


def raw(start: int, n: int) -> pa.Table:
    ids = range(start, start + n)
    return pa.table(
        {
            "event_id": [f"e{i}" for i in ids],
            "user_id": [None if i % 7 == 0 else i % 5 for i in ids],
            "n": [i % 4 for i in ids],
            "ts": [datetime(2026, 11, 1, i % 24) for i in ids],
        }
    )


@pytest.fixture
def folder(lh: Lakehouse, tmp_path: Path) -> Path:
    lh.write("bronze.raw", raw(0, 20))
    root = tmp_path / "p"
    for rel, text in {"silver/events.sql": SILVER, "gold/users.sql": GOLD}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def test_runs_are_started_and_listed_with_their_figures(lh: Lakehouse, folder: Path) -> None:
    assert not runs.has_runs(lh)
    assert runs.list_runs(lh) == [] and runs.find_run(lh, "none") is None
    events: list[str] = []
    report = runs.start_run(
        lh, load_pipeline(folder), run_id="r1", on_progress=lambda e, n, d: events.append(e)
    )
    assert report.run_id == "r1" and "done" in events
    listed = runs.list_runs(lh, columns=runs.RUN_COLUMNS)
    assert [r["run_id"] for r in listed] == ["r1"]
    assert set(listed[0]) <= set(runs.RUN_COLUMNS)
    assert runs.find_run(lh, "r1")["status"] == "succeeded"  # type: ignore[index]
    assert runs.latest_runs(lh)[report.pipeline]["run_id"] == "r1"
    figures = {d["dataset"]: d["rows_written"] for d in runs.run_datasets(lh, "r1")}
    assert figures == {"silver.events": 17, "gold.users": 5}


def test_quality_restore_and_replay(lh: Lakehouse, folder: Path) -> None:
    with pytest.raises(LakehouseError):
        quality.table_quality(lh, "silver.events")
    assert quality.quality_overview(lh) == []
    runs.start_run(lh, load_pipeline(folder))
    report = quality.table_quality(lh, "silver.events")
    assert report["status"] == "failed" and report["quarantined"] == 3
    assert [r["table"] for r in quality.quality_overview(lh)] == ["silver.events"]
    (folder / "silver" / "events.sql").write_text(
        textwrap.dedent(SILVER).replace("action: quarantine", "action: warn")
    )
    done = replay.replay(lh, "silver.events")  # the folder the runs recorded
    assert (done["replayed"], done["written"], done["still_failing"]) == (3, 3, 0)
    restored = restore.restore_table(lh, "silver.events", "1")
    assert restored.table == "silver.events" and restored.version == lh.table(
        "silver.events"
    ).version
    assert lh.table("silver.events_quarantine").count() == 3  # back with its table


def test_the_launcher_builds_the_child_command(tmp_path: Path) -> None:
    args = launcher.run_command("p", "r1", full_refresh=True, select=["a+", "+b"])
    assert args == [
        sys.executable, "-m", "lakehouse.service.child", "p", "r1",
        "--full-refresh", "--select", "a+", "--select", "+b", "--trigger", "api",
    ]  # fmt: skip
    assert launcher.Launches(tmp_path).state("r1") is None
    with pytest.raises(LakehouseError, match="local warehouse"):
        launcher.Launches(None).start("r1", "p", args, {})


def test_tokens_and_grants(lh: Lakehouse) -> None:
    secret = access.create_token(lh, "alice", "analyst")
    assert secret and [t["name"] for t in access.list_tokens(lh)] == ["alice"]
    access.grant(lh, "pii", "silver", "alice")
    assert [(g["privilege"], g["on"], g["to"]) for g in access.list_grants(lh)] == [
        ("pii", "silver", "alice")
    ]
    revoked = access.revoke_token(lh, "alice")
    assert [g["on"] for g in revoked.kept_grants] == ["silver"]
    access.revoke(lh, "pii", "silver", "alice")
    assert access.list_grants(lh) == []


def test_a_launched_run_that_fails_says_why(tmp_path: Path) -> None:
    launches = launcher.Launches(tmp_path)
    args = launcher.run_command(tmp_path / "no-such-pipeline", "r2")
    env = {**os.environ, "LAKEHOUSE_WAREHOUSE": str(tmp_path), "NO_COLOR": "1"}
    launches.start("r2", "missing", args, env)
    try:
        deadline = time.monotonic() + 120  # a bound for a hung child, not the premise
        while (state := launches.state("r2")) and state["status"] == "starting":
            assert time.monotonic() < deadline, "the child never ended"
            time.sleep(0.05)
    finally:
        launches.stop()
    assert state is not None and state["status"] == "failed"
    assert state["error"].startswith("error: ") and "no-such-pipeline" in state["error"]
