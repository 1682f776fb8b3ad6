"""The demo pipeline on a real Spark standalone cluster: a master and two workers, each its
own JVM started with PySpark's spark-class, on loopback with ports picked at run time, the
warehouse in a folder every process reads. Its tables equal the DuckDB engine's row for row.
Every process the module starts is stopped at its end, whatever happened."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pyspark
import pytest

from lakehouse import Lakehouse
from lakehouse.demo.landing import write_sources
from lakehouse.pipeline import load_pipeline, run_pipeline
from lakehouse.settings.model import Settings, SparkSettings
from lakehouse.spark.session import stop_session
from tests.test_spark import DEMO, contents

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as answer:
        return dict(json.load(answer))


def wait_for(what: str, ready, procs: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except OSError:
            pass  # not listening yet
        for proc in procs:
            assert proc.poll() is None, f"a cluster process exited while waiting for {what}"
        assert time.monotonic() < deadline, f"{what} not ready within {timeout:.0f} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:PORT with two workers of one core each."""
    root = tmp_path_factory.mktemp("spark-cluster")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(root / "logs"),
        "PYSPARK_PYTHON": sys.executable,
    }
    port, ui = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    logs = []

    def start(*args: str) -> None:
        log = open(root / f"process-{len(procs)}.log", "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [str(SPARK_CLASS), *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        start(
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui),
        )  # fmt: skip
        wait_for("the master", lambda: master_state(ui)["status"] == "ALIVE", procs)
        for i in range(2):
            start(
                "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1", "--webui-port", str(free_port()), "--cores", "1",
                "--memory", "1536m", "--work-dir", str(root / f"work-{i}"),
                f"spark://127.0.0.1:{port}",
            )  # fmt: skip
        wait_for(
            "two workers",
            lambda: sum(w["state"] == "ALIVE" for w in master_state(ui)["workers"]) == 2,
            procs,
        )
        yield f"spark://127.0.0.1:{port}", ui
    finally:
        stop_session()
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        for log in logs:
            log.close()


def test_demo_on_a_two_worker_cluster_equals_duckdb(cluster, tmp_path):
    master, ui = cluster
    landing = tmp_path / "shared" / "landing"
    write_sources(landing, events=1500, drops=2, start=datetime(2026, 11, 1, tzinfo=UTC))
    pipeline = load_pipeline(DEMO, {"landing": str(landing)})
    duck = Lakehouse(tmp_path / "shared" / "duckdb")
    run_pipeline(duck, pipeline, engine="duckdb")
    # a shuffle partition per core of the cluster, as one sets it for a small cluster
    settings = Settings(spark=SparkSettings(config={"spark.sql.shuffle.partitions": "2"}))
    spark = Lakehouse(tmp_path / "shared" / "spark", settings=settings)
    report = run_pipeline(spark, pipeline, engine="spark", master=master)
    assert {d.engine for d in report.datasets if d.engine is not None} == {"spark"}
    assert contents(spark, pipeline) == contents(duck, pipeline)
    # the work ran on both workers' executors
    (app,) = master_state(ui)["activeapps"]
    assert app["cores"] == 2
    assert sum(w["coresused"] for w in master_state(ui)["workers"]) == 2
