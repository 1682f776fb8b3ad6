"""kill -9 during pipeline runs: running again gives exactly the tables of a run that was
never interrupted."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse import Lakehouse
from lakehouse.demo.landing import add_drop, write_sources
from lakehouse.pipeline import load_pipeline, run_pipeline
from lakehouse.settings.model import Settings
from tests.helpers.commits import kill_after_commits
from tests.helpers.pipeline_rows import contents

DEMO = Path(__file__).resolve().parents[1] / "pipelines" / "demo"


def start_run(warehouse: Path, landing: Path, table_format: str) -> subprocess.Popen:
    code = "from lakehouse.cli import main; main()"
    env = {"LAKEHOUSE_WAREHOUSE": str(warehouse), "LAKEHOUSE_FORMAT": table_format}
    return subprocess.Popen(
        [sys.executable, "-c", code, "run", str(DEMO), "--var", f"landing={landing}"],
        env={**os.environ, **env, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_kill_9_during_runs_then_run_again(tmp_path, table_format):
    """New data arrives before every attempt, so each run has work to be killed in; the
    killed warehouse must end equal to one uninterrupted run over all the data (of the
    same format)."""
    landing = tmp_path / "landing"
    write_sources(landing, events=2000, drops=2, start=datetime(2026, 11, 1, tzinfo=UTC))
    warehouse = tmp_path / "killed"
    rng = random.Random(9)
    interrupted, attempts = 0, 0
    while interrupted < 3 and attempts < 14:
        attempts += 1
        add_drop(landing, fraction=0.25)
        proc = start_run(warehouse, landing, table_format)
        # Killed after a random number of the run's commits: somewhere in its work.
        kill_after_commits(proc, warehouse, rng.randint(1, 25))
        if (warehouse / "system").exists():
            statuses = Lakehouse(warehouse).sql("SELECT status FROM system.pipeline_runs").rows()
            interrupted = sum(1 for (s,) in statuses if s in ("running", "interrupted"))
    assert interrupted >= 3, f"only {interrupted} of {attempts} runs were killed mid-run"
    final = start_run(warehouse, landing, table_format)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()

    pipeline = load_pipeline(DEMO, {"landing": str(landing)})
    reference = Lakehouse(tmp_path / "reference", settings=Settings(format=table_format))
    run_pipeline(reference, pipeline)
    expected = contents(reference, pipeline)
    assert len(expected) >= 20
    lh = Lakehouse(warehouse)
    assert {i.format for i in lh.tables("gold")} <= {table_format, "view"}
    got = contents(lh, pipeline)
    assert sorted(got) == sorted(expected)
    for table, rows in expected.items():
        if got[table] != rows:
            want, have = Counter(map(repr, rows)), Counter(map(repr, got[table]))
            missing, extra = list(want - have)[:3], list(have - want)[:3]
            raise AssertionError(f"{table}: missing {missing}, unexpected {extra}")
    statuses = [r[0] for r in lh.sql("SELECT status FROM system.pipeline_runs").rows()]
    assert statuses.count("running") == 0
    assert statuses.count("interrupted") >= 3 and statuses[-1:] != ["failed"]
