"""A writer process for the concurrency and crash tests: it writes through the real
``Lakehouse`` API, the way a separate job or user would.

    python writer_proc.py WAREHOUSE ops --plan PLAN.json --proc P --barrier DIR
    python writer_proc.py WAREHOUSE big --table T --mode MODE --rows N --start S

``ops`` runs a plan of rounds, ``[{"table": ..., "ops": [[mode, rows, pause], ...]}, ...]``:
before round r it creates ``DIR/ready-<P>-<r>`` and waits for ``DIR/go-<r>``, so that all
the writer processes start each round at the same moment; then it writes each op's rows
to the round's table with ``mode`` (``append``, ``overwrite``, or ``merge`` keyed on
column ``k``), sleeping ``pause`` seconds before it.

``big`` makes one large write (``--mode`` overwrite, append or merge on ``id``) of
``--rows`` rows ``id, value, weight`` with ids from ``--start``. It prints
``{"started": true}`` once the data is built, just before the write begins.

Each committed write prints a JSON line ``{"ok": mode, "round": r, "n": i, "version": v}``,
``v`` being the version its own commit made (``WriteResult.version``). Version 0 of a table
is its empty creation, so the first write into a new table reports 1 (or later, if other
writers got in first); no write ever reports a creation commit.
New tables are made in the format ``LAKEHOUSE_FORMAT`` names (Delta by default).
A failure prints ``{"error": <class name>, "round": r, "message": ...}`` and exits with 3 for
``ConcurrentWriteError``, 4 for anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pyarrow as pa

from lakehouse import ConcurrentWriteError, Lakehouse
from lakehouse.settings.model import Settings


def emit(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def wait_for_barrier(folder: Path, proc: int, round_: int) -> None:
    (folder / f"ready-{proc}-{round_}").touch()
    go = folder / f"go-{round_}"
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"barrier: no go signal for round {round_} within 120 s")
        time.sleep(0.001)


def big_table(rows: int, start: int) -> pa.Table:
    """Rows ``id, value, weight`` with ids ``start .. start+rows-1``; random values make the
    parquet data large, so the write takes a while."""
    rng = np.random.default_rng(start)
    ids = np.arange(start, start + rows, dtype=np.int64)
    return pa.table({"id": ids, "value": rng.random(rows), "weight": rng.random(rows)})


CURRENT_ROUND = [0]


def run_plan(lh: Lakehouse, plan: list[dict], proc: int, barrier: Path) -> None:
    for round_, step in enumerate(plan):
        CURRENT_ROUND[0] = round_
        wait_for_barrier(barrier, proc, round_)
        for n, (mode, rows, pause) in enumerate(step["ops"]):
            if pause:
                time.sleep(pause)
            keys = ["k"] if mode == "merge" else None
            result = lh.write(step["table"], rows, mode=mode, keys=keys)
            emit(ok=mode, round=round_, n=n, version=result.version)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("warehouse")
    parser.add_argument("action", choices=["ops", "big"])
    parser.add_argument("--plan")
    parser.add_argument("--proc", type=int, default=0)
    parser.add_argument("--barrier")
    parser.add_argument("--table")
    parser.add_argument("--mode", default="overwrite")
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--start", type=int, default=0)
    args = parser.parse_args()

    # New tables in the format the test names (existing ones keep theirs).
    table_format = "iceberg" if os.environ.get("LAKEHOUSE_FORMAT") == "iceberg" else "delta"
    lh = Lakehouse(args.warehouse, settings=Settings(format=table_format))
    try:
        if args.action == "ops":
            plan = json.loads(Path(args.plan).read_text())
            run_plan(lh, plan, args.proc, Path(args.barrier))
        else:
            data = big_table(args.rows, args.start)
            emit(started=True)
            keys = ["id"] if args.mode == "merge" else None
            result = lh.write(args.table, data, mode=args.mode, keys=keys)
            emit(ok=args.mode, round=0, n=0, version=result.version)
    except ConcurrentWriteError as exc:
        emit(error=type(exc).__name__, round=CURRENT_ROUND[0], message=str(exc))
        return 3
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        emit(
            error=type(exc).__name__,
            round=CURRENT_ROUND[0],
            message=str(exc),
            traceback=traceback.format_exc(),
        )
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
