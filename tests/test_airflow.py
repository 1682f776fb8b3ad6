"""Pipelines as Airflow DAGs: the exported DAG file run by real Apache Airflow 3 (its own
virtualenv, made by scripts/test.sh) builds the demo's gold tables as ``lakehouse run``
does, each task a run recorded with trigger airflow."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse import Lakehouse, LakehouseError
from lakehouse.airflow import dag_spec, pipeline_dag
from lakehouse.demo.landing import write_sources
from lakehouse.pipeline import load_pipeline

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pipelines" / "demo"
AIRFLOW_VENV = Path(os.environ.get("LAKEHOUSE_AIRFLOW_VENV", ROOT / ".venv-airflow"))
CLI = [sys.executable, "-m", "lakehouse.cli"]


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> str:
    """Run to the end and return its output; the process and all it started are stopped
    if it outlives ``timeout`` or the test fails."""
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 0, f"{argv[:3]} exited {proc.returncode}:\n{out[-6000:]}"
    return out


def _env(**extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "AIRFLOW_", "AIRFLOW__"))
    }
    return {**keep, **extra}


def _rows(lh: Lakehouse, table: str) -> tuple[list[str], list[str]]:
    result = lh.sql(f"SELECT * FROM {table}").to_arrow()
    return result.column_names, sorted(repr(tuple(r.values())) for r in result.to_pylist())


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("airflow-input") / "landing"
    write_sources(folder, events=600)
    return folder


def test_airflow_runs_the_demo_dag_as_lakehouse_run_does(tmp_path, landing):
    airflow = AIRFLOW_VENV / "bin" / "airflow"
    assert airflow.is_file(), f"no Airflow at {airflow}: scripts/test.sh installs it"
    by_airflow, by_run = tmp_path / "by-airflow", tmp_path / "by-run"
    for warehouse in (by_airflow, by_run):
        shutil.copytree(landing, warehouse / "landing")
    home = tmp_path / "airflow"
    dags = home / "dags"
    _run(
        [*CLI, "--warehouse", str(by_airflow), "airflow", "export", str(DEMO)]
        + ["--out", str(dags / "lakehouse_demo.py"), "--lakehouse-command", " ".join(CLI)],
        _env(),
        tmp_path,
        60,
    )
    _run(
        [*CLI, "--warehouse", str(by_airflow), "airflow", "export", str(DEMO), "--per", "layer"]
        + ["--dag-id", "demo_layers", "--out", str(dags / "demo_layers.py")]
        + ["--lakehouse-command", " ".join(CLI)],
        _env(),
        tmp_path,
        60,
    )
    airflow_env = _env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    # The reference run goes on while Airflow works (another warehouse).
    reference = subprocess.Popen(
        [*CLI, "--warehouse", str(by_run), "run", str(DEMO)],
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _run([str(airflow), "db", "migrate"], airflow_env, tmp_path, 120)
        log = _run([str(airflow), "dags", "test", "lakehouse_demo"], airflow_env, tmp_path, 240)
        ref_out, _ = reference.communicate(timeout=120)
    finally:
        try:
            os.killpg(reference.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reference.wait()
    assert reference.returncode == 0, ref_out
    assert re.search(r"DagRun Finished: dag_id=lakehouse_demo.*state=success", log), log[-4000:]

    # Every task ran, each after the tasks it depends on.
    spec = dag_spec(DEMO)
    started = {m: i for i, m in enumerate(re.findall(r"\[DAG TEST\] starting task_id=(\S+)", log))}
    assert set(started) == {t["task_id"] for t in spec["tasks"]}
    for task in spec["tasks"]:
        for upstream in task["upstream"]:
            assert started[upstream] < started[task["task_id"]]

    # The gold tables are those of `lakehouse run` on the same input.
    a, b = Lakehouse(by_airflow), Lakehouse(by_run)
    gold = sorted(n for n in load_pipeline(DEMO).datasets if n.startswith("gold."))
    assert gold and sorted(n for n in b.catalog.names() if n.startswith("gold.")) == gold
    for table in gold:
        columns, rows = _rows(a, table)
        assert (columns, rows) == _rows(b, table), table
        assert rows, f"{table} is empty: the comparison would prove nothing"

    # One run per task, recorded with trigger airflow, each running its dataset once.
    runs = (
        a.sql("SELECT run_id, trigger, status, selection FROM system.pipeline_runs")
        .to_arrow()
        .to_pylist()
    )
    assert len(runs) == len(spec["tasks"])
    assert {r["trigger"] for r in runs} == {"airflow"}
    assert {r["status"] for r in runs} == {"succeeded"}
    assert sorted(r["selection"] for r in runs) == sorted(t["task_id"] for t in spec["tasks"])
    assert all(r["run_id"].startswith("airflow-manual__") for r in runs)
    done = a.sql("SELECT dataset, status FROM system.dataset_runs").to_arrow().to_pylist()
    assert sorted(d["dataset"] for d in done) == sorted(load_pipeline(DEMO).datasets)
    assert {d["status"] for d in done} == {"ok"}

    # Exactly once: the per-layer DAG, run next on the same input, writes nothing again.
    stored = [n for n, ds in load_pipeline(DEMO).datasets.items() if ds.stored]
    versions = {t: a.table(t).version for t in stored}
    log = _run([str(airflow), "dags", "test", "demo_layers"], airflow_env, tmp_path, 120)
    assert re.search(r"DagRun Finished: dag_id=demo_layers.*state=success", log), log[-4000:]
    assert {t: Lakehouse(by_airflow).table(t).version for t in stored} == versions
    again = (
        Lakehouse(by_airflow)
        .sql(
            "SELECT d.dataset, d.status, d.rows_written, r.trigger FROM system.dataset_runs d "
            "JOIN system.pipeline_runs r USING (run_id) "
            "WHERE regexp_matches(r.run_id, '-(bronze|silver|gold)-[0-9]+$')"
        )
        .to_arrow()
        .to_pylist()
    )
    assert sorted(d["dataset"] for d in again) == sorted(load_pipeline(DEMO).datasets)
    assert {d["status"] for d in again} <= {"ok", "unchanged"}  # files: ok, 0 new files
    assert sum(d["rows_written"] for d in again) == 0
    assert {d["trigger"] for d in again} == {"airflow"}


def test_per_layer_tasks_follow_the_layers():
    spec = dag_spec(DEMO, per="layer", warehouse="wh", dag_id="demo_layers")
    assert [t["task_id"] for t in spec["tasks"]] == ["bronze", "silver", "gold"]
    assert [t["upstream"] for t in spec["tasks"]] == [[], ["bronze"], ["silver"]]
    datasets = load_pipeline(DEMO).datasets
    order = [t["task_id"] for t in dag_spec(DEMO)["tasks"]]
    for task in spec["tasks"]:
        assert task["select"] == [n for n in order if n.startswith(task["task_id"] + ".")]
    assert sum(len(t["select"]) for t in spec["tasks"]) == len(datasets)
    command = spec["command"]
    assert command[command.index("--warehouse") + 1] == str(Path("wh").resolve())
    assert command[-2:] == ["--trigger", "airflow"]


def test_per_dataset_tasks_wait_for_their_inputs():
    spec = dag_spec(DEMO)
    tasks = {t["task_id"]: t for t in spec["tasks"]}
    assert tasks["silver.app_events"]["upstream"] == ["bronze.app_events"]
    assert tasks["gold.daily_summary"]["upstream"] == [
        "silver.app_events",
        "silver.clickstream_sessions",
    ]
    for task in spec["tasks"]:
        assert task["select"] == [task["task_id"]]
        assert all(
            list(tasks).index(up) < list(tasks).index(task["task_id"]) for up in task["upstream"]
        )


def test_pipeline_dag_says_airflow_is_missing():
    with pytest.raises(LakehouseError) as caught:
        pipeline_dag(DEMO)
    assert "Airflow is not installed" in caught.value.message
    assert "lakehouse airflow export" in (caught.value.hint or "")
