"""Small helpers shared by the benchmark scripts."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def ratio(candidate: float, baseline: float) -> float:
    return candidate / baseline if baseline > 0 else float("nan")


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> float:
    """1-minute load average; above ~0.5 per core something else competes for the CPU."""
    return os.getloadavg()[0]


def warn_if_busy(label: str) -> float:
    load = load_average()
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load:.2f} {label}; figures may be noisy", flush=True)
    return load


def peak_rss_bytes() -> int:
    """This process's own peak RSS.

    VmHWM belongs to the address space, which exec replaces. ru_maxrss is not used on
    Linux because a child inherits the parent's high-water mark across fork and exec,
    so a worker would report at least its parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def environment() -> dict[str, Any]:
    """What a reader needs to judge whether two result files are comparable."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {
            d: _version(d) for d in ("lakehouse", "deltalake", "duckdb", "pyarrow", "polars")
        },
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    body = {
        "benchmark": name,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **payload,
        "environment": environment(),
    }
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


# The end of a wrk script whose figures ``wrk_figures`` reads.
WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %f %f %f\\n", summary.requests,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def wrk_figures(stdout: str) -> tuple[int, int, float, float, float]:
    """Requests, errors, p50 and p99 latency (ms) and duration (s) of a wrk run whose
    script's ``done`` wrote the RESULT line."""
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT"))
    parts = line.split()[1:]
    requests, *errors = (int(x) for x in parts[:6])
    p50_us, p99_us, duration_us = (float(x) for x in parts[6:])
    return requests, sum(errors), p50_us / 1000, p99_us / 1000, duration_us / 1e6


def start_lakehouse_server(
    args: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.Popen[str], str]:
    """``lakehouse ARGS`` (a ``serve --port 0 ...`` command) started, and its base URL once
    it prints it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"(http://[^/\s]+)/\?token=", line)
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the server did not start")
