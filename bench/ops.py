"""The operations targets, each part in a process of its own, one after the other:

- ``metrics``: ``GET /metrics`` with 100 tables, p99 <= 100 ms (bench/ops_metrics.py);
- ``health``: the health report for 100 tables <= 1 s (bench/ops_health.py);
- ``scheduler``: a scheduled run starts within 1 s of its due time (bench/ops_scheduler.py);
- ``maintenance``: after 500 small appends and ``lakehouse maintain``, query time within
  1.2x of a freshly compacted table (bench/ops_maintenance.py).

Usage: python bench/ops.py [--part metrics|health|scheduler|maintenance|all]
Each part prints its figure next to the baseline it measures in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PARTS = ("metrics", "health", "scheduler", "maintenance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all")
    args = parser.parse_args()
    failed = []
    for part in PARTS if args.part == "all" else (args.part,):
        print(f"== {part}", flush=True)
        script = Path(__file__).with_name(f"ops_{part}.py")
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(part)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
