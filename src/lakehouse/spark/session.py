"""The one Spark session of a process, started when Spark is first used: Java and PySpark
are looked for and a standalone master is reached before Spark is asked to start, so a
missing piece is reported by name with what to install or change."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.settings.model import SparkSettings

# What every session is given: the platform's SQL reads and writes times in UTC, Spark's
# parquet times as microseconds (not INT96), results handed over as Arrow.
BASE_CONFIG = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",  # as DuckDB: x / 0 is NULL
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
# In one process (local[N]) a query's fixed costs dominate: a shuffle partition per core,
# and no adaptive re-planning between stages (twice as quick on the demo's queries).
LOCAL_CONFIG = {"spark.sql.adaptive.enabled": "false"}
REACH_TIMEOUT = 3.0  # seconds to reach a standalone master before saying it is down

_lock = threading.Lock()
_session: tuple[str, Any] | None = None  # (master, SparkSession)


class SparkUnavailable(LakehouseError):
    """Spark cannot start here: no Java, no PySpark, or a master that does not answer."""


def java_path() -> str | None:
    """The ``java`` Spark would start: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def check_java() -> None:
    if java_path() is None:
        raise SparkUnavailable(
            "the Spark engine needs a Java runtime, and none was found (no java on PATH, "
            "no JAVA_HOME)",
            "install one (Debian: apt-get install openjdk-17-jre-headless; scripts/test.sh "
            "does) or run on DuckDB: --engine duckdb",
        )


def check_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SparkUnavailable(
            "the Spark engine needs PySpark, which is not installed",
            "pip install 'lakehouse[spark]' (pyspark 4.3.0) or run on DuckDB: --engine duckdb",
        ) from exc


def check_master(master: str) -> None:
    """A ``spark://host:port`` master must accept a connection (Spark itself would retry
    for minutes before failing)."""
    if master.startswith("sc://"):
        raise SparkUnavailable(
            f"Spark Connect masters ({master}) are not supported yet",
            "give the cluster's spark://host:port, or local[N]",
        )
    if not master.startswith("spark://"):
        if not master.startswith("local"):
            raise SparkUnavailable(
                f"unknown Spark master {master!r}",
                "give local[N], local[*] or spark://host:port",
            )
        return
    for address in master.removeprefix("spark://").split(","):
        parsed = urlparse(f"spark://{address}")
        host, port = parsed.hostname, parsed.port or 7077
        try:
            with socket.create_connection((host or "127.0.0.1", port), timeout=REACH_TIMEOUT):
                return
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            last = f"{host}:{port} ({reason})"
    raise SparkUnavailable(
        f"the Spark master {master} does not answer: {last}",
        "start it (spark-class org.apache.spark.deploy.master.Master) and its workers, "
        "fix --master / spark.master, or run on local[*]",
    )


def preflight(settings: SparkSettings, master: str | None = None) -> None:
    """What Spark needs, checked before a run writes anything: Java, PySpark, the master."""
    check_java()
    check_pyspark()
    check_master(master or settings.master)


def spark_session(settings: SparkSettings, master: str | None = None) -> Any:
    """The process's Spark session on ``master`` (else the settings' one), started once;
    asking for another master stops the first session."""
    global _session
    wanted = master or settings.master
    with _lock:
        if _session is not None:
            if _session[0] == wanted and not _stopped(_session[1]):
                return _session[1]
            _session[1].stop()
            _session = None
        check_java()
        check_pyspark()
        check_master(wanted)
        # PySpark warns about pandas 3 on start; the platform hands Spark Arrow, not pandas
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.master(wanted).appName(settings.app_name)
        for key, value in {**BASE_CONFIG, **_local(wanted), **settings.config}.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # noqa: BLE001 - the JVM's errors carry no fixed type
            raise SparkUnavailable(
                f"Spark could not start on {wanted}: {str(exc).splitlines()[0][:300]}",
                "check the Java runtime (java -version: 17 or 21) and the spark settings",
            ) from exc
        session.sparkContext.setLogLevel("ERROR")
        _session = (wanted, session)
        return session


def stop_session() -> None:
    """Stop the process's Spark session, if one was started."""
    global _session
    with _lock:
        if _session is not None:
            _session[1].stop()
            _session = None


def _local(master: str) -> dict[str, str]:
    if not master.startswith("local"):
        return {}
    cores = master.removeprefix("local").strip("[]").split(",")[0]
    if cores in ("", "*"):
        count = os.cpu_count() or 1
    else:
        count = int(cores) if cores.isdigit() else 1
    return {**LOCAL_CONFIG, "spark.sql.shuffle.partitions": str(count)}


def _stopped(session: Any) -> bool:
    context = session.sparkContext
    return context is None or getattr(context, "_jsc", None) is None
