"""The scheduler: how long after its due time a scheduled run starts.

Usage: python bench/ops_scheduler.py [--runs 8] [--every 2]

A one-dataset pipeline is scheduled every ``--every`` seconds (a six-field cron) and run
by the scheduler (``ops/scheduler.py``, in a thread of this process as ``lakehouse
serve`` runs it) for ``--runs`` due times. For each run: the delay from its due time to
the launch of its child process (the scheduler's own reaction) and to the run's record
(``system.pipeline_runs.started_at``, when the child has imported the package, read and
validated the pipeline and taken its lock). Baseline, in the same run: the same pipeline
started by hand through the launcher (``Launches.start_run``, as ``POST
/pipelines/{name}/runs`` does), from the call to the run's record, ``--runs`` times.
Target: a scheduled run starts (its record) within 1 s of its due time, median and max.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import UTC, datetime

from benchlib import BENCH_DIR, median, verdict, warn_if_busy, write_result

sys.path.insert(0, str(BENCH_DIR.parent / "src"))

from lakehouse import Lakehouse  # noqa: E402
from lakehouse.ops.schedule_store import ScheduleStore  # noqa: E402
from lakehouse.ops.scheduler import Scheduler  # noqa: E402
from lakehouse.pipeline import load_pipeline  # noqa: E402
from lakehouse.service.launcher import Launches  # noqa: E402
from lakehouse.service.runs import find_run  # noqa: E402
from lakehouse.settings.model import MaintenanceSettings, PipelineSettings, Settings  # noqa: E402

SCRATCH = BENCH_DIR / "data" / "scheduler-bench"
TARGET = 1.0


def wait_for(check, timeout: float = 120):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise SystemExit("timed out")


def record_started(lh: Lakehouse, run_id: str) -> datetime:
    def found() -> datetime | None:
        try:
            row = find_run(lh, run_id)
        except Exception:  # noqa: BLE001 - the runs table may be mid-creation
            return None
        return row["started_at"] if row and row["status"] != "running" else None

    return wait_for(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--every", type=int, default=2)
    args = parser.parse_args()
    warn_if_busy("before the scheduler benchmark")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    folder = SCRATCH / "pipeline"
    (folder / "gold").mkdir(parents=True)
    (folder / "pipeline.yml").write_text("name: bench\n")
    (folder / "gold" / "one.sql").write_text("SELECT 1 AS x")
    settings = Settings(
        pipelines={
            "bench": PipelineSettings(path=str(folder), schedule=f"*/{args.every} * * * * *")
        },
        maintenance=MaintenanceSettings(schedule=None),
        alerts={"interval": 0},  # type: ignore[arg-type]
    )

    # baseline: the same run started by hand through the launcher
    by_hand = Lakehouse(SCRATCH / "by-hand", settings=settings)
    launches = Launches(by_hand.root)
    pipeline = load_pipeline(folder)
    manual = []
    for _ in range(args.runs):
        called = datetime.now(UTC)
        run_id = launches.start_run(pipeline, trigger="manual")
        manual.append((record_started(by_hand, run_id) - called).total_seconds())

    lh = Lakehouse(SCRATCH / "scheduled", settings=settings)
    scheduler = Scheduler(lh)
    scheduler.start()
    store = ScheduleStore(lh.catalog)
    try:
        ended = wait_for(
            lambda: (
                [e for e in store.history("bench") if e["event"] == "succeeded"][: args.runs]
                if len([e for e in store.history("bench") if e["event"] == "succeeded"])
                >= args.runs
                else None
            ),
            timeout=args.runs * args.every * 10 + 60,
        )
    finally:
        scheduler.stop()
    started = {e["run_id"]: e for e in store.history("bench") if e["event"] == "started"}
    launch, record = [], []
    for event in ended:
        start = started[event["run_id"]]
        launch.append((start["at"] - start["due_at"]).total_seconds())
        record.append((record_started(lh, event["run_id"]) - start["due_at"]).total_seconds())

    print(f"scheduled run starts after its due time ({args.runs} due times, every {args.every} s)")
    print(f"  launch of the child:  median {median(launch):.3f} s  max {max(launch):.3f} s")
    print(
        f"  run record started:   median {median(record):.3f} s  max {max(record):.3f} s"
        f"  (target <= {TARGET:g} s: {verdict(max(record), TARGET)})"
    )
    print(
        f"baseline: the same run started by hand (launcher), call to record: "
        f"median {median(manual):.3f} s  max {max(manual):.3f} s"
    )
    print(
        f"scheduler's own share (record delay minus the baseline's median): "
        f"{median(record) - median(manual):+.3f} s"
    )
    write_result(
        "ops-scheduler",
        {
            "runs": args.runs,
            "every_s": args.every,
            "launch_delay_s": {"median": median(launch), "max": max(launch)},
            "record_delay_s": {"median": median(record), "max": max(record)},
            "manual_launch_to_record_s": {"median": median(manual), "max": max(manual)},
            "target_s": TARGET,
        },
    )


if __name__ == "__main__":
    main()
