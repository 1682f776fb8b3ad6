"""The demo pipeline on the Spark engine against the DuckDB engine, same data, same run.

Sources: ``--events`` app events (default 10 million) and the other three sources in the
demo's proportions, as parquet files (4 drops each) in ``bench/data/engines-<N>/landing``,
shared by every warehouse below.

- DuckDB: ``run_pipeline(..., engine="duckdb")`` into a fresh warehouse, then one more drop
  of 1% new data and an incremental run.
- Spark ``local[2]``: the same, ``engine="spark"``; the session's start is timed apart.
- Spark on a standalone cluster of a master and ``--workers`` workers (1 core each) started
  from PySpark's spark-class on loopback, for each worker count of ``--scaling`` (default:
  1 and 2): the full run only; the share that does not parallelise is estimated from the
  two timings (Amdahl).

Where the time goes on Spark: JVM and session start, translation, input registration,
query and write per dataset (the engine's own timers), and the platform's own share (the
run's time outside its queries: commits, run records, quality, lineage), which should stay
under 10% of the run. Prints every figure with its ratio to DuckDB's and writes
bench/results/engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchlib import BENCH_DIR, ratio, verdict, warn_if_busy, write_result

ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "src"))

from lakehouse import Lakehouse  # noqa: E402
from lakehouse.demo.landing import add_drop, write_sources  # noqa: E402
from lakehouse.pipeline import load_pipeline, run_pipeline  # noqa: E402
from lakehouse.spark.engine import SparkEngine  # noqa: E402
from lakehouse.spark.session import spark_session, stop_session  # noqa: E402

DEMO = ROOT / "pipelines" / "demo"
OVERHEAD_TARGET = 0.10  # the platform's share of a Spark run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def master_state(ui: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as answer:
        return dict(json.load(answer))


class Cluster:
    """A standalone master and ``workers`` one-core workers; stopped on exit."""

    def __init__(self, workers: int, folder: Path) -> None:
        import pyspark

        self.spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
        self.workers = workers
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.port, self.ui = free_port(), free_port()

    def _start(self, *args: str) -> None:
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
        log = open(self.folder / f"process-{len(self.procs)}.log", "wb")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [str(self.spark_class), *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def _wait(self, ready: Any, what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{what} not ready within {timeout:.0f} s")

    def __enter__(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._start(
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui),
        )  # fmt: skip
        self._wait(lambda: master_state(self.ui)["status"] == "ALIVE", "the master")
        for i in range(self.workers):
            self._start(
                "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1", "--webui-port", str(free_port()), "--cores", "1",
                "--memory", "4g", "--work-dir", str(self.folder / f"work-{i}"),
                f"spark://127.0.0.1:{self.port}",
            )  # fmt: skip
        self._wait(
            lambda: (
                sum(w["state"] == "ALIVE" for w in master_state(self.ui)["workers"]) == self.workers
            ),
            f"{self.workers} worker(s)",
        )
        return f"spark://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        stop_session()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def timed_run(lh: Lakehouse, pipeline: Any, engine: str, master: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    report = run_pipeline(lh, pipeline, engine=engine, master=master)
    seconds = time.perf_counter() - started
    queries = sum(d.seconds for d in report.datasets if d.engine is not None)
    return {
        "seconds": round(seconds, 2),
        "datasets": {d.dataset: round(d.seconds, 3) for d in report.datasets},
        "query_seconds": round(queries, 2),
        "platform_share": round(1 - queries / seconds, 3) if seconds else None,
    }


def spark_breakdown(lh: Lakehouse, master: str) -> dict[str, float]:
    """One query's phases on Spark (session reuse, inputs, translation, compute)."""
    engine = SparkEngine(lh.engine, lh.settings.spark, master)
    engine.query("SELECT event_type, count(*) AS events FROM silver.app_events GROUP BY event_type")
    return {k: round(v, 3) for k, v in engine.last_seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--scaling", default="1,2", help="worker counts of the cluster runs")
    args = parser.parse_args()
    warn_if_busy("engines")
    base = BENCH_DIR / "data" / f"engines-{args.events}"
    landing = base / "landing"
    if not (landing / "_generated.json").exists():
        shutil.rmtree(landing, ignore_errors=True)
        write_sources(landing, events=args.events, drops=4, formats="parquet")
    pipeline = load_pipeline(DEMO, {"landing": str(landing)})
    results: dict[str, Any] = {"events": args.events}

    def fresh(name: str) -> Lakehouse:
        shutil.rmtree(base / name, ignore_errors=True)
        return Lakehouse(base / name)

    duck = fresh("duckdb")
    results["duckdb"] = {"full": timed_run(duck, pipeline, "duckdb", None)}

    started = time.perf_counter()
    spark_session(duck.settings.spark, "local[2]")
    results["spark_session_start"] = round(time.perf_counter() - started, 2)
    local = fresh("spark-local")
    results["spark_local"] = {"full": timed_run(local, pipeline, "spark", "local[2]")}
    results["spark_local"]["one_query"] = spark_breakdown(local, "local[2]")

    add_drop(landing, fraction=0.01)
    results["duckdb"]["incremental"] = timed_run(duck, pipeline, "duckdb", None)
    results["spark_local"]["incremental"] = timed_run(local, pipeline, "spark", "local[2]")
    stop_session()

    scaling: dict[str, Any] = {}
    for workers in [int(w) for w in args.scaling.split(",") if w]:
        with Cluster(workers, base / f"cluster-{workers}") as master:
            lh = fresh(f"spark-cluster-{workers}")
            scaling[str(workers)] = timed_run(lh, pipeline, "spark", master)
    results["spark_cluster"] = scaling

    base_full = results["duckdb"]["full"]["seconds"]
    print(f"{'run':<34}{'seconds':>10}{'x DuckDB':>10}{'platform share':>16}")
    rows = [
        ("DuckDB full", results["duckdb"]["full"]),
        ("DuckDB incremental (1%)", results["duckdb"]["incremental"]),
        ("Spark local[2] full", results["spark_local"]["full"]),
        ("Spark local[2] incremental (1%)", results["spark_local"]["incremental"]),
        *((f"Spark cluster, {w} worker(s), full", r) for w, r in scaling.items()),
    ]
    for label, run in rows:
        share = run["platform_share"]
        print(
            f"{label:<34}{run['seconds']:>10.2f}{ratio(run['seconds'], base_full):>9.2f}x"
            f"{'' if share is None else f'{share:>15.1%}'}"
        )
    print(f"Spark session start: {results['spark_session_start']:.2f} s")
    print(f"one Spark query, by phase (s): {results['spark_local']['one_query']}")
    share = results["spark_local"]["full"]["platform_share"]
    if share is not None:
        print(f"platform overhead on Spark {share:.1%}: {verdict(share, OVERHEAD_TARGET)}")
    if "1" in scaling and "2" in scaling:
        t1, t2 = scaling["1"]["seconds"], scaling["2"]["seconds"]
        serial = max(0.0, min(1.0, 2 * t2 / t1 - 1))  # Amdahl: t2 = t1 * (s + (1 - s) / 2)
        results["serial_share"] = round(serial, 3)
        print(f"1 -> 2 workers: {t1 / t2:.2f}x faster; not parallelised: ~{serial:.0%}")
    print(f"written {write_result('engines', results)}")


if __name__ == "__main__":
    main()
