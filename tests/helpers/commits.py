"""Waiting for a process to commit, so a crash test kills it in the middle of its work
whatever the machine's speed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def commits(warehouse: Path) -> int:
    """The commits of every table of the warehouse: Delta commit files, Iceberg metadata
    files (one a commit)."""
    delta = sum(1 for _ in warehouse.glob("*/*/_delta_log/*.json"))
    return delta + sum(1 for _ in warehouse.glob("*/*/metadata/*.metadata.json"))


def kill_after_commits(
    proc: subprocess.Popen, warehouse: Path, more: int, timeout: float = 120
) -> bool:
    """SIGKILL ``proc`` as soon as the warehouse holds ``more`` commits beyond those it
    had when called; whether it was still running then (False: it finished first)."""
    target = commits(warehouse) + more
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if commits(warehouse) >= target:
            proc.kill()
            proc.wait(timeout=60)
            return True
        if time.monotonic() > deadline:
            raise AssertionError(f"no {more} commits within {timeout:.0f} s")
        time.sleep(0.005)
    return False
