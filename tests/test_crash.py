"""kill -9 in the middle of a write: the table must stay at its last committed version.

A separate process (tests/helpers/writer_proc.py) makes a large write through the real
API into a table with known committed content and is killed with SIGKILL at chosen
moments: as soon as its first data file shows up in the table folder, at random delays,
right when a finished data file appears (a breath before the commit), and during a merge.
Afterwards the table must open at the last committed version with exactly that version's
rows, by the lakehouse's SQL engine and by the format's own reader (deltalake's,
pyiceberg's) alike, and the next write, from a fresh process, must succeed. The merge is
killed on an Iceberg table too (the platform's own copy-on-write merge); the other kills
are of the write path both formats share. A table's version 0 is its creation (no rows),
so its first write is version 1; a writer killed in the middle of a new table's first write
leaves at most that empty version 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lakehouse import Lakehouse
from lakehouse.settings.model import Settings

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from writer_proc import big_table  # noqa: E402

WRITER = Path(__file__).parent / "helpers" / "writer_proc.py"
TABLE = "silver.big"
BIG = 4_000_000  # rows in a large write
TIMEOUT = 120


@dataclass(frozen=True)
class State:
    """A committed version of silver.big and the ids it holds."""

    version: int
    ids: np.ndarray

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def id_sum(self) -> int:
        return int(self.ids.sum())

    def after(self, mode: str, rows: int, start: int) -> State:
        new = np.arange(start, start + rows, dtype=np.int64)
        if mode == "overwrite":
            ids = new
        elif mode == "append":
            ids = np.concatenate([self.ids, new])
        else:
            ids = np.union1d(self.ids, new)
        return State(self.version + 1, np.sort(ids))


@pytest.fixture(params=["delta"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path, State]:
    """silver.big at version 2: created empty (0), 200,000 rows written (1), then 100,000
    appended (2); in Delta unless a test asks for another format (indirect parameter)."""
    root = tmp_path / "warehouse"
    lh = Lakehouse(root, settings=Settings(format=request.param))
    first = lh.write(TABLE, big_table(200_000, 0), mode="overwrite")
    second = lh.write(TABLE, big_table(100_000, 200_000), mode="append")
    assert (first.version, second.version) == (1, 2)
    path = root / "silver" / "big"
    assert lh.table(TABLE).format.name == request.param
    assert lh.table(TABLE).version == 2
    assert lh.table(TABLE).to_arrow(version=0).num_rows == 0
    state = State(2, np.arange(0, 300_000, dtype=np.int64))
    return root, path, state


def data_folder(path: Path) -> Path:
    """Where the table's data files go: the table's folder (Delta) or its ``data``
    folder (Iceberg)."""
    return path / "data" if (path / "metadata").is_dir() else path


def own_reader_ids(root: Path) -> np.ndarray:
    """The ids of the latest version as the format's own reader reads them."""
    lh = Lakehouse(root)
    fmt = lh.table(TABLE).format
    return fmt.scan(fmt.load(lh.storage, lh.table(TABLE).name)).column("id").to_numpy()


def start_writer(
    root: Path, mode: str, rows: int, start: int, table: str = TABLE
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(root), "big", "--table", table]
        + ["--mode", mode, "--rows", str(rows), "--start", str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def referenced(path: Path) -> set[str]:
    return {os.path.basename(f.path) for f in Lakehouse(path.parent.parent).table(TABLE).files()}


def new_data_file(path: Path, *, finished_only: bool) -> Callable[[], bool]:
    """True once a data file (or, unless ``finished_only``, its in-progress staging file,
    ``name.parquet#n``) exists that no committed version references."""
    folder = data_folder(path)
    known = {p.name for p in folder.iterdir()} if folder.exists() else set()

    def check() -> bool:
        for name in os.listdir(folder) if folder.exists() else []:
            if name in known or ".parquet" not in name:
                continue
            if finished_only and not name.endswith(".parquet"):
                continue
            return True
        return False

    return check


def write_and_kill(
    proc: subprocess.Popen[str],
    *,
    when: Callable[[], bool] | None = None,
    delay: float | None = None,
) -> bool:
    """Wait until the writer has its data ready, then until ``when()`` holds or ``delay``
    seconds have passed, and SIGKILL it. Returns whether it was killed while still running
    (False: it had finished its write already)."""
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert json.loads(line or "{}").get("started"), (
            f"the writer did not start: {line}\n{proc.stderr.read() if proc.stderr else ''}"
        )
        deadline = time.monotonic() + TIMEOUT
        if delay is not None:
            time.sleep(delay)
        else:
            assert when is not None
            while not when() and proc.poll() is None:
                assert time.monotonic() < deadline, "the moment to kill never came"
                time.sleep(0.0005)
        alive = proc.poll() is None
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        if alive:
            assert proc.returncode == -signal.SIGKILL
        return alive
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check_table(root: Path, path: Path, before: State, attempted: State) -> State:
    """After a kill: the table is at ``before`` or, when the commit made it in before the
    kill, at ``attempted``, never in between. Returns the state it is at."""
    version = Lakehouse(root).table(TABLE).version
    assert version in (before.version, attempted.version), (
        f"version {version} after the kill; committed before: {before.version}"
    )
    expected = before if version == before.version else attempted
    lh = Lakehouse(root)
    assert lh.table(TABLE).version == expected.version
    count, id_sum, distinct = lh.sql(
        f"SELECT count(*), coalesce(sum(id), 0), count(DISTINCT id) FROM {TABLE}"
    ).rows()[0]
    assert (count, id_sum) == (expected.count, expected.id_sum), (
        f"SQL sees {count} rows (id sum {id_sum}); version {expected.version} has "
        f"{expected.count} rows (id sum {expected.id_sum})"
    )
    assert distinct == count, "an id appears twice"
    assert lh.table(TABLE).count() == expected.count
    ids = own_reader_ids(root)
    assert len(ids) == expected.count and int(ids.sum()) == expected.id_sum, (
        f"the format's own reader reads {len(ids)} rows; "
        f"version {expected.version} has {expected.count}"
    )
    return expected


def vacuum_after_kill(root: Path, path: Path, state: State) -> State:
    """A full vacuum removes the finished data files a killed write left, which no version
    references, and none the table reads; the rows stay those of ``state``. A vacuum that
    removes files commits VACUUM START/END, no row changes: returns the state at the
    version it leaves the table at."""
    live = referenced(path)
    table = Lakehouse(root).table(TABLE)
    table.vacuum(retain_hours=0)
    finished = {n for n in os.listdir(data_folder(path)) if n.endswith(".parquet")}
    assert finished - live == set(), f"vacuum left unreferenced data files: {finished - live}"
    assert live <= finished, f"vacuum removed files the table reads: {live - finished}"
    version = table.version
    assert version >= state.version
    added = version - state.version
    operations = {h["operation"] for h in table.history(added)} if added else set()
    assert operations <= {"VACUUM START", "VACUUM END"}, operations
    after = State(version, state.ids)
    return check_table(root, path, after, after)


def fresh_write(root: Path, path: Path, state: State, start: int) -> State:
    """A following write from a fresh process succeeds and lands on top of ``state``."""
    proc = start_writer(root, "append", 1000, start)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"the write after the kill failed:\n{out}\n{err}"
    last = json.loads(out.splitlines()[-1])
    assert last.get("ok") == "append", out
    after = state.after("append", 1000, start)
    assert last["version"] == after.version, out
    lh = Lakehouse(root)
    assert lh.table(TABLE).version == after.version
    assert lh.sql(f"SELECT count(*), sum(id) FROM {TABLE}").rows()[0] == (
        after.count,
        after.id_sum,
    )
    info = lh.table(TABLE).info
    assert (info.version, info.row_count) == (after.version, after.count)
    return after


def test_kill_when_the_first_data_file_appears(table: tuple[Path, Path, State]) -> None:
    root, path, state = table
    proc = start_writer(root, "overwrite", BIG, 10_000_000)
    killed = write_and_kill(proc, when=new_data_file(path, finished_only=False))
    assert killed, "the overwrite finished before its first data file was seen"
    leftovers = {p.name for p in data_folder(path).iterdir() if ".parquet" in p.name}
    leftovers -= referenced(path)
    assert leftovers, "the kill was meant to leave an uncommitted data file behind"
    state = check_table(root, path, state, state.after("overwrite", BIG, 10_000_000))
    state = vacuum_after_kill(root, path, state)
    fresh_write(root, path, state, 50_000_000)


def test_kill_at_a_random_moment(table: tuple[Path, Path, State]) -> None:
    root, path, state = table
    delay = random.uniform(0.0, 0.4)
    start = 10_000_000
    proc = start_writer(root, "overwrite", BIG, start)
    killed = write_and_kill(proc, delay=delay)
    assert killed, f"the overwrite finished within {delay:.3f} s of starting"
    state = check_table(root, path, state, state.after("overwrite", BIG, start))
    fresh_write(root, path, state, 50_000_000)


def test_kill_right_before_the_commit(table: tuple[Path, Path, State]) -> None:
    """The finished data file is on disk, the commit is a moment away: killed there, the
    table is either untouched or has the whole append."""
    root, path, state = table
    start = 10_000_000
    proc = start_writer(root, "append", BIG, start)
    write_and_kill(proc, when=new_data_file(path, finished_only=True))
    before = state
    state = check_table(root, path, state, state.after("append", BIG, start))
    if state.version == before.version:
        finished = {n for n in os.listdir(data_folder(path)) if n.endswith(".parquet")}
        finished -= referenced(path)
        assert finished, "killed before its commit, the append left no finished data file"
    state = vacuum_after_kill(root, path, state)
    fresh_write(root, path, state, 50_000_000)


@pytest.mark.parametrize("table", ["delta", "iceberg"], indirect=True)
def test_kill_during_a_merge(table: tuple[Path, Path, State]) -> None:
    root, path, state = table
    # 1M ids from 250,000: 50,000 update existing rows, the rest are new.
    start, rows = 250_000, 1_000_000
    proc = start_writer(root, "merge", rows, start)
    killed = write_and_kill(proc, when=new_data_file(path, finished_only=False))
    assert killed, "the merge finished before its first data file was seen"
    before = state
    state = check_table(root, path, state, state.after("merge", rows, start))
    # The rows from `start` on hold either all the values they had or all the merge's.
    if state.version == before.version:
        expected = big_table(100_000, 200_000).slice(50_000)
    else:
        expected = big_table(rows, start)
    values = Lakehouse(root).sql(
        f"SELECT id, value, weight FROM {TABLE} WHERE id >= {start} ORDER BY id"
    )
    assert values.to_arrow().equals(expected)
    fresh_write(root, path, state, 50_000_000)


def test_kill_during_the_first_write_of_a_new_table(tmp_path: Path) -> None:
    """The first write creates the table (version 0, no rows) and then writes its data as
    version 1. Killed in between, the table exists at version 0 with no rows, never with
    part of the data; the next write is version 1."""
    root = tmp_path / "warehouse"
    Lakehouse(root).write("silver.other", [{"x": 1}])  # the warehouse exists, not silver.big
    path = root / "silver" / "big"
    start = 10_000_000
    proc = start_writer(root, "overwrite", BIG, start)

    def data_file() -> bool:
        # The creation writes no data file: any data file is the first write's, after it.
        return path.exists() and any(".parquet" in n for n in os.listdir(path))

    killed = write_and_kill(proc, when=data_file)
    assert killed, "the first write finished before its first data file was seen"
    empty = State(0, np.array([], dtype=np.int64))
    state = check_table(root, path, empty, empty.after("overwrite", BIG, start))
    assert state.version == 0, "the first write was killed before it could commit its data"
    info = Lakehouse(root).table(TABLE).info
    assert (info.version, info.row_count, info.num_files) == (0, 0, 0)
    fresh_write(root, path, state, 50_000_000)
