"""``lakehouse ingest FOLDER --watch``: files landed as they arrive, each once; a file
still being written is not landed half; SIGTERM and SIGINT finish the batch in progress."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lakehouse import Lakehouse
from lakehouse.ingest.landing import Stat
from lakehouse.ingest.watch import settled

SRC = str(Path(__file__).resolve().parents[1] / "src")


def csv_rows(first: int, last: int, header: bool = True) -> str:
    lines = ["id,name"] if header else []
    lines += [f"{i},name {i}" for i in range(first, last)]
    return "\n".join(lines) + "\n"


class Watcher:
    """The command in a subprocess, its output lines read as they come."""

    def __init__(self, warehouse: Path, folder: Path | str, interval: float) -> None:
        env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), "ingest"]
            + [str(folder), "-t", "bronze.events", "--watch", "--interval", str(interval)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_line(self, part: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._next_line()
            if line is not None and part in line:
                return line
        raise AssertionError(f"no line with {part!r} in {''.join(self.seen)}")

    def wait_for_all(self, parts: list[str], timeout: float = 60) -> None:
        """Until the output so far holds each of ``parts`` (on any lines)."""
        deadline = time.monotonic() + timeout
        while not all(part in "".join(self.seen) for part in parts):
            assert time.monotonic() < deadline, f"not all of {parts} in {''.join(self.seen)}"
            self._next_line()

    def _next_line(self) -> str | None:
        try:
            line = self.lines.get(timeout=0.1)
        except queue.Empty:
            assert self.proc.poll() is None, "".join(self.seen)
            return None
        self.seen.append(line)
        return line

    def stop(self, signum: int) -> str:
        self.proc.send_signal(signum)
        self.proc.wait(timeout=120)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def rows(warehouse: Path) -> int:
    try:
        return int(Lakehouse(warehouse).sql("SELECT count(*) FROM bronze.events").scalar())
    except Exception:  # no table yet
        return 0


def until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_watch_lands_each_file_once_as_it_arrives(tmp_path):
    folder, warehouse = tmp_path / "landing", tmp_path / "w"
    folder.mkdir()
    (folder / "a.csv").write_text(csv_rows(0, 100))  # there before the watch starts
    Lakehouse(warehouse)
    watcher = Watcher(warehouse, folder, interval=1.0)
    try:
        until(lambda: rows(warehouse) == 100, "the first file")
        # Renamed into the folder from a name the watch leaves alone.
        (folder / ".b.csv.part").write_text(csv_rows(100, 200))
        os.rename(folder / ".b.csv.part", folder / "b.csv")
        (folder / "a-copy.csv").write_text(csv_rows(0, 100))  # a's content again
        until(lambda: rows(warehouse) == 200, "the renamed file")

        # Written slowly: the first part, then (once a look has seen it changing) the rest.
        slow = folder / "slow.csv"
        with open(slow, "w") as f:
            f.write(csv_rows(200, 250))
        watcher.wait_for_line("slow.csv to settle")
        assert rows(warehouse) == 200
        with open(slow, "a") as f:
            f.write(csv_rows(250, 300, header=False))
        until(lambda: rows(warehouse) == 300, "the slow file, whole")

        # A batch of many files appears at once (a folder renamed in); SIGTERM once the
        # batch's first file is in: the batch is finished before the watch stops.
        staging = folder / ".incoming"
        staging.mkdir()
        for n in range(20):
            first = 1000 + n * 2000
            (staging / f"part-{n:02d}.csv").write_text(csv_rows(first, first + 2000))
        os.rename(staging, folder / "batch")
        until(lambda: rows(warehouse) > 300, "the batch's first file")
        output = watcher.stop(signal.SIGTERM)
    finally:
        watcher.kill()
    assert watcher.proc.returncode == 0, output
    assert "stopped:" in output and "Traceback" not in output
    lh = Lakehouse(warehouse)
    total, distinct = lh.sql("SELECT count(*), count(DISTINCT id) FROM bronze.events").rows()[0]
    assert total == distinct == 300 + 20 * 2000
    per_file = lh.sql(
        "SELECT _source, count(*) FROM bronze.events GROUP BY _source ORDER BY _source"
    ).rows()
    assert len(per_file) == 3 + 20  # a, b, slow and the batch; the copy of a skipped
    assert lh.sql("SELECT min(id), max(id) FROM bronze.events").rows() == [(0, 40999)]


def test_sigint_stops_an_idle_watch(tmp_path):
    folder, warehouse = tmp_path / "landing", tmp_path / "w"
    folder.mkdir()
    watcher = Watcher(warehouse, folder, interval=0.2)
    try:
        watcher.wait_for_line("watching")
        output = watcher.stop(signal.SIGINT)
    finally:
        watcher.kill()
    assert watcher.proc.returncode == 0 and "stopped: 0 row(s) landed" in output, output


def test_a_file_settles_when_unchanged_for_a_look_or_renamed_in():
    a, b = Path("a.csv"), Path("b.csv")
    written = Stat(10, 5, 5, 1)
    assert settled({a: written}, {}) == []
    assert settled({a: written}, {a: written}) == [a]
    assert settled({a: Stat(20, 6, 6, 1)}, {a: written}) == []
    assert settled({b: Stat(10, 5, 9, 2)}, {}) == [b]  # renamed after its last write
