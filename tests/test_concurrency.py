"""Several processes writing one table at the same moment, through the real API.

Four writer processes (tests/helpers/writer_proc.py) run a plan of rounds; a barrier file
releases all of them at the same moment at the start of each round, and each round writes
its own table. Afterwards each table must be what running the same writes one after
another, in some order, gives.

Version 0 of every table is its creation: an empty commit whose commit record says
``"lakehouse.operation": "create"``. When writers race to create a table, delta-rs may
commit a losing creation as a later version as well (still without rows), so the tests count
the creation commits instead of assuming one.

The races run once per table format: versions, commits and rows are read through the
platform (each format's history and time travel) and the format's own reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.settings.model import Settings
from lakehouse.tables.table import Table

WRITER = Path(__file__).parent / "helpers" / "writer_proc.py"
TIMEOUT = 240
PROCS = 4

Op = tuple[str, list[dict[str, Any]], float]  # (mode, rows, pause before it)


@dataclass
class Outcome:
    proc: int
    returncode: int
    lines: list[dict[str, Any]]
    stderr: str

    @property
    def committed(self) -> int:
        return sum(1 for line in self.lines if "ok" in line)

    @property
    def versions(self) -> list[int]:
        return [line["version"] for line in self.lines if "ok" in line]

    @property
    def error(self) -> dict[str, Any] | None:
        return next((line for line in self.lines if "error" in line), None)

    def in_round(self, round_: int) -> Outcome:
        lines = [line for line in self.lines if line.get("round") == round_]
        return Outcome(self.proc, self.returncode, lines, self.stderr)

    def describe(self) -> str:
        return f"proc {self.proc} exited {self.returncode}: {self.lines}\n{self.stderr[-3000:]}"


@dataclass
class Scenario:
    table: str
    base: list[dict[str, Any]] | None  # rows written before the round; None: no table
    ops: dict[int, list[Op]]  # per process

    @property
    def path_parts(self) -> tuple[str, str]:
        layer, name = self.table.split(".")
        return layer, name


def run_rounds(
    root: Path, scenarios: list[Scenario], tmp: Path, table_format: str
) -> dict[int, Outcome]:
    """Start the writer processes, release them together at each round, wait for all."""
    barrier = tmp / f"barrier-{uuid.uuid4().hex[:8]}"
    barrier.mkdir()
    procs: dict[int, subprocess.Popen[str]] = {}
    try:
        for proc in range(PROCS):
            plan = [{"table": s.table, "ops": s.ops.get(proc, [])} for s in scenarios]
            plan_file = tmp / f"plan-{proc}.json"
            plan_file.write_text(json.dumps(plan))
            procs[proc] = subprocess.Popen(
                [sys.executable, str(WRITER), str(root), "ops", "--plan", str(plan_file)]
                + ["--proc", str(proc), "--barrier", str(barrier)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "LAKEHOUSE_FORMAT": table_format},
            )
        deadline = time.monotonic() + TIMEOUT
        for round_ in range(len(scenarios)):
            # A writer that gave up (it must say why; see check_outcomes) is not waited for.
            while not all(
                (barrier / f"ready-{proc}-{round_}").exists() or p.poll() is not None
                for proc, p in procs.items()
            ):
                assert time.monotonic() < deadline, f"the writers did not get to round {round_}"
                time.sleep(0.002)
            (barrier / f"go-{round_}").touch()
        outcomes = {}
        for proc, p in procs.items():
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            outcomes[proc] = Outcome(proc, p.returncode, lines, err)
        return outcomes
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


# -- the scenarios -------------------------------------------------------------------------
BATCHES, ROWS = 25, 10


def batch(proc: int, i: int) -> list[dict[str, int]]:
    return [{"proc": proc, "i": i, "j": j} for j in range(ROWS)]


def merge(pairs: list[tuple[int, int]]) -> Op:
    return ("merge", [{"k": k, "v": v} for k, v in pairs], 0.0)


DISJOINT_ROUNDS = 4
NEW_TABLE_RACES = 3

SCENARIOS: dict[str, Scenario] = {
    # 4 processes x 25 appends of 10 rows into a table that does not exist yet.
    "append_race": Scenario(
        "silver.events",
        None,
        {p: [("append", batch(p, i), 0.0) for i in range(BATCHES)] for p in range(PROCS)},
    ),
    # Process p updates keys 10p..10p+9 and inserts one new key per upsert; keys 30..39
    # are nobody's.
    "disjoint": Scenario(
        "silver.kv_disjoint",
        [{"k": k, "v": -1} for k in range(40)],
        {
            p: [
                merge([(10 * p + j, 1000 * p + n) for j in range(10)] + [(100 + 10 * p + n, n)])
                for n in range(DISJOINT_ROUNDS)
            ]
            for p in range(3)
        },
    ),
    # Overlapping ranges of existing keys, and new keys 200..202 that everyone inserts.
    "overlap": Scenario(
        "silver.kv_overlap",
        [{"k": k, "v": -1} for k in range(10)],
        {
            p: [
                merge(
                    [(k, 1000 * p + n) for k in range(5 * p, 5 * p + 15)]
                    + [(200 + j, 1000 * p + n) for j in range(3)]
                )
                for n in range(5)
            ]
            for p in range(3)
        },
    ),
    # One process overwrites three times while three others append.
    "overwrite_append": Scenario(
        "silver.feed",
        [{"proc": -1, "i": 0, "j": j} for j in range(ROWS)],
        {
            0: [("overwrite", batch(0, n), 0.2 if n else 0.0) for n in range(3)],
            **{p: [("append", batch(p, n), 0.0) for n in range(10)] for p in (1, 2, 3)},
        },
    ),
    # The first upserts of a new table race to create it (several times, for the writers
    # to meet in all the ways).
    **{
        f"new_table_{r}": Scenario(
            f"silver.kv_new_{r}",
            None,
            {
                p: [merge([(k, 1000 * p + n) for k in range(10)]) for n in range(2)]
                for p in range(4)
            },
        )
        for r in range(NEW_TABLE_RACES)
    },
}
ROUND = {name: i for i, name in enumerate(SCENARIOS)}


@dataclass
class Race:
    root: Path
    outcomes: dict[int, Outcome]

    def of(self, name: str) -> tuple[Scenario, Path, dict[int, Outcome]]:
        scenario = SCENARIOS[name]
        layer, table = scenario.path_parts
        outcomes = {p: o.in_round(ROUND[name]) for p, o in self.outcomes.items()}
        return scenario, self.root / layer / table, outcomes


@pytest.fixture(scope="module", params=["delta", "iceberg"])
def race(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Race:
    tmp = tmp_path_factory.mktemp(f"race-{request.param}")
    root = tmp / "warehouse"
    lh = Lakehouse(root, settings=Settings(format=request.param))
    for scenario in SCENARIOS.values():
        if scenario.base is not None:
            lh.write(scenario.table, scenario.base, mode="overwrite")
        else:
            assert not (root / "/".join(scenario.path_parts)).exists()
    race = Race(root, run_rounds(root, list(SCENARIOS.values()), tmp, request.param))
    for scenario in SCENARIOS.values():
        assert lh.table(scenario.table).format.name == request.param
    return race


# -- checks --------------------------------------------------------------------------------
def check_outcomes(outcomes: dict[int, Outcome], table: str) -> None:
    """Writers either succeed, or give up with a clear ConcurrentWriteError; nothing else."""
    for outcome in outcomes.values():
        error = outcome.error
        if error is None:
            continue
        assert outcome.returncode == 3, outcome.describe()
        assert error["error"] == "ConcurrentWriteError", outcome.describe()
        assert table in error["message"] and "concurrent" in error["message"], error
        assert "hint: retry" in error["message"], error


def rows_of(table: pa.Table, columns: list[str]) -> list[tuple]:
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


_READERS: dict[Path, Lakehouse] = {}


def table_at(path: Path) -> Table:
    """The table at ``path``, through one reader per warehouse (after the writers)."""
    root = path.parent.parent
    if root not in _READERS:
        _READERS[root] = Lakehouse(root)
    return _READERS[root].table(f"{path.parent.name}.{path.name}")


def latest(path: Path) -> int:
    return table_at(path).version


def commits(path: Path) -> list[dict[str, Any]]:
    """The table's commits as its format records them, newest first."""
    table = table_at(path)
    return table.format.history(table.format.load(table.storage, table.name))


def operations(path: Path) -> dict[int, str | None]:
    """The lakehouse operation each version's commit records: the write's mode, or
    ``create`` for the empty commit that creates the table before its first write."""
    return {c["version"]: c.get("lakehouse.operation") for c in commits(path)}


def operation_at(path: Path, version: int) -> str | None:
    return operations(path).get(version)


def create_versions(path: Path) -> list[int]:
    return sorted(v for v, op in operations(path).items() if op == "create")


def own_reader_rows(path: Path) -> int:
    """The rows of the latest version as the format's own reader (deltalake's,
    pyiceberg's) counts them."""
    table = table_at(path)
    return table.format.scan(table.format.load(table.storage, table.name)).num_rows


def create_commits(path: Path) -> int:
    return len(create_versions(path))


def assert_creations(path: Path, racing: int) -> list[int]:
    """Version 0 creates the table; every creation commit changes no row; each of the
    ``racing`` writers that found no table created it at most once. Returns the creation
    versions."""
    versions = create_versions(path)
    assert versions[:1] == [0], f"version 0 is not the table's creation: {versions}"
    assert len(versions) <= racing, f"more creation commits than writers: {versions}"
    assert table_at(path).to_arrow(version=0).num_rows == 0
    for version in versions[1:]:
        columns = table_at(path).schema.names
        before, after = state_at(path, version - 1, columns), state_at(path, version, columns)
        assert before == after, f"creation commit {version} changes the rows"
    return versions


def assert_reported_versions(path: Path, outcomes: dict[int, Outcome], skip: set[int]) -> None:
    """Each committed write reported the version its own commit made: the reported
    versions are distinct, are exactly the table's versions other than ``skip`` (the
    creations and the base write), and each one's commit records the write's mode."""
    final = latest(path)
    ops = operations(path)
    reported = sorted(v for o in outcomes.values() for v in o.versions)
    expected = [v for v in range(final + 1) if v not in skip]
    assert reported == expected, (
        f"versions reported by two writes: {sorted({v for v in reported if reported.count(v) > 1})}"
        f"; by none: {sorted(set(expected) - set(reported))}; not writes: "
        f"{sorted(set(reported) - set(expected))}"
    )
    for outcome in outcomes.values():
        for line in outcome.lines:
            if "ok" in line:
                assert ops.get(line["version"]) == line["ok"], (
                    f"process {outcome.proc} reported {line}; that version's commit is a "
                    f"{ops.get(line['version'])!r}"
                )


_STATES: dict[tuple[Path, int, tuple[str, ...]], list[tuple]] = {}


def state_at(path: Path, version: int, columns: list[str]) -> list[tuple]:
    """The rows of a version (read once: a version never changes)."""
    key = (path, version, tuple(columns))
    if key not in _STATES:
        _STATES[key] = rows_of(table_at(path).to_arrow(version=version), columns)
    return _STATES[key]


def apply(state: list[tuple], op: Op, columns: list[str]) -> list[tuple]:
    mode, rows, _ = op
    new = [tuple(r[c] for c in columns) for r in rows]
    if mode == "append":
        return sorted(state + new)
    if mode == "overwrite":
        return sorted(new)
    assert mode == "merge" and columns[0] == "k"
    latest = {row[0]: row for row in new}
    existing = {row[0] for row in state}
    kept = [row for row in state if row[0] not in latest]
    updated = [latest[row[0]] for row in state if row[0] in latest]
    inserted = [row for k, row in latest.items() if k not in existing]
    return sorted(kept + updated + inserted)


def assert_serial(
    path: Path,
    columns: list[str],
    base: list[dict[str, Any]] | None,
    ops: dict[int, list[Op]],
    outcomes: dict[int, Outcome],
) -> list[tuple]:
    """Version 0 creates the table (no rows); each version after the base is one process's
    next write applied to the version before it, or a creation commit that changes no row;
    every reported write is in the log at the version it reported, no failed one is.
    Returns the final state."""
    final = latest(path)
    creations = assert_creations(path, racing=len(ops) if base is None else 1)
    done = dict.fromkeys(ops, 0)
    landed: dict[int, list[int]] = {p: [] for p in ops}
    ambiguous = False
    skip = set(creations)
    state: list[tuple] = []
    expected_base = sorted(tuple(r[c] for c in columns) for r in base or [])
    waiting_for_base = base is not None
    for version in range(final + 1):
        target = state_at(path, version, columns)
        if version in creations:
            # A losing creation may land after other commits: it must not touch the rows.
            assert target == state, f"creation commit {version} changes the rows"
            continue
        if waiting_for_base:
            assert version == 1, f"the base write is version {version}, not 1"
            assert target == expected_base, f"version {version} should be the base rows"
            waiting_for_base = False
            skip.add(version)
            state = target
            continue
        match = [
            p
            for p in ops
            if done[p] < len(ops[p]) and apply(state, ops[p][done[p]], columns) == target
        ]
        assert match, (
            f"version {version} ({len(target)} rows) is not any writer's next write applied to "
            f"version {version - 1} ({len(state)} rows); writes done per process: {done}; "
            f"rows at {version}: {target[:40]}"
        )
        ambiguous = ambiguous or len(match) > 1
        done[match[0]] += 1
        landed[match[0]].append(version)
        state = target
    assert not waiting_for_base, "the base write is not in the log"
    for p, outcome in outcomes.items():
        assert done.get(p, 0) == outcome.committed, (
            f"process {p} reported {outcome.committed} committed writes, the log holds "
            f"{done.get(p, 0)}\n{outcome.describe()}"
        )
        if not ambiguous:  # every version is one known write: it is the one reported
            assert outcome.versions == landed.get(p, []), (
                f"process {p} reported versions {outcome.versions}; its writes are at "
                f"{landed.get(p, [])}"
            )
    assert_reported_versions(path, outcomes, skip)
    return state


def assert_catalog_current(root: Path, table: str, path: Path) -> None:
    lh = Lakehouse(root)
    info = lh.table(table).info
    assert info.version == latest(path)
    assert info.row_count == own_reader_rows(path)
    assert info.num_files == len(lh.table(table).files())
    assert [t.name for t in lh.tables()].count(table) == 1


# -- 4 processes x 25 appends racing to create a table -----------------------------------
def test_append_race_keeps_every_row_once(race: Race) -> None:
    scenario, path, outcomes = race.of("append_race")
    for outcome in outcomes.values():
        assert outcome.committed == BATCHES and outcome.error is None, outcome.describe()
    lh = Lakehouse(race.root)
    table = scenario.table
    assert lh.sql(f"SELECT count(*) FROM {table}").scalar() == PROCS * BATCHES * ROWS
    assert lh.sql(f"SELECT count(DISTINCT (proc, i, j)) FROM {table}").scalar() == 1000
    batches = lh.sql(
        f"SELECT proc, i, count(*) AS n FROM {table} GROUP BY proc, i ORDER BY proc, i"
    ).rows()
    assert batches == [(p, i, ROWS) for p in range(PROCS) for i in range(BATCHES)]
    assert own_reader_rows(path) == 1000


def rows_added_at(path: Path, version: int) -> list[tuple]:
    """The ``proc, i, j`` rows a commit adds; it must remove no row."""
    columns = ["proc", "i", "j"]
    after = Counter(state_at(path, version, columns))
    if version == 0:
        return sorted(after.elements())
    before = Counter(state_at(path, version - 1, columns))
    assert not before - after, f"version {version} removes rows"
    return sorted((after - before).elements())


def test_append_race_log_has_one_write_commit_per_append(race: Race) -> None:
    _, path, outcomes = race.of("append_race")
    history = commits(path)
    creations = assert_creations(path, racing=PROCS)
    final = latest(path)
    assert final == PROCS * BATCHES + len(creations) - 1
    assert len(history) == PROCS * BATCHES + len(creations)
    writes = [h for h in history if h.get("lakehouse.operation") != "create"]
    assert all(h["operation"] == "WRITE" for h in writes), {h["operation"] for h in writes}
    # Every other commit adds exactly one whole batch of one process, in each process's order.
    done = dict.fromkeys(range(PROCS), 0)
    ops = operations(path)
    for version in range(final + 1):
        rows = rows_added_at(path, version)
        if version in creations:
            assert rows == [], f"creation commit {version} adds rows"
            continue
        assert ops.get(version) == "append", version
        proc = rows[0][0] if rows else None
        assert proc is not None and rows == [(proc, done[proc], j) for j in range(ROWS)], (
            f"version {version} adds {rows}, not one whole batch; batches so far: {done}"
        )
        done[proc] += 1
    assert done == dict.fromkeys(range(PROCS), BATCHES)


def test_append_race_catalog_figures(race: Race) -> None:
    scenario, path, _ = race.of("append_race")
    info = Lakehouse(race.root).table(scenario.table).info
    assert info.row_count == PROCS * BATCHES * ROWS
    assert info.version == PROCS * BATCHES + create_commits(path) - 1
    assert_catalog_current(race.root, scenario.table, path)


def test_append_race_each_write_reports_its_own_version(race: Race) -> None:
    """WriteResult.version is the version the write committed, so that
    ``VERSION AS OF result.version`` shows the table right after that write."""
    _, path, outcomes = race.of("append_race")
    creations = set(assert_creations(path, racing=PROCS))
    assert_reported_versions(path, outcomes, skip=creations)
    # The commit at each reported version adds exactly that write's batch.
    for outcome in outcomes.values():
        for line in outcome.lines:
            if "ok" in line:
                added = rows_added_at(path, line["version"])
                assert added == [(outcome.proc, line["n"], j) for j in range(ROWS)], (
                    f"process {outcome.proc} reported batch {line['n']} at version "
                    f"{line['version']}, which adds {added}"
                )


# -- concurrent merges -------------------------------------------------------------------
KV_COLUMNS = ["k", "v"]


def check_merges(race: Race, name: str) -> tuple[list[tuple], dict[int, Outcome]]:
    scenario, path, outcomes = race.of(name)
    check_outcomes(outcomes, scenario.table)
    final = assert_serial(path, KV_COLUMNS, scenario.base, scenario.ops, outcomes)
    keys = [k for k, _ in final]
    assert len(keys) == len(set(keys)), f"duplicate keys after concurrent merges: {final}"
    lh = Lakehouse(race.root)
    assert lh.sql(f"SELECT k, v FROM {scenario.table} ORDER BY k").rows() == final
    assert_catalog_current(race.root, scenario.table, path)
    return final, outcomes


def test_concurrent_merges_on_disjoint_keys(race: Race) -> None:
    final, outcomes = check_merges(race, "disjoint")
    scenario = SCENARIOS["disjoint"]
    expected = {r["k"]: r["v"] for r in scenario.base or []}
    for p, outcome in outcomes.items():
        for _, rows, _ in scenario.ops.get(p, [])[: outcome.committed]:
            expected.update({r["k"]: r["v"] for r in rows})
    assert final == sorted(expected.items())
    # Disjoint upserts never truly conflict: with its retries every one of them lands.
    for p in scenario.ops:
        assert outcomes[p].committed == DISJOINT_ROUNDS, outcomes[p].describe()


def test_concurrent_merges_on_overlapping_keys(race: Race) -> None:
    final, _ = check_merges(race, "overlap")
    assert [k for k, _ in final] == list(range(25)) + [200, 201, 202]


def test_concurrent_merges_into_a_new_table(race: Race) -> None:
    """The first upserts race to create the table: still one row per key."""
    bad = []
    for r in range(NEW_TABLE_RACES):
        scenario, path, outcomes = race.of(f"new_table_{r}")
        check_outcomes(outcomes, scenario.table)
        keys = [k for k, _ in state_at(path, latest(path), KV_COLUMNS)]
        if keys != list(range(10)):
            made = [h["operation"] for h in commits(path)][::-1]
            bad.append(f"{scenario.table}: keys {keys}, commits {made}")
            continue
        assert_serial(path, KV_COLUMNS, None, scenario.ops, outcomes)
        assert_catalog_current(race.root, scenario.table, path)
    assert not bad, "duplicate keys after racing first upserts:\n" + "\n".join(bad)


# -- overwrite against append ------------------------------------------------------------
def test_concurrent_overwrite_and_append(race: Race) -> None:
    """Delta's write-serializable isolation: a blind append that commits while an overwrite
    is in flight may be ordered after the overwrite, so the log order is not the serial
    order. The content must still be that of some serial order: the last overwrite's rows
    plus, of each appending process, its latest appends (a suffix of its batches), every
    batch whole."""
    scenario, path, outcomes = race.of("overwrite_append")
    check_outcomes(outcomes, scenario.table)
    final_version = latest(path)
    writes = sum(o.committed for o in outcomes.values())
    # Version 0 creates the table, version 1 is the base write, then one per write.
    assert assert_creations(path, racing=1) == [0]
    assert operation_at(path, 1) == "overwrite"
    assert final_version == 1 + writes
    assert_reported_versions(path, outcomes, skip={0, 1})
    columns = ["proc", "i", "j"]
    for version in range(final_version + 1):
        state = state_at(path, version, columns)
        assert len(state) == len(set(state)), f"version {version} has a row twice"
        batches = {(p, i) for p, i, _ in state}
        assert len(state) == ROWS * len(batches), f"version {version} holds a partial batch"

    final = state_at(path, final_version, columns)
    overwrites = outcomes[0].committed
    assert overwrites >= 1, outcomes[0].describe()
    last = {(0, overwrites - 1, j) for j in range(ROWS)}
    assert last <= set(final), "the last overwrite's rows are missing"
    rest = set(final) - last
    assert all(p in (1, 2, 3) for p, _, _ in rest), f"rows an overwrite should have removed: {rest}"
    for p in (1, 2, 3):
        kept = sorted({i for q, i, _ in rest if q == p})
        committed = outcomes[p].committed
        assert kept == list(range(committed - len(kept), committed)), (
            f"process {p}: the appends that survived are not its latest ones: {kept}"
        )
    lh = Lakehouse(race.root)
    assert sorted(lh.sql(f"SELECT proc, i, j FROM {scenario.table}").rows()) == final
    assert_catalog_current(race.root, scenario.table, path)
