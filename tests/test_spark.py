"""The Spark engine on local[2]: the demo pipeline gives the DuckDB engine's tables, row for
row, on a first and an incremental run and after a kill -9 of the driver; a dataset that
fails on an executor rolls the run back; constructs Spark cannot run are reported with
file and line before anything runs; ``engine: auto`` routes by input size; ad-hoc SQL.

One Spark session serves the module (the process's session, stopped at its end)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.demo.landing import add_drop, write_sources
from lakehouse.pipeline import load_pipeline, run_pipeline
from lakehouse.pipeline.errors import PipelineError, RunFailed
from lakehouse.pipeline.plan import validate
from lakehouse.settings.model import EngineSettings, Settings
from lakehouse.spark.session import SparkUnavailable, check_java, stop_session
from tests.helpers.pipeline_rows import contents

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pipelines" / "demo"
MASTER = "local[2]"


def schemas(lh: Lakehouse, pipeline) -> dict[str, pa.Schema]:
    names = set(lh.catalog.names())
    return {
        ds.name: lh.table(ds.name).schema for ds in pipeline.datasets.values() if ds.name in names
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One landing folder and the DuckDB engine's first run over it (``duckdb``); the
    Spark session is stopped when the module ends."""
    root = tmp_path_factory.mktemp("spark-demo")
    landing = root / "landing"
    write_sources(landing, events=1500, drops=2, start=datetime(2026, 11, 1, tzinfo=UTC))
    pipeline = load_pipeline(DEMO, {"landing": str(landing)})
    run_pipeline(Lakehouse(root / "duckdb"), pipeline, engine="duckdb")
    yield root, landing, pipeline
    stop_session()


def test_demo_on_spark_equals_duckdb_first_then_incremental_after_a_kill_9(demo):
    """The first run on Spark; then new data, and the incremental run's driver (Python and
    its JVM) killed with SIGKILL in the middle of its commits, and the run done again: the
    tables equal the DuckDB engine's, row for row, each time."""
    root, landing, pipeline = demo
    duck, spark = Lakehouse(root / "duckdb"), Lakehouse(root / "spark")
    report = run_pipeline(spark, pipeline, engine="spark", master=MASTER)
    queried = [d for d in report.datasets if d.engine is not None]
    assert queried and all(d.engine == "spark" for d in queried)
    assert contents(spark, pipeline) == contents(duck, pipeline)
    assert schemas(spark, pipeline) == schemas(duck, pipeline)

    add_drop(landing, fraction=0.05)
    run_pipeline(duck, pipeline, engine="duckdb")
    kill_mid_run(root / "spark", landing)
    run_pipeline(spark, pipeline, engine="spark", master=MASTER)
    assert contents(spark, pipeline) == contents(duck, pipeline)
    assert schemas(spark, pipeline) == schemas(duck, pipeline)
    statuses = spark.sql("SELECT status FROM system.pipeline_runs ORDER BY started_at").rows()
    assert statuses == [("succeeded",), ("interrupted",), ("succeeded",)]
    recorded = spark.sql(
        "SELECT DISTINCT engine, engine_why FROM system.dataset_runs WHERE engine IS NOT NULL"
    ).rows()
    assert recorded == [("spark", "the run's --engine")]


def kill_mid_run(warehouse: Path, landing: Path) -> None:
    """``lakehouse run --engine spark`` on the demo, killed (Python and its JVM) once it
    has committed to three more silver tables than before."""
    silver = len(list(warehouse.glob("silver/*/_delta_log/*.json")))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakehouse.cli",
            "--warehouse",
            str(warehouse),
            "run",
            str(DEMO),
            "--var",
            f"landing={landing}",
            "--engine",
            "spark",
            "--master",
            MASTER,
        ],  # fmt: skip
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the driver is Python and its JVM: both are killed
    )
    try:
        deadline = time.monotonic() + 240
        while len(list(warehouse.glob("silver/*/_delta_log/*.json"))) < silver + 3:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no silver commits within 240 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def small_pipeline(folder: Path, files: dict[str, str]) -> Path:
    (folder / "silver").mkdir(parents=True)
    for name, text in files.items():
        (folder / "silver" / name).write_text(text)
    return folder


def test_a_dataset_failing_on_an_executor_rolls_the_run_back(tmp_path, demo):
    lh = Lakehouse(tmp_path / "warehouse")
    lh.write("bronze.numbers", pa.table({"x": [1, 2, 3]}))
    folder = small_pipeline(
        tmp_path / "pipeline",
        {
            "copied.sql": (
                "-- date_column: day\n"
                "SELECT x, x * 2 AS doubled, DATE '2026-11-01' + CAST(x AS INTEGER) AS day\n"
                "FROM bronze.numbers\n"
            ),
            "checked.sql": (
                "-- description: fails on an executor when a number is above 5\n"
                "SELECT x,\n"
                "    CASE WHEN x > 5 THEN error('too large: ' || CAST(x AS VARCHAR))\n"
                "    ELSE x END AS y\n"
                "FROM silver.copied\n"
            ),
        },
    )
    pipeline = load_pipeline(folder)
    run_pipeline(lh, pipeline, engine="spark", master=MASTER)
    # silver.copied exists now (partitioned by day): its rows are written by the
    # executors, a folder per day, and committed here
    lh.write("bronze.numbers", pa.table({"x": [4]}))
    report = run_pipeline(lh, pipeline, engine="spark", master=MASTER)
    copied = next(d for d in report.datasets if d.dataset == "silver.copied")
    assert "files written by Spark's executors" in copied.strategy
    assert copied.rows_written == 4 and copied.rows_read == 4
    snap = lh.engine.snapshot("silver.copied")
    assert snap.partition_columns == ("day_day",) and len(snap.files) == 4
    assert all("/spark-" in f.path and "/day_day=2026-11-0" in f.path for f in snap.files)
    days = lh.sql("SELECT x, day_day FROM silver.copied ORDER BY x").rows()
    assert [(x, d.isoformat()) for x, d in days] == [(n, f"2026-11-0{n + 1}") for n in (1, 2, 3, 4)]
    assert lh.sql("SELECT sum(doubled) FROM silver.copied").rows() == [(20,)]
    lh.write("bronze.numbers", pa.table({"x": [9]}))
    with pytest.raises(RunFailed) as failed:
        run_pipeline(lh, pipeline, engine="spark", master=MASTER)
    assert "silver.checked" in failed.value.message and "Spark failed" in failed.value.message
    assert "too large: 9" in failed.value.message
    # silver.copied had been rewritten by the run: it is back as it was before
    assert lh.sql("SELECT count(*) FROM silver.copied").rows() == [(4,)]
    assert lh.sql("SELECT sum(y) FROM silver.checked").rows() == [(10,)]
    runs = lh.sql("SELECT status FROM system.pipeline_runs ORDER BY started_at").rows()
    assert runs == [("succeeded",), ("succeeded",), ("failed",)]


def test_untranslatable_sql_is_reported_with_file_and_line_before_anything_runs(tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    lh.write("bronze.numbers", pa.table({"x": [1, 2, 3]}))
    folder = small_pipeline(
        tmp_path / "pipeline",
        {
            "fine.sql": "SELECT x FROM bronze.numbers\n",
            "summed.sql": (
                "-- description: a DuckDB list function Spark does not have\n"
                "SELECT\n"
                "    x,\n"
                "    list_reduce([x, 1], lambda a, b: a + b) AS total\n"
                "FROM bronze.numbers\n"
            ),
        },
    )
    pipeline = load_pipeline(folder)
    validate(pipeline, lh)  # fine on DuckDB
    with pytest.raises(PipelineError) as found:
        validate(pipeline, lh, engine="spark")
    (problem,) = found.value.problems
    assert problem.file.name == "summed.sql" and problem.line == 4
    assert "list_reduce() has no Spark equivalent" in problem.message
    assert "engine: duckdb" in (problem.hint or "")
    with pytest.raises(PipelineError):
        run_pipeline(lh, pipeline, engine="spark", master=MASTER)
    assert not lh.exists("silver.fine") and not lh.exists("silver.summed")
    # auto runs such a dataset on DuckDB, and says why
    report = run_pipeline(lh, pipeline, engine="auto")
    summed = next(d for d in report.datasets if d.dataset == "silver.summed")
    assert summed.engine == "duckdb" and "not translatable" in (summed.engine_why or "")


def test_auto_routes_small_inputs_to_duckdb_and_large_ones_to_spark(tmp_path, demo):
    settings = Settings(engine=EngineSettings(default="auto", spark_above_rows=1000))
    lh = Lakehouse(tmp_path / "warehouse", settings=settings)
    lh.write("bronze.small", pa.table({"x": list(range(10))}))
    lh.write("bronze.large", pa.table({"x": list(range(5000))}))
    folder = small_pipeline(
        tmp_path / "pipeline",
        {
            "small_sum.sql": "SELECT sum(x) AS total, count(*) AS n FROM bronze.small\n",
            "large_sum.sql": "SELECT sum(x) AS total, count(*) AS n FROM bronze.large\n",
        },
    )
    report = run_pipeline(lh, load_pipeline(folder), master=MASTER)
    engines = {d.dataset: (d.engine, d.engine_why) for d in report.datasets}
    assert engines["silver.small_sum"][0] == "duckdb"
    assert "10 rows" in engines["silver.small_sum"][1]
    assert engines["silver.large_sum"][0] == "spark"
    assert "spark_above_rows 1,000" in engines["silver.large_sum"][1]
    assert lh.sql("SELECT total, n FROM silver.large_sum").rows() == [(12497500, 5000)]
    assert lh.sql("SELECT total, n FROM silver.small_sum").rows() == [(45, 10)]


def test_a_python_dataset_computes_on_a_spark_dataframe(tmp_path, demo):
    lh = Lakehouse(tmp_path / "warehouse")
    lh.write("bronze.numbers", pa.table({"x": [1, 2, 3], "kind": ["a", "b", "a"]}))
    folder = small_pipeline(
        tmp_path / "pipeline",
        {
            "per_kind.py": (
                "from lakehouse.pipeline import dataset\n\n\n"
                "@dataset('silver.per_kind', inputs=['bronze.numbers'], keys=['kind'])\n"
                "def per_kind(ctx):\n"
                "    rows = ctx.spark_read('bronze.numbers')\n"
                "    return rows.groupBy('kind').sum('x').withColumnRenamed('sum(x)', 'total')\n"
            )
        },
    )
    report = run_pipeline(lh, load_pipeline(folder), master=MASTER)
    (item,) = report.datasets
    assert item.engine == "spark" and item.rows_written == 2
    rows = lh.sql("SELECT kind, total FROM silver.per_kind ORDER BY kind").rows()
    assert rows == [("a", 4), ("b", 2)]


def test_ad_hoc_sql_on_spark(demo):
    root, _, _ = demo
    lh = Lakehouse(root / "duckdb")
    query = (
        "SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users "
        "FROM silver.app_events WHERE is_valid GROUP BY event_type ORDER BY event_type"
    )
    on_spark = lh.sql(query, engine="spark", master=MASTER)
    assert on_spark.rows() == lh.sql(query).rows() and on_spark.engine == "spark"
    assert on_spark.columns == ["event_type", "events", "users"]
    # auto: a small table stays on DuckDB, and the result says why
    small = lh.sql(query, engine="auto")
    assert small.engine == "duckdb" and "< spark_above" in (small.engine_why or "")
    assert small.rows() == on_spark.rows()


def test_missing_java_and_an_unreachable_master_say_what_to_do(monkeypatch, tmp_path):
    lh = Lakehouse(tmp_path / "warehouse")
    lh.write("bronze.numbers", pa.table({"x": [1, 2, 3]}))
    pipeline = load_pipeline(
        small_pipeline(tmp_path / "pipeline", {"copied.sql": "SELECT x FROM bronze.numbers\n"})
    )
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SparkUnavailable) as down:
        run_pipeline(lh, pipeline, engine="spark", master=f"spark://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in down.value.message
    assert "Master" in (down.value.hint or "")
    assert not lh.exists("silver.copied")  # refused before the run wrote anything
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(SparkUnavailable) as no_java:
        check_java()
    assert "Java runtime" in no_java.value.message
    assert "openjdk-17-jre-headless" in (no_java.value.hint or "")
