"""What ``GET /metrics`` tells Prometheus of the warehouse, computed at scrape time from
what every process leaves behind, so figures of CLI runs, pipeline child processes and
streams count as well as the server's own:

- per table, from the catalog (one query): size, rows, files, version, and the snapshots
  a reader can travel to (commit files in the table's log, counted again only when the
  version moved);
- runs, rows ingested and quality failures, from the run records in ``system.*`` tables,
  read again only when one of those tables got a new version;
- stream lag per partition, from what each running stream publishes
  (``streaming/lag.py``);
- scheduler and alert state, from their catalog tables and ``system.alerts`` when they
  exist (none of them: no series).

The process-local figures (API latency, the server's own writes) are in
``ops/process_metrics.py``."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import select, text

import lakehouse.catalog.schema as cs
from lakehouse.streaming.lag import read_lags

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.metrics")

RUNS = "system.pipeline_runs"
DATASETS = "system.dataset_runs"
QUALITY = "system.quality_results"
ALERTS = "system.alerts"
RUN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
TABLE_LABELS = ["table", "layer"]


class WarehouseCollector(Collector):
    """The warehouse's figures; the ones read from system tables are kept until one of
    those tables moves (their versions are in the catalog query every scrape makes)."""

    def __init__(self, lh: Lakehouse) -> None:
        self.lh = lh
        self._lock = threading.Lock()
        self._snapshots: dict[str, tuple[int, int]] = {}  # table -> (version, snapshots)
        self._records: tuple[tuple[int, ...], list[Metric]] | None = None
        self._alerts: tuple[int, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            started = time.perf_counter()
            rows = self._tables()
            versions = {r["name"]: int(r["version"]) for r in rows}
            yield from self._table_metrics(rows)
            yield from self._guarded("run records", lambda: self._run_metrics(versions))
            yield from self._guarded("stream lag", self._lag_metrics)
            yield from self._guarded("scheduler", self._scheduler_metrics)
            yield from self._guarded("alerts", lambda: self._alert_metrics(versions))
            took = GaugeMetricFamily(
                "lakehouse_metrics_collect_seconds",
                "Time taken to compute the warehouse's figures for this scrape",
            )
            took.add_metric([], time.perf_counter() - started)
            yield took

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape time: nothing to check at registration

    @staticmethod
    def _guarded(what: str, make: Any) -> list[Metric]:
        try:
            return list(make())
        except Exception:  # noqa: BLE001 - one unreadable source leaves the others
            log.warning("metrics: cannot read the %s", what, exc_info=True)
            return []

    # -- tables ---------------------------------------------------------------------------
    def _tables(self) -> list[dict[str, Any]]:
        t = cs.tables.c
        query = select(t.name, t.layer, t.location, t.version, t.row_count, t.size_bytes)
        with self.lh.catalog.engine.connect() as conn:
            found = [dict(r._mapping) for r in conn.execute(query.add_columns(t.num_files))]
        return sorted(found, key=lambda r: r["name"])

    def _table_metrics(self, rows: list[dict[str, Any]]) -> Iterator[Metric]:
        families = {
            "size": GaugeMetricFamily(
                "lakehouse_table_size_bytes",
                "Bytes of the table's live data files",
                labels=TABLE_LABELS,
            ),
            "rows": GaugeMetricFamily(
                "lakehouse_table_rows", "Rows at the table's latest version", labels=TABLE_LABELS
            ),
            "files": GaugeMetricFamily(
                "lakehouse_table_files", "Live data files of the table", labels=TABLE_LABELS
            ),
            "version": GaugeMetricFamily(
                "lakehouse_table_version", "The table's latest version", labels=TABLE_LABELS
            ),
            "snapshots": GaugeMetricFamily(
                "lakehouse_table_snapshots",
                "Versions of the table whose commit is still in its log (time travel targets)",
                labels=TABLE_LABELS,
            ),
        }
        tables = GaugeMetricFamily(
            "lakehouse_tables", "Tables in the catalog per layer", labels=["layer"]
        )
        per_layer: dict[str, int] = {}
        seen = set()
        for r in rows:
            labels = [r["name"], r["layer"]]
            per_layer[r["layer"]] = per_layer.get(r["layer"], 0) + 1
            families["size"].add_metric(labels, r["size_bytes"] or 0)
            families["rows"].add_metric(labels, r["row_count"] or 0)
            families["files"].add_metric(labels, r["num_files"] or 0)
            families["version"].add_metric(labels, r["version"] or 0)
            snapshots = self._snapshot_count(r["name"], r["location"], int(r["version"] or 0))
            if snapshots is not None:
                families["snapshots"].add_metric(labels, snapshots)
            seen.add(r["name"])
        for name in set(self._snapshots) - seen:
            del self._snapshots[name]
        for layer, n in sorted(per_layer.items()):
            tables.add_metric([layer], n)
        yield tables
        yield from families.values()

    def _snapshot_count(self, name: str, location: str, version: int) -> int | None:
        known = self._snapshots.get(name)
        if known is not None and known[0] == version:
            return known[1]
        if not self.lh.local:
            return None
        folder = Path(location) / "_delta_log"
        try:
            with os.scandir(folder) as entries:
                count = sum(
                    1 for e in entries if e.name.endswith(".json") and e.name[:20].isdigit()
                )
        except OSError:
            return None
        self._snapshots[name] = (version, count)
        return count

    # -- run records ----------------------------------------------------------------------
    def _run_metrics(self, versions: dict[str, int]) -> list[Metric]:
        key = tuple(versions.get(t, -1) for t in (RUNS, DATASETS, QUALITY))
        if self._records is not None and self._records[0] == key:
            return self._records[1]
        found: list[Metric] = []
        if key[0] >= 0:
            found += self._runs()
        if key[1] >= 0:
            found += self._datasets()
        if key[2] >= 0:
            found += self._quality()
        self._records = (key, found)
        return found

    def _sql(self, query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.lh.sql(query).rows()]

    def _runs(self) -> list[Metric]:
        runs = CounterMetricFamily(
            "lakehouse_pipeline_runs",
            "Pipeline runs ended, by outcome (succeeded, failed, interrupted)",
            labels=["pipeline", "status"],
        )
        running = GaugeMetricFamily(
            "lakehouse_pipeline_runs_running", "Pipeline runs under way", labels=["pipeline"]
        )
        last = GaugeMetricFamily(
            "lakehouse_pipeline_last_success_timestamp_seconds",
            "When the pipeline's last successful run ended (Unix time)",
            labels=["pipeline"],
        )
        buckets = ", ".join(f"count(*) FILTER (WHERE seconds <= {b})" for b in RUN_BUCKETS)
        counts = self._sql(
            f"SELECT pipeline, status, count(*), coalesce(sum(seconds), 0), {buckets}, "
            "max(epoch(ended_at)) "
            f"FROM {RUNS} GROUP BY pipeline, status ORDER BY pipeline, status"
        )
        duration = HistogramMetricFamily(
            "lakehouse_pipeline_run_duration_seconds",
            "Duration of ended pipeline runs",
            labels=["pipeline", "status"],
        )
        for pipeline, status, n, total, *rest in counts:
            ended = rest[-1]
            if status == "running":
                running.add_metric([pipeline], n)
                continue
            runs.add_metric([pipeline, status], n)
            cumulative = [(str(b), c) for b, c in zip(RUN_BUCKETS, rest[:-1], strict=True)]
            duration.add_metric([pipeline, status], [*cumulative, ("+Inf", n)], float(total))
            if status == "succeeded" and ended is not None:
                last.add_metric([pipeline], float(ended))
        return [runs, running, duration, last]

    def _datasets(self) -> list[Metric]:
        sums = {
            "rows_read": "Rows the dataset's runs read",
            "rows_written": "Rows the dataset's runs wrote (ingested into its table)",
            "rows_dropped": "Rows dropped by expectations",
            "rows_quarantined": "Rows sent to the quarantine table",
        }
        columns = ", ".join(f"coalesce(sum({c}), 0)" for c in sums)
        buckets = ", ".join(f"count(*) FILTER (WHERE seconds <= {b})" for b in RUN_BUCKETS)
        found = self._sql(
            f"SELECT pipeline, dataset, {columns}, count(*), coalesce(sum(seconds), 0), "
            f"{buckets} FROM {DATASETS} WHERE status IN ('ok', 'failed', 'rolled back') "
            "GROUP BY pipeline, dataset ORDER BY pipeline, dataset"
        )
        labels = ["pipeline", "dataset"]
        families = [
            CounterMetricFamily(f"lakehouse_dataset_{c}", help_, labels=labels)
            for c, help_ in sums.items()
        ]
        duration = HistogramMetricFamily(
            "lakehouse_dataset_write_duration_seconds",
            "Duration of each dataset's computation and write in pipeline runs (any process)",
            labels=labels,
        )
        for pipeline, dataset, *rest in found:
            for family, value in zip(families, rest[: len(sums)], strict=True):
                family.add_metric([pipeline, dataset], value)
            n, total, *cumulative = rest[len(sums) :]
            pairs = [(str(b), c) for b, c in zip(RUN_BUCKETS, cumulative, strict=True)]
            duration.add_metric([pipeline, dataset], [*pairs, ("+Inf", n)], float(total))
        return [*families, duration]

    def _quality(self) -> list[Metric]:
        found = self._sql(
            "SELECT pipeline, dataset, expectation, action, "
            "count(*) FILTER (WHERE NOT passed), coalesce(sum(failed_rows), 0) "
            f"FROM {QUALITY} GROUP BY ALL ORDER BY ALL"
        )
        labels = ["pipeline", "dataset", "expectation", "action"]
        failures = CounterMetricFamily(
            "lakehouse_quality_failures",
            "Runs in which an expectation did not pass",
            labels=labels,
        )
        rows = CounterMetricFamily(
            "lakehouse_quality_failed_rows", "Rows that failed an expectation", labels=labels
        )
        for pipeline, dataset, expectation, action, failed, failed_rows in found:
            key = [pipeline, dataset, expectation, action or ""]
            failures.add_metric(key, failed)
            rows.add_metric(key, failed_rows)
        return [failures, rows]

    # -- streams --------------------------------------------------------------------------
    def _lag_metrics(self) -> list[Metric]:
        if not self.lh.local:
            return []
        labels = ["table", "topic", "partition"]
        lag = GaugeMetricFamily(
            "lakehouse_stream_lag_messages",
            "Messages of a partition not yet in the table (broker's high watermark minus "
            "the offset after the table's last)",
            labels=labels,
        )
        offset = GaugeMetricFamily(
            "lakehouse_stream_committed_offset",
            "The last offset of a partition committed with the table's rows",
            labels=labels,
        )
        for state in read_lags(Path(self.lh.root)):
            for partition, p in sorted(state.partitions.items()):
                key = [state.table, state.topic, str(partition)]
                lag.add_metric(key, p.lag)
                if p.committed is not None:
                    offset.add_metric(key, p.committed)
        return [lag, offset]

    # -- scheduler and alerts -------------------------------------------------------------
    def _scheduler_metrics(self) -> list[Metric]:
        engine = self.lh.catalog.engine
        names = set(_catalog_tables(engine))
        found: list[Metric] = []
        now = datetime.now(UTC)
        if "leases" in names:
            held = GaugeMetricFamily(
                "lakehouse_scheduler_lease_held",
                "1 while a process holds the lease (unexpired), by lease and holder",
                labels=["lease", "holder"],
            )
            with engine.connect() as conn:
                for name, holder, expires in conn.execute(
                    text("SELECT name, holder, expires_at FROM leases")
                ):
                    held.add_metric([name, holder], 1.0 if _after(expires, now) else 0.0)
            found.append(held)
        if "schedule_state" in names:
            labels = ["job", "kind"]
            running = GaugeMetricFamily(
                "lakehouse_schedule_running", "1 while the job's run is under way", labels=labels
            )
            pending = GaugeMetricFamily(
                "lakehouse_schedule_pending", "Due times of the job waiting to run", labels=labels
            )
            attempt = GaugeMetricFamily(
                "lakehouse_schedule_retry_attempt",
                "Retries made for the job's current due time",
                labels=labels,
            )
            next_due = GaugeMetricFamily(
                "lakehouse_schedule_next_due_timestamp_seconds",
                "The job's next due time (Unix time)",
                labels=labels,
            )
            query = "SELECT job, kind, running, pending_json, attempt, next_due FROM schedule_state"
            with engine.connect() as conn:
                for job, kind, run, queued, tries, due in conn.execute(text(query)):
                    key = [job, kind]
                    running.add_metric(key, float(run or 0))
                    pending.add_metric(key, float(len(json.loads(queued or "[]"))))
                    attempt.add_metric(key, float(tries or 0))
                    stamp = _timestamp(due)
                    if stamp is not None:
                        next_due.add_metric(key, stamp)
            found += [running, pending, attempt, next_due]
        return found

    def _alert_metrics(self, versions: dict[str, int]) -> list[Metric]:
        version = versions.get(ALERTS)
        if version is None:
            return []
        if self._alerts is not None and self._alerts[0] == version:
            return self._alerts[1]
        firing = GaugeMetricFamily(
            "lakehouse_alert_firing",
            "1 while the alert's latest event is 'fired', 0 once resolved",
            labels=["rule", "subject", "severity"],
        )
        for rule, subject, severity, event in self._sql(
            "SELECT rule, subject, severity, event FROM ("
            "SELECT *, row_number() OVER (PARTITION BY rule, subject ORDER BY at DESC) AS n "
            f"FROM {ALERTS}) WHERE n = 1 ORDER BY rule, subject"
        ):
            firing.add_metric(
                [rule, subject or "", severity or ""], 1.0 if event == "fired" else 0.0
            )
        self._alerts = (version, [firing])
        return [firing]


def _catalog_tables(engine: Any) -> list[str]:
    from sqlalchemy import inspect

    return list(inspect(engine).get_table_names())


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def _after(value: Any, now: datetime) -> bool:
    stamp = _timestamp(value)
    return stamp is not None and stamp > now.timestamp()
