"""Pipelines on real tables: validation, kinds, incremental runs, expectations, rollback."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.pipeline import PipelineError, RunFailed, load_pipeline, run_pipeline, validate


def write_files(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return folder


def events(start: int, n: int) -> pa.Table:
    ids = range(start, start + n)
    return pa.table(
        {
            "event_id": [f"e{i}" for i in ids],
            "user_id": [None if i % 7 == 0 else i % 5 for i in ids],
            "kind": [["a", "b", "c"][i % 3] for i in ids],
            "n": [i % 4 for i in ids],
            "ts": [datetime(2026, 11, 1 + i % 4, i % 24) for i in ids],
        }
    )


SILVER = """
    -- kind: append
    -- keys: [event_id]
    -- expectations:
    --   - {name: has_user, not_null: user_id, action: quarantine}
    --   - {name: known_kind, accepted_values: {column: kind, values: [a, b]}, action: drop}
    --   - {name: positive, expect: "n > 0"}
    SELECT event_id, user_id, kind, n, CAST(ts AS DATE) AS day FROM bronze.raw
"""
DAILY = """
    -- date_column: day
    SELECT day, kind, count(*) AS events, sum(n) AS total FROM silver.events GROUP BY day, kind
"""
USERS = """
    SELECT e.user_id, count(*) AS events, sum(f.n) AS total
    FROM silver.events e JOIN silver.events f USING (event_id) GROUP BY e.user_id
"""


@pytest.fixture
def simple(lh, tmp_path):
    lh.write("bronze.raw", events(0, 30))
    folder = write_files(
        tmp_path / "p",
        {"silver/events.sql": SILVER, "gold/daily.sql": DAILY, "gold/users.sql": USERS},
    )
    return folder


def table_rows(lh, name: str) -> list[tuple]:
    return sorted(lh.sql(f"SELECT * FROM {name}").rows(), key=repr)


# -- validation -----------------------------------------------------------------------------
def problems_of(lh, folder: Path) -> str:
    with pytest.raises(PipelineError) as caught:
        validate(load_pipeline(folder), lh)
    return str(caught.value)


def test_validate_reports_file_and_line(lh, tmp_path):
    lh.write("bronze.raw", events(0, 3))
    cases = {
        "cycle": (
            {"silver/a.sql": "SELECT * FROM silver.b", "silver/b.sql": "SELECT * FROM silver.a"},
            ["a.sql:1", "b.sql:1", "cycle"],
        ),
        "unknown table": (
            {"silver/a.sql": "-- kind: append\n\nSELECT *\nFROM bronze.nope"},
            ["a.sql:4", "bronze.nope"],
        ),
        "bad header key": (
            {"silver/a.sql": "-- kind: append\n-- kyes: [x]\nSELECT 1 AS x"},
            ["a.sql:2", "unknown header key 'kyes'"],
        ),
        "bad kind": ({"silver/a.sql": "-- kind: stream\nSELECT 1 AS x"}, ["a.sql:1", "kind"]),
        "parse error": (
            {"silver/a.sql": "-- kind: append\nSELECT event_id,\nFROM FROM bronze.raw"},
            ["a.sql:3", "FROM"],
        ),
        "unknown column": (
            {"silver/a.sql": "-- kind: append\nSELECT event_id,\n  colour\nFROM bronze.raw"},
            ["a.sql:3", "colour"],
        ),
        "bad action": (
            {
                "silver/a.sql": "-- expectations:\n"
                "--   - {name: x, unique: id, action: drop}\nSELECT 1 AS id"
            },
            ["a.sql:2", "does not go with"],
        ),
        "cdc without keys": ({"silver/a.sql": "-- kind: cdc\nSELECT 1 AS id"}, ["needs keys"]),
        "not a select": ({"silver/a.sql": "DELETE FROM bronze.raw"}, ["a SELECT"]),
        "duplicate": (
            {"silver/a.sql": "SELECT 1 AS x", "gold/b.sql": "-- name: silver.a\nSELECT 2 AS x"},
            ["defined twice"],
        ),
    }
    for label, (files, needles) in cases.items():
        folder = write_files(tmp_path / label.replace(" ", "_"), files)
        text = problems_of(lh, folder)
        for needle in needles:
            assert needle in text, (label, text)


def test_validate_orders_and_explains(lh, simple):
    plan = validate(load_pipeline(simple), lh)
    assert plan.order.index("silver.events") < plan.order.index("gold.daily")
    assert plan.strategy["gold.daily"] == "materialized view: incremental by day"
    assert "recomputed" in plan.strategy["gold.users"]


# -- runs -----------------------------------------------------------------------------------
def test_incremental_runs_equal_full_refresh(lh, simple):
    pipeline = load_pipeline(simple)
    first = run_pipeline(lh, pipeline)
    assert [d.status for d in first.datasets] == ["ok", "ok", "ok"]
    silver = first.datasets[0]
    assert (silver.rows_read, silver.rows_quarantined, silver.rows_dropped) == (30, 5, 9)
    lh.write("bronze.raw", events(25, 10))  # five of them replay events already in
    second = run_pipeline(lh, pipeline)
    silver = second.datasets[0]
    assert silver.rows_read == 10 and silver.strategy == "new input rows"
    assert "incremental" in second.datasets[1].strategy
    assert lh.table("silver.events").count() == 20
    state = {t: table_rows(lh, t) for t in ("silver.events", "gold.daily", "gold.users")}
    third = run_pipeline(lh, pipeline)
    assert {d.status for d in third.datasets} == {"unchanged"}
    run_pipeline(lh, pipeline, full_refresh=True)
    for table, rows in state.items():
        assert table_rows(lh, table) == rows, table


def test_runs_are_recorded(lh, simple):
    report = run_pipeline(lh, load_pipeline(simple))
    runs = lh.sql("SELECT run_id, status, datasets FROM system.pipeline_runs").rows()
    assert runs == [(report.run_id, "succeeded", 3)]
    figures = lh.sql(
        "SELECT dataset, rows_read, rows_written, rows_dropped, rows_quarantined, "
        "version_written, input_versions FROM system.dataset_runs ORDER BY dataset"
    ).to_dicts()
    events_row = next(f for f in figures if f["dataset"] == "silver.events")
    assert events_row["rows_written"] == 16 and events_row["rows_quarantined"] == 5
    assert '"bronze.raw": 1' in events_row["input_versions"]
    quality = lh.sql(
        "SELECT expectation, passed, failed_rows FROM system.quality_results ORDER BY 1"
    ).rows()
    assert quality == [("has_user", False, 5), ("known_kind", False, 10), ("positive", False, 8)]
    quarantined = lh.sql("SELECT _failed_expectations FROM silver.events_quarantine").rows()
    assert all("has_user" in r[0] for r in quarantined) and len(quarantined) == 5


def test_quality_report_holds_only_the_tables_own_results(lh, simple):
    from lakehouse.pipeline.quality_report import quality_report

    (simple / "gold" / "users.sql").write_text(
        "-- expectations:\n--   - {name: some_events, expect: events > 0}\n"
        + textwrap.dedent(USERS)
    )
    run_pipeline(lh, load_pipeline(simple))
    silver = quality_report(lh, "silver.events")
    assert {r["expectation"] for r in silver["results"]} == {"has_user", "known_kind", "positive"}
    gold = quality_report(lh, "gold.users")
    assert [r["expectation"] for r in gold["results"]] == ["some_events"]
    assert gold["score"] == 100.0


def test_fail_expectation_rolls_back_the_whole_run(lh, simple, tmp_path):
    pipeline = load_pipeline(simple)
    run_pipeline(lh, pipeline)
    before = {t: lh.table(t).version for t in ("silver.events", "gold.daily", "gold.users")}
    rows_before = table_rows(lh, "gold.daily")
    (simple / "gold" / "users.sql").write_text(
        "-- expectations:\n--   - {name: few_events, expect: events < 3, action: fail}\n"
        + textwrap.dedent(USERS)
    )
    lh.write("bronze.raw", events(100, 12))
    with pytest.raises(RunFailed) as caught:
        run_pipeline(lh, load_pipeline(simple))
    assert "few_events" in str(caught.value)
    # silver.events and gold.daily were written by the run, then restored.
    for table, version in before.items():
        assert lh.table(table).version >= version
        assert (
            lh.table(table).count()
            == lh.sql(f"SELECT count(*) FROM {table} VERSION AS OF {version}").scalar()
        )
    assert table_rows(lh, "gold.daily") == rows_before
    status = lh.sql("SELECT status FROM system.pipeline_runs ORDER BY started_at").rows()
    assert status[-1] == ("failed",)
    # Fixed, the next run processes the new rows: nothing was lost by the rollback.
    (simple / "gold" / "users.sql").write_text(textwrap.dedent(USERS))
    run_pipeline(lh, load_pipeline(simple))
    kept = [f"e{i}" for i in range(100, 112) if i % 7 and i % 3 != 2]
    got = lh.sql("SELECT event_id FROM silver.events WHERE length(event_id) = 4").rows()
    assert sorted(r[0] for r in got) == sorted(kept)


def test_keyed_append_keeps_latest_by_sequence(lh, tmp_path):
    def batch(rows):
        return pa.table(
            {"id": [r[0] for r in rows], "v": [r[1] for r in rows], "seq": [r[2] for r in rows]}
        )

    lh.write("bronze.changes", batch([(1, "a", 1), (2, "b", 1), (1, "c", 3)]))
    folder = write_files(
        tmp_path / "k",
        {
            "silver/latest.sql": "-- kind: append\n-- keys: [id]\n-- sequence_by: seq\n"
            "SELECT id, v, seq FROM bronze.changes"
        },
    )
    pipeline = load_pipeline(folder)
    run_pipeline(lh, pipeline)
    assert table_rows(lh, "silver.latest") == [(1, "c", 3), (2, "b", 1)]
    lh.write("bronze.changes", batch([(1, "old", 2), (2, "new", 5), (3, "x", 1)]))
    run_pipeline(lh, pipeline)
    assert table_rows(lh, "silver.latest") == [(1, "c", 3), (2, "new", 5), (3, "x", 1)]


def test_views_and_python_datasets(lh, simple):
    write_files(
        simple,
        {
            "gold/kinds.sql": "-- kind: view\n"
            "SELECT kind, sum(events) AS events FROM gold.daily GROUP BY kind",
            "gold/features.py": """
                from lakehouse.pipeline import dataset

                @dataset("gold.user_features", inputs=["gold.users"], keys=["user_id"],
                         expectations=[{"name": "has_id", "not_null": "user_id", "action": "drop"}])
                def features(ctx):
                    rows = ctx.sql("SELECT user_id, events * 10 AS score FROM gold.users")
                    return rows.to_pandas()
            """,
        },
    )
    pipeline = load_pipeline(simple)
    plan = validate(pipeline, lh)
    assert plan.order.index("gold.users") < plan.order.index("gold.user_features")
    run_pipeline(lh, pipeline)
    assert lh.catalog.get("gold.kinds").format == "view"
    assert lh.sql("SELECT sum(events) FROM gold.kinds").scalar() == 16
    assert lh.sql("SELECT sum(score) FROM gold.user_features").scalar() == 160
    lh.write("bronze.raw", events(40, 6))
    run_pipeline(lh, pipeline)
    assert (
        lh.sql("SELECT sum(events) FROM gold.kinds").scalar() == lh.table("silver.events").count()
    )


def test_replay_quarantine_after_a_fix(lh, simple):
    from lakehouse.pipeline.replay import replay_quarantine

    run_pipeline(lh, load_pipeline(simple))
    assert lh.table("silver.events_quarantine").count() == 5
    # The fix: rows without a user are acceptable after all (warned, not quarantined).
    (simple / "silver" / "events.sql").write_text(
        textwrap.dedent(SILVER).replace("action: quarantine", "action: warn")
    )
    done = replay_quarantine(lh, load_pipeline(simple), "silver.events")
    assert {k: v for k, v in done.items() if k != "run_id"} == {
        "replayed": 5,
        "written": 4,
        "still_failing": 0,
        "dropped": 1,
        "dropped_by": {"known_kind": 1},  # e14 is kind c
        "deduplicated": 0,
    }
    assert lh.table("silver.events").count() == 20
    assert lh.table("silver.events_quarantine").count() == 0


def test_restore_with_inputs_makes_the_next_run_recompute(lh, simple):
    pipeline = load_pipeline(simple)
    run_pipeline(lh, pipeline)
    rows = table_rows(lh, "gold.users")
    lh.table("gold.users").restore(0, inputs=["silver.events"])
    assert lh.table("gold.users").count() == 0
    report = run_pipeline(lh, pipeline)
    status = {d.dataset: d.status for d in report.datasets}
    assert status == {"silver.events": "unchanged", "gold.daily": "unchanged", "gold.users": "ok"}
    assert table_rows(lh, "gold.users") == rows


def test_an_edited_definition_is_recomputed_though_no_input_moved(lh, simple):
    """A materialized view whose query changed is recomputed even when its inputs did not
    move; a change of comments or spacing is not a change; an append dataset keeps its rows
    and says so."""
    run_pipeline(lh, load_pipeline(simple))
    (simple / "gold" / "users.sql").write_text(
        textwrap.dedent(USERS).replace("  ", " ") + "-- users, counted again\n"
    )
    again = run_pipeline(lh, load_pipeline(simple))
    assert {d.dataset: d.status for d in again.datasets}["gold.users"] == "unchanged"

    (simple / "gold" / "users.sql").write_text(
        textwrap.dedent(USERS).replace("sum(f.n) AS total", "sum(f.n) * 10 AS total")
    )
    (simple / "silver" / "events.sql").write_text(
        textwrap.dedent(SILVER).replace('expect: "n > 0"', 'expect: "n > 1"')
    )
    edited = {d.dataset: d for d in run_pipeline(lh, load_pipeline(simple)).datasets}
    assert edited["gold.users"].strategy == "recomputed (definition changed)"
    assert edited["silver.events"].status == "unchanged"  # no new input rows to apply it to
    expected = lh.sql(
        "SELECT user_id, count(*), sum(n) * 10 FROM silver.events GROUP BY user_id"
    ).rows()
    assert table_rows(lh, "gold.users") == sorted(expected, key=repr)
    assert run_pipeline(lh, load_pipeline(simple)).datasets[2].status == "unchanged"

    lh.write("bronze.raw", events(30, 10))
    later = {d.dataset: d for d in run_pipeline(lh, load_pipeline(simple)).datasets}
    assert later["silver.events"].strategy.startswith("new input rows (definition changed")


def test_a_table_without_a_recorded_definition_is_recomputed_once(lh, simple):
    """Tables written before definitions were recorded are recomputed at their next run
    (their rows may come from another definition), then left alone."""
    from lakehouse.pipeline.kinds.marks import DEFINITION
    from lakehouse.tables.writer import input_mark

    run_pipeline(lh, load_pipeline(simple))
    table = lh.table("gold.daily")
    marks = table.input_versions(["silver.events"])
    lh.write(  # as the earlier runs left it: the rows and the input, no definition
        "gold.daily",
        lh.sql("SELECT * FROM gold.daily").to_arrow(),
        mode="overwrite",
        input_versions={**marks, DEFINITION: -1},
    )
    daily = lh.table("gold.daily")
    handle = daily.format.open(lh.storage, daily.name)
    assert daily.format.transaction_version(handle, input_mark(DEFINITION)) == -1
    first = {d.dataset: d for d in run_pipeline(lh, load_pipeline(simple)).datasets}
    assert first["gold.daily"].strategy == "recomputed (definition changed)"
    second = {d.dataset: d for d in run_pipeline(lh, load_pipeline(simple)).datasets}
    assert second["gold.daily"].status == "unchanged"


def test_a_run_of_selected_datasets_needs_only_their_landing_folders(lh, tmp_path):
    """A missing landing folder stops a run that ingests from it, not a run of other
    datasets."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text('{"id": 1}\n')
    folder = write_files(
        tmp_path / "p",
        {
            "bronze/raw.yml": f"kind: files\npath: {landing}\n",
            "silver/ids.sql": "SELECT id FROM bronze.raw",
        },
    )
    run_pipeline(lh, load_pipeline(folder))
    landing.rename(tmp_path / "elsewhere")
    with pytest.raises(PipelineError, match="which does not exist"):
        run_pipeline(lh, load_pipeline(folder))
    report = run_pipeline(lh, load_pipeline(folder), select_=["silver.ids"])
    assert [d.dataset for d in report.datasets] == ["silver.ids"]


def test_bad_lines_in_the_first_landing_file_do_not_hide_its_columns(lh, tmp_path):
    """validate looks at a new files dataset's first file as ingestion reads it: lines that
    are arrays, bare values or broken JSON are bad lines (quarantined by the run), not the
    file's shape, so the queries over it are checked and run."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text(
        '[1, 2]\n{"id": 1, "kind": "x"}\n42\n{"id": 2, "kind": "y"}\n{broken\n'
    )
    folder = write_files(
        tmp_path / "p",
        {
            "bronze/raw.yml": f"kind: files\npath: {landing}\n",
            "silver/ids.sql": "SELECT id, kind FROM bronze.raw",
        },
    )
    plan = validate(load_pipeline(folder), lh)
    assert plan.unchecked == {}
    report = run_pipeline(lh, load_pipeline(folder))
    bronze, silver = report.datasets
    assert (bronze.rows_written, bronze.rows_quarantined) == (2, 3)
    assert table_rows(lh, "silver.ids") == [(1, "x"), (2, "y")]
    (folder / "silver" / "ids.sql").write_text("SELECT id, kynd FROM bronze.raw")
    lh.drop("bronze.raw")
    assert "kynd" in problems_of(lh, folder)
