"""The real-time path as separate processes, for end-to-end tests: a small demo warehouse
built by ``lakehouse demo``, ``lakehouse stream`` into ``bronze.user_events`` with its
realtime windows, other commands of the CLI, the serving store's status, and the demo's
user events sent to a topic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lakehouse.demo.live_events import UserEvents
from tests.helpers.kafka import send

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    """The environment of a child process: the test's, without a LAKEHOUSE_ setting."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    out.update({"NO_COLOR": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    return out


def cli_command(warehouse: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), *args]


def cli(warehouse: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(warehouse, *args),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def build_demo(warehouse: Path, events: int = 300) -> None:
    """A fresh demo warehouse: its landing files and the demo pipeline run over them."""
    done = cli(warehouse, "demo", "--events", str(events))
    assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def child(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process writing to ``log``; stopped (SIGTERM, then SIGKILL) at the end
    whatever happened."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> int:
    """Stop ``proc`` as Ctrl-C would (SIGTERM), killing it if it does not end; its code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def stream_command(warehouse: Path, bootstrap: str, topic: str) -> list[str]:
    """``lakehouse stream`` of the demo's user events: bronze and the realtime windows."""
    return cli_command(
        warehouse,
        "stream",
        "--topic",
        topic,
        "--table",
        "bronze.user_events",
        "--realtime",
        "--bootstrap",
        bootstrap,
        "--interval",
        "0.3",
    )


def send_user_events(
    bootstrap: str, topic: str, source: UserEvents, n: int
) -> list[dict[str, Any]]:
    """``n`` of the demo's live user events, made now, sent keyed by user; the events."""
    made = source.make(n)
    send(
        bootstrap,
        topic,
        [json.dumps(e).encode() for e in made],
        keys=[str(e["user_id"]).encode() for e in made],
    )
    return made


def serving_status(warehouse: Path) -> list[dict[str, Any]]:
    """``lakehouse serving status --format json``."""
    done = cli(warehouse, "serving", "status", "--format", "json", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.2) -> Any:
    """Poll ``check`` until it gives something true (returned), or fail after ``timeout``
    seconds with the last value it gave."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")
