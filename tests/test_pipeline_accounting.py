"""Every row accounted for: a run or a replay counts each row it read as written, dropped
(by expectation), quarantined or de-duplicated; a restore keeps a table and its quarantine
in step; values rescued in bronze are counted and can be checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse import Lakehouse
from lakehouse.pipeline import load_pipeline, run_pipeline
from lakehouse.pipeline.replay import replay_quarantine
from tests.test_pipeline import SILVER, events, table_rows, write_files
from tests.test_pipeline import simple as simple  # noqa: F401 - the fixture

KILLED_AT = Path(__file__).parent / "helpers" / "killed_at.py"
FIGURES = "rows_read, rows_written, rows_dropped, rows_quarantined, rows_deduplicated, dropped_by"
# The fix of the replay tests: rows without a user are kept after all; a new quarantine
# check (n < 3) and the drop check known_kind still apply to the replayed rows.
FIXED = (
    textwrap.dedent(SILVER)
    .replace("action: quarantine", "action: warn")
    .replace(
        "--   - {name: positive",
        '--   - {name: small, expect: "n < 3", action: quarantine}\n--   - {name: positive',
    )
)


def accounted(row: dict) -> None:
    """The invariant of every dataset run over a row-wise query."""
    assert row["rows_read"] == (
        row["rows_written"] + row["rows_dropped"] + row["rows_quarantined"]
        + row["rows_deduplicated"]
    ), row
    assert sum(json.loads(row["dropped_by"]).values()) == row["rows_dropped"], row


def figures(lh: Lakehouse, run_id: str) -> dict:
    return lh.sql(
        f"SELECT {FIGURES} FROM system.dataset_runs WHERE run_id = '{run_id}'"
    ).to_dicts()[0]


def contents(lh: Lakehouse, *tables: str) -> dict[str, list]:
    return {t: table_rows(lh, t) for t in tables}


# -- replay ---------------------------------------------------------------------------------
def test_replay_accounts_for_every_quarantined_row(lh, simple):
    run_pipeline(lh, load_pipeline(simple))
    # e0 arrives again with a user: it is written, so its quarantined copy is a duplicate.
    lh.write("bronze.raw", events(0, 1).set_column(1, "user_id", pa.array([3], pa.int64())))
    run_pipeline(lh, load_pipeline(simple))
    quarantined = [r[0] for r in table_rows(lh, "silver.events_quarantine")]
    assert quarantined == ["e0", "e14", "e21", "e28", "e7"]  # no user: i % 7 == 0
    before = lh.table("silver.events").count()
    (simple / "silver" / "events.sql").write_text(FIXED)

    done = replay_quarantine(lh, load_pipeline(simple), "silver.events")
    # e21 and e28 pass; e0 is in the table already; e14 is kind c (known_kind drops it);
    # e7 has n 3 (small quarantines it).
    assert done["replayed"] == 5
    assert done["written"] == 2 and done["deduplicated"] == 1
    assert done["dropped"] == 1 and done["dropped_by"] == {"known_kind": 1}
    assert done["still_failing"] == 1
    assert lh.table("silver.events").count() == before + 2
    assert [r[0] for r in table_rows(lh, "silver.events_quarantine")] == ["e7"]
    # Recorded as a run: listed with the pipeline's runs, figures per dataset.
    runs = lh.sql("SELECT run_id, kind, status FROM system.pipeline_runs ORDER BY started_at")
    assert runs.rows()[-1] == (done["run_id"], "replay", "succeeded")
    row = figures(lh, done["run_id"])
    accounted(row)
    assert row["rows_read"] == 5 and json.loads(row["dropped_by"]) == {"known_kind": 1}


def replay_warehouse(root: Path, folder: Path) -> None:
    """A warehouse whose silver.events_quarantine holds five rows, the pipeline fixed."""
    lh = Lakehouse(root)
    lh.write("bronze.raw", events(0, 30))
    run_pipeline(lh, load_pipeline(folder))
    (folder / "silver" / "events.sql").write_text(FIXED)


def cli(root: Path, *args: str, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, str(KILLED_AT), str(kill_at), "--", "--warehouse", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
            "COLUMNS": "200",
            "NO_COLOR": "1",
            "PYTHONPATH": os.pathsep.join(sys.path),
        },
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_replay_killed_at_every_write_then_run_again(tmp_path):
    """The replay's writes, in order: its run record, the table, the quarantine, its
    figures, its final status. Killed before any of them and run again, the tables end as
    after one uninterrupted replay, with the same figures."""
    folder = write_files(tmp_path / "p", {"silver/events.sql": SILVER})
    base = tmp_path / "base"
    replay_warehouse(base, folder)
    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    lh = Lakehouse(reference)
    replay_id = replay_quarantine(lh, load_pipeline(folder), "silver.events")["run_id"]
    want = contents(lh, "silver.events", "silver.events_quarantine")
    want_figures = figures(lh, replay_id)
    accounted(want_figures)
    assert want_figures["rows_written"] and want_figures["rows_quarantined"]
    for kill_at in range(1, 6):
        root = tmp_path / f"killed{kill_at}"
        shutil.copytree(base, root)
        killed = cli(root, "replay", "silver.events", "-p", str(folder), kill_at=kill_at)
        assert killed.returncode == -9 and "killed before writing" in killed.stderr, killed
        lh = Lakehouse(root)
        again = replay_quarantine(lh, load_pipeline(folder), "silver.events")
        assert contents(lh, "silver.events", "silver.events_quarantine") == want, kill_at
        runs = lh.sql(
            "SELECT run_id, status FROM system.pipeline_runs WHERE kind = 'replay' "
            "ORDER BY started_at"
        ).rows()
        assert runs[-1] == (again["run_id"], "succeeded"), runs
        assert all(s != "running" for _, s in runs), runs
        if kill_at <= 3:  # before the quarantine's rewrite: the same replay, finished
            assert figures(lh, again["run_id"]) == want_figures, kill_at


def test_interrupted_replay_then_a_run_then_replay(tmp_path):
    """Killed between the table's write and the quarantine's, then a run quarantines new
    rows: the next replay finishes the first (its rows once, in the table) and keeps the
    run's rows in the quarantine for the next replay."""
    folder = write_files(tmp_path / "p", {"silver/events.sql": SILVER})
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    replay_warehouse(killed, folder)
    shutil.copytree(killed, reference)
    assert cli(killed, "replay", "silver.events", "-p", str(folder), kill_at=3).returncode == -9
    for root in (killed, reference):
        lh = Lakehouse(root)
        if root == reference:
            replay_quarantine(lh, load_pipeline(folder), "silver.events")
        lh.write("bronze.raw", events(100, 10))  # e103 and e107 (n 3): quarantined by small
        run_pipeline(lh, load_pipeline(folder))
        replay_quarantine(lh, load_pipeline(folder), "silver.events")
        if root == killed:
            assert "finishing" in lh.sql(
                "SELECT strategy FROM system.dataset_runs ORDER BY started_at DESC LIMIT 1"
            ).scalar()
            replay_quarantine(lh, load_pipeline(folder), "silver.events")
    tables = ("silver.events", "silver.events_quarantine")
    want = contents(Lakehouse(reference), *tables)
    assert contents(Lakehouse(killed), *tables) == want
    ids = [r[0] for r in want["silver.events"]]
    assert len(ids) == len(set(ids))


# -- restore --------------------------------------------------------------------------------
def test_restore_takes_the_quarantine_back_with_the_table(lh, simple, tmp_path):
    """Restoring a table to an earlier version also restores its quarantine to the version
    that matches, so the next run puts every row in exactly one place: as a run over all
    the data would, whatever happened in between (a replay, or nothing)."""
    pipeline = load_pipeline(simple)
    lh.write("bronze.raw", events(0, 15))  # simple holds 0..29 already: e0..e14 twice
    run_pipeline(lh, pipeline)
    after_first = lh.table("silver.events").version
    lh.write("bronze.raw", events(30, 20))
    run_pipeline(lh, pipeline)
    reference = Lakehouse(tmp_path / "reference")
    for batch in (events(0, 30), events(0, 15), events(30, 20)):
        reference.write("bronze.raw", batch)
    run_pipeline(reference, pipeline)
    tables = ("silver.events", "silver.events_quarantine")
    want = contents(reference, *tables)
    assert contents(lh, *tables) == want

    # To the creation (no input versions): the next run recomputes everything, once.
    lh.table("silver.events").restore(0)
    assert lh.table("silver.events_quarantine").count() == 0
    run_pipeline(lh, pipeline)
    assert contents(lh, *tables) == want

    # After a replay took rows out of the quarantine, back to before the second run.
    fixed = write_files(tmp_path / "fixed", {"silver/events.sql": FIXED})
    replay_quarantine(lh, load_pipeline(fixed), "silver.events")
    lh.table("silver.events").restore(after_first)
    report = run_pipeline(lh, pipeline)
    assert contents(lh, *tables) == want
    silver = report.datasets[0]
    assert silver.rows_quarantined == sum(1 for i in range(30, 50) if i % 7 == 0)


# -- figures --------------------------------------------------------------------------------
def test_deduplicated_rows_are_counted(lh, simple):
    lh.write("bronze.raw", events(25, 10))  # e25..e29 again, in the same batch
    report = run_pipeline(lh, load_pipeline(simple))
    silver = report.datasets[0]
    assert silver.rows_read == 40
    # the second copies of the rows kept (a user, kind a or b): e25, e27
    assert silver.rows_deduplicated == 2
    row = lh.sql(f"SELECT {FIGURES} FROM system.dataset_runs WHERE dataset = 'silver.events'")
    accounted(row.to_dicts()[0])
    lh.write("bronze.raw", events(33, 4))  # e33, e34 are in the table; e35, e36 are new
    report = run_pipeline(lh, load_pipeline(simple))
    silver = report.datasets[0]
    assert (silver.rows_read, silver.rows_written, silver.rows_deduplicated) == (4, 1, 2)
    accounted(figures(lh, report.run_id))


ACTIONS = st.sampled_from(["warn", "drop", "quarantine"])
CHECKS = ["a IS NOT NULL", "b >= 0", "a < 6", "b % 3 <> 1"]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 12),
                st.one_of(st.none(), st.integers(0, 9)),
                st.integers(-3, 9),
            ),
            max_size=25,
        ),
        min_size=1,
        max_size=3,
    ),
    actions=st.lists(ACTIONS, min_size=len(CHECKS), max_size=len(CHECKS)),
    replay_actions=st.lists(ACTIONS, min_size=len(CHECKS), max_size=len(CHECKS)),
    keyed=st.booleans(),
)
def test_every_row_is_accounted_for(tmp_path_factory, batches, actions, replay_actions, keyed):
    """Random rows, random actions: every run and every replay reads exactly the rows it
    writes, drops (by name), quarantines and de-duplicates; after a replay each replayed
    row is in the table, still in the quarantine, or counted."""
    root = tmp_path_factory.mktemp("prop")
    lh = Lakehouse(root / "w")

    def define(chosen: list[str]) -> Path:
        checks = "\n".join(
            f"--   - {{name: c{i}, expect: \"{sql}\", action: {a}}}"
            for i, (sql, a) in enumerate(zip(CHECKS, chosen, strict=True))
        )
        keys = "-- keys: [k]\n" if keyed else ""
        header = f"-- kind: append\n{keys}-- expectations:\n{checks}\n"
        text = header + "SELECT k, a, b FROM bronze.src\n"
        return write_files(root / f"p{len(list(root.iterdir()))}", {"silver/t.sql": text})

    folder = define(actions)
    for batch in batches:
        lh.write("bronze.src", pa.table({
            "k": pa.array([r[0] for r in batch], pa.int64()),
            "a": pa.array([r[1] for r in batch], pa.int64()),
            "b": pa.array([r[2] for r in batch], pa.int64()),
        }))
        report = run_pipeline(lh, load_pipeline(folder))
        accounted(figures(lh, report.run_id))
    if not lh.exists("silver.t_quarantine"):
        return
    quarantined = lh.table("silver.t_quarantine").count()
    table_before = lh.table("silver.t").count()
    done = replay_quarantine(lh, load_pipeline(define(replay_actions)), "silver.t")
    assert done["replayed"] == quarantined
    accounted(figures(lh, done["run_id"]))
    assert lh.table("silver.t").count() == table_before + done["written"]
    assert lh.table("silver.t_quarantine").count() == done["still_failing"]


# -- rescued values -------------------------------------------------------------------------
def test_rescued_values_are_counted_and_checkable(lh, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text('{"id": 1, "amount": 5, "v": "x"}\n')
    folder = write_files(
        tmp_path / "p",
        {
            "bronze/ev.yml": f"kind: files\npath: {landing}\n",
            "silver/ev.sql": """
                -- kind: append
                -- expectations:
                --   - {name: nothing_rescued, no_rescued_data: true, action: quarantine}
                --   - {name: amount_fits, no_rescued_data: amount}
                SELECT * FROM bronze.ev
            """,
        },
    )
    # Nothing rescued yet: bronze has no _rescued_data, the check passes every row.
    first = run_pipeline(lh, load_pipeline(folder))
    assert [d.rescued for d in first.datasets] == [{}, {}]
    (landing / "b.jsonl").write_text(
        '{"id": 2, "amount": "abc", "v": "z"}\n{"id": 3, "amount": 7, "v": 5}\n'
        '{"id": 4, "amount": "x", "v": "z"}\n{"id": 5, "amount": 8, "v": "ok"}\n'
    )
    second = run_pipeline(lh, load_pipeline(folder))
    assert second.datasets[0].rescued == {"amount": 2, "v": 1}
    recorded = lh.sql(
        f"SELECT rescued_values FROM system.dataset_runs WHERE run_id = '{second.run_id}' "
        "AND dataset = 'bronze.ev'"
    ).scalar()
    assert json.loads(recorded) == {"amount": 2, "v": 1}
    checks = {c.expectation: c.failed_rows for c in second.datasets[1].checks}
    assert checks == {"nothing_rescued": 3, "amount_fits": 2}
    assert [r[0] for r in table_rows(lh, "silver.ev")] == [1, 5]
    assert sorted(r[0] for r in table_rows(lh, "silver.ev_quarantine")) == [2, 3, 4]


def test_no_rescued_data_needs_the_column(lh, tmp_path):
    """A query that leaves out the _rescued_data its input has would pass the check
    forever: validation says so."""
    from lakehouse.pipeline import PipelineError, validate

    lh.write("bronze.raw", events(0, 3).append_column("_rescued_data", pa.nulls(3, pa.string())))
    folder = write_files(
        tmp_path / "p",
        {
            "silver/x.sql": "-- expectations:\n"
            "--   - {name: fits, no_rescued_data: true}\nSELECT event_id FROM bronze.raw"
        },
    )
    with pytest.raises(PipelineError) as caught:
        validate(load_pipeline(folder), lh)
    assert "expectation fits: its rows have no _rescued_data column" in str(caught.value)
    (folder / "silver" / "x.sql").write_text(
        "-- expectations:\n--   - {name: fits, no_rescued_data: true}\n"
        "SELECT event_id, _rescued_data FROM bronze.raw"
    )
    validate(load_pipeline(folder), lh)


def test_a_rolled_back_run_loses_no_file(lh, tmp_path):
    """A failed run restores the bronze table it ingested files into: the files' marks go
    back with it, so the next run ingests them again, and reads them as new rows."""
    from lakehouse.pipeline import RunFailed

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text('{"id": 1, "n": 5}\n{"id": 2, "n": 6}\nnot json\n')
    strict = (
        "-- kind: append\n-- expectations:\n"
        '--   - {name: small, expect: "n < 100", action: fail}\n'
        "SELECT id, n FROM bronze.ev"
    )
    folder = write_files(
        tmp_path / "p",
        {"bronze/ev.yml": f"kind: files\npath: {landing}\n", "silver/ev.sql": strict},
    )
    run_pipeline(lh, load_pipeline(folder))
    (landing / "b.jsonl").write_text('{"id": 3, "n": 500}\n{"id": 4, "n": 7}\n{oops\n')
    with pytest.raises(RunFailed):
        run_pipeline(lh, load_pipeline(folder))
    assert [r[0] for r in lh.sql("SELECT id FROM bronze.ev ORDER BY 1").rows()] == [1, 2]
    assert lh.table("bronze.ev_quarantine").count() == 1
    (folder / "silver" / "ev.sql").write_text("-- kind: append\nSELECT id, n FROM bronze.ev")
    report = run_pipeline(lh, load_pipeline(folder))
    bronze, silver = report.datasets
    assert (bronze.rows_read, bronze.rows_written, bronze.rows_quarantined) == (3, 2, 1)
    assert silver.strategy.startswith("new input rows (definition changed")
    assert silver.rows_written == 2
    assert [r[0] for r in lh.sql("SELECT id FROM silver.ev ORDER BY 1").rows()] == [1, 2, 3, 4]
    assert lh.table("bronze.ev_quarantine").count() == 2
