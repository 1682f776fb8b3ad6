"""The health report for 100 tables against listing them from the catalog.

Usage: python bench/ops_health.py [--tables 100] [--repeat 5]

A warehouse of ``--tables`` tables (bronze, silver and gold, three commits each, SLAs on
every layer) with a pipeline run recorded for each of them (``system.pipeline_runs`` and
``system.dataset_runs``) is built in bench/data/. Timed, each in a new ``Lakehouse``:
- the baseline: the tables listed from the catalog (``lh.tables()``);
- the report when no table's statistics are kept (``_health/stats.json`` removed: every
  table's log is read);
- the report as it usually runs (statistics kept; target: <= 1 s);
- the report after one table moved (its log read again);
- one alert evaluation (the report, the rules, no event).
The median of ``--repeat`` of each is printed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from lakehouse import Lakehouse
from lakehouse.ops.alerts import evaluate
from lakehouse.ops.health import FOLDER, build_report
from lakehouse.pipeline.records import DatasetRun, RunReport, run_finished, run_started
from lakehouse.settings.model import LayerSettings, Settings

from benchlib import BENCH_DIR, median, ratio, verdict, warn_if_busy, write_result

SCRATCH = BENCH_DIR / "data" / "health-bench"
TARGET = 1.0
LAYERS = ("bronze", "silver", "gold")


def settings() -> Settings:
    return Settings(layers={layer: LayerSettings(sla=3600.0) for layer in LAYERS})


def build(root: Path, tables: int) -> list[str]:
    shutil.rmtree(root, ignore_errors=True)
    lh = Lakehouse(root, settings=settings())
    names = [f"{LAYERS[i % 3]}.t{i:03d}" for i in range(tables)]
    for n, name in enumerate(names):
        for step in range(3):
            lh.write(name, pa.table({"id": [n * 10 + step], "v": [float(step)]}))
    now = datetime.now(UTC)
    report = RunReport("bench-run", "bench", now, ended_at=now, status="succeeded")
    report.datasets = [DatasetRun(name, "materialized_view", status="ok") for name in names]
    run_started(lh, report)
    run_finished(lh, report)
    return names


def timed(fn, lh: Lakehouse) -> float:
    started = time.perf_counter()
    fn(lh)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warn_if_busy("health report")
    names = build(SCRATCH, args.tables)
    cache = SCRATCH / FOLDER / "stats.json"

    def fresh() -> Lakehouse:
        return Lakehouse(SCRATCH, settings=settings())

    listing, cold, warm, moved, alerts = [], [], [], [], []
    build_report(fresh())  # the first size samples are written once an hour
    for i in range(args.repeat):
        listing.append(timed(Lakehouse.tables, fresh()))
        cache.unlink(missing_ok=True)
        cold.append(timed(build_report, fresh()))
        warm.append(timed(build_report, fresh()))
        fresh().write(names[i], pa.table({"id": [-i], "v": [0.0]}))
        moved.append(timed(build_report, fresh()))
        alerts.append(timed(evaluate, fresh()))
    figures = {
        "tables": len(fresh().tables()),
        "catalog_listing_s": median(listing),
        "report_cold_s": median(cold),
        "report_s": median(warm),
        "report_one_moved_s": median(moved),
        "alert_evaluation_s": median(alerts),
    }
    print(f"{figures['tables']} tables in the warehouse ({args.tables} written, the rest system)")
    print(
        "baseline, the tables listed from the catalog: "
        f"{figures['catalog_listing_s'] * 1000:.1f} ms"
    )
    print(
        f"health report: {figures['report_s'] * 1000:.0f} ms "
        f"({ratio(figures['report_s'], figures['catalog_listing_s']):.0f}x the listing; "
        f"target <= {TARGET:g} s: {verdict(figures['report_s'], TARGET)})"
    )
    print(f"health report, one table moved: {figures['report_one_moved_s'] * 1000:.0f} ms")
    print(f"health report, no statistics kept: {figures['report_cold_s'] * 1000:.0f} ms")
    print(f"alert evaluation (report and rules): {figures['alert_evaluation_s'] * 1000:.0f} ms")
    write_result("ops_health", figures)


if __name__ == "__main__":
    main()
