"""The health report: per table its freshness against its SLA, last run, quality pass
rate, small files, size and growth per day, versions since its last compaction and
serving lag; per layer and overall a state (healthy, degraded, unhealthy) with the
reasons. Figures come from the catalog (version, rows, size, files after every commit),
the run records and ``ops.stats`` (kept per table version in ``_health/stats.json``, so a
table is read from its log only when it moved)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.ops.schedule_lag import pipeline_lags
from lakehouse.ops.sizes import growth_per_day, record_sizes
from lakehouse.ops.stats import table_stats

if TYPE_CHECKING:
    from lakehouse.catalog.store import TableInfo
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.health")

STATES = ("healthy", "degraded", "unhealthy")
FOLDER = "_health"
REPORT_FILE = "report.json"
SERVING_MAX_LAG = 30.0  # seconds a mirror may lag its table before it is degraded
_stats_lock = threading.Lock()


def worst(states: list[str]) -> str:
    return max(states, key=STATES.index, default="healthy")


@dataclass
class TableHealth:
    table: str
    layer: str
    state: str = "healthy"
    reasons: list[str] = field(default_factory=list)
    version: int = 0
    rows: int = 0
    size_bytes: int = 0
    files: int = 0
    small_files: int | None = None
    versions_since_compaction: int | None = None
    last_commit: str | None = None
    age_seconds: float | None = None  # since the last commit
    sla_seconds: float | None = None
    fresh: bool | None = None  # None: no SLA
    last_run: dict[str, Any] | None = None  # run_id, pipeline, status, started_at, error
    quality_pass_rate: float | None = None  # checks passed / checks, latest run
    quality_failed_share: float | None = None  # worst share of rows a check failed
    growth_bytes_per_day: float | None = None
    serving_lag_seconds: float | None = None
    serving_state: str | None = None

    def flag(self, state: str, reason: str) -> None:
        self.state = worst([self.state, state])
        self.reasons.append(reason)


def is_quarantine(name: str) -> bool:
    return name.endswith("_quarantine")


def build_report(lh: Lakehouse, now: datetime | None = None) -> dict[str, Any]:
    """The report as plain data (``tables``, ``layers``, ``pipelines``, ``state``,
    ``reasons``, ``generated_at``)."""
    now = now or datetime.now(UTC)
    settings = lh.settings
    infos = lh.tables()
    stats = _stats(lh, infos)
    runs = _last_runs(lh)
    quality = _quality(lh)
    serving = _serving(lh)
    sizes = {i.name: i.size_bytes for i in infos}
    growth = growth_per_day(lh, sizes, now)
    record_sizes(lh, sizes, now)
    tables = []
    for info in infos:
        t = TableHealth(
            table=info.name,
            layer=info.layer,
            version=info.version,
            rows=info.row_count,
            size_bytes=info.size_bytes,
            files=info.num_files,
        )
        got = stats.get(info.name)
        if got is not None:
            t.small_files = got["small_files"]
            t.versions_since_compaction = got["versions_since_compaction"]
            t.last_commit = got["last_commit"]
        if t.last_commit is not None:
            t.age_seconds = round((now - datetime.fromisoformat(t.last_commit)).total_seconds(), 3)
        t.sla_seconds = settings.sla_of(info.name)
        t.last_run = runs.get(info.name)
        q = quality.get(info.name)
        if q is not None:
            t.quality_pass_rate, t.quality_failed_share = q
        t.growth_bytes_per_day = growth.get(info.name)
        mirror = serving.get(info.name)
        if mirror is not None:
            t.serving_lag_seconds = mirror.get("lag_seconds")
            t.serving_state = mirror.get("state")
        _judge(lh, t)
        tables.append(t)
    pipelines = pipeline_lags(lh, now)
    return summarize([asdict(t) for t in tables], pipelines, now)


def _judge(lh: Lakehouse, t: TableHealth) -> None:
    if t.last_run is not None and t.last_run.get("status") == "failed":
        t.flag("unhealthy", f"its last run ({t.last_run.get('run_id')}) failed")
    if t.sla_seconds is not None and t.age_seconds is not None and not is_quarantine(t.table):
        t.fresh = t.age_seconds <= t.sla_seconds
        if not t.fresh:
            over = "unhealthy" if t.age_seconds > 2 * t.sla_seconds else "degraded"
            t.flag(over, f"data is {_span(t.age_seconds)} old, its SLA is {_span(t.sla_seconds)}")
    if t.quality_pass_rate is not None and t.quality_pass_rate < 1:
        t.flag("degraded", f"{(1 - t.quality_pass_rate) * 100:.0f} % of its checks failed")
    limit = lh.settings.maintenance.policy_for(t.table).small_files
    if t.small_files is not None and limit is not None and t.small_files > limit:
        t.flag("degraded", f"{t.small_files} small files (compaction above {limit})")
    if t.serving_state in ("missing", "unreadable", "unreachable"):
        t.flag("degraded", f"its serving mirror is {t.serving_state}")
    elif t.serving_lag_seconds is not None and t.serving_lag_seconds > SERVING_MAX_LAG:
        t.flag("degraded", f"its serving mirror lags {t.serving_lag_seconds:.0f} s")


def summarize(
    tables: list[dict[str, Any]], pipelines: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """Layers and the overall state from the tables' and pipelines' states (the API calls
    it again over the tables a caller may read)."""
    layers: dict[str, dict[str, Any]] = {}
    for t in tables:
        layer = layers.setdefault(t["layer"], {"state": "healthy", "tables": 0, "reasons": []})
        layer["tables"] += 1
        layer["state"] = worst([layer["state"], t["state"]])
        layer["reasons"] += [f"{t['table']}: {r}" for r in t["reasons"]]
    reasons = [f"{name}: {r}" for name, layer in layers.items() for r in layer["reasons"]]
    states = [layer["state"] for layer in layers.values()]
    for p in pipelines:
        states.append(p["state"])
        reasons += [f"pipeline {p['pipeline']}: {r}" for r in p["reasons"]]
    counts = {s: sum(1 for t in tables if t["state"] == s) for s in STATES}
    return {
        "generated_at": now.isoformat(),
        "state": worst(states),
        "reasons": reasons,
        "counts": counts,
        "layers": layers,
        "pipelines": pipelines,
        "tables": tables,
    }


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.0f} s"


# -- figures ----------------------------------------------------------------------------
def _stats(lh: Lakehouse, infos: list[TableInfo]) -> dict[str, dict[str, Any]]:
    """``ops.stats`` of each table, read again only for a table whose version moved."""
    cache_file = Path(lh.root) / FOLDER / "stats.json" if lh.local else None
    cache: dict[str, dict[str, Any]] = {}
    if cache_file is not None and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
    wanted = {i.name: i for i in infos}
    stale = [i for i in infos if cache.get(i.name, {}).get("version") != i.version]

    def read(info: TableInfo) -> tuple[str, dict[str, Any] | None]:
        size = lh.settings.maintenance.policy_for(info.name).small_file_size or 0
        try:
            return info.name, table_stats(lh, info.name, int(size)).as_dict()
        except (LakehouseError, OSError) as exc:
            log.warning("health: cannot read %s: %s", info.name, exc)
            return info.name, None

    if stale:
        with ThreadPoolExecutor(max_workers=min(8, len(stale))) as pool:
            for name, got in pool.map(read, stale):
                if got is not None:
                    cache[name] = got
        if cache_file is not None:
            kept = {k: v for k, v in cache.items() if k in wanted}
            with _stats_lock:
                write_json(cache_file, kept)
    return {k: v for k, v in cache.items() if k in wanted}


def _last_runs(lh: Lakehouse) -> dict[str, dict[str, Any]]:
    """Each dataset's latest run: run, pipeline, status, when, error."""
    from lakehouse.pipeline.records import DATASETS

    if lh.catalog.get(DATASETS) is None:
        return {}
    rows = lh.sql(
        "SELECT dataset, run_id, pipeline, status, started_at, error FROM "
        f"{DATASETS} QUALIFY row_number() OVER "
        "(PARTITION BY dataset ORDER BY started_at DESC) = 1"
    ).to_dicts()
    out = {}
    for row in rows:
        row["started_at"] = _iso(row["started_at"])
        out[row.pop("dataset")] = row
    return out


def _quality(lh: Lakehouse) -> dict[str, tuple[float, float]]:
    """Per dataset, of its latest run's checks: the share passed, the worst failing share
    of rows."""
    from lakehouse.pipeline.records import QUALITY

    if lh.catalog.get(QUALITY) is None:
        return {}
    rows = lh.sql(
        f"WITH latest AS (SELECT dataset, arg_max(run_id, checked_at) AS run_id FROM {QUALITY} "
        "GROUP BY dataset) "
        "SELECT q.dataset, avg(CASE WHEN q.passed THEN 1.0 ELSE 0.0 END), "
        "max(CASE WHEN q.total_rows > 0 THEN q.failed_rows / q.total_rows ELSE 0.0 END) "
        f"FROM {QUALITY} q JOIN latest USING (dataset, run_id) GROUP BY q.dataset"
    ).rows()
    return {r[0]: (round(float(r[1]), 4), round(float(r[2] or 0), 4)) for r in rows}


def _serving(lh: Lakehouse) -> dict[str, dict[str, Any]]:
    """Each mirror's lag and state, when the warehouse has a serving store."""
    from lakehouse.serving.mirrors import serving_folder

    if lh.settings.serving.url is None and not serving_folder(lh.storage).exists():
        return {}
    try:
        return {row["table"]: row for row in lh.serving.status()}
    except LakehouseError as exc:
        log.warning("health: serving store: %s", exc.message)
        return {}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# -- the report file --------------------------------------------------------------------
def write_json(path: Path, data: Any) -> None:
    """``data`` as JSON at ``path``, whole or not at all (a temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def report_path(lh: Lakehouse) -> Path | None:
    """Where the report is written after each run (local warehouses)."""
    return Path(lh.root) / FOLDER / REPORT_FILE if lh.local else None


def write_report(lh: Lakehouse) -> Path | None:
    """Compute the report and write it to ``<warehouse>/_health/report.json``."""
    path = report_path(lh)
    if path is None:
        return None
    write_json(path, build_report(lh))
    return path
