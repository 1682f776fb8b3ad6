"""The ``lakehouse`` command, run the way a user runs it: a real process of the installed
console script over a real warehouse on disk (built beforehand with the Python API)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse import Lakehouse

LAKEHOUSE = Path(sys.executable).with_name("lakehouse")
CLI_TIMEOUT = 120
Result = subprocess.CompletedProcess[str]

# Version 0 of every table is its creation (no rows); the writes then land at 1, 2, 3.
USERS_V1 = [
    {"id": 1, "name": "ann", "country": "fr", "score": 1.5, "signup": date(2026, 1, 2)},
    {"id": 2, "name": "bob", "country": "de", "score": None, "signup": date(2026, 1, 3)},
    {"id": 3, "name": "cy", "country": "fr", "score": 3.25, "signup": date(2026, 2, 1)},
]
USERS_V2_APPEND = [
    {"id": 4, "name": "dee", "country": "it", "score": 4.0, "signup": date(2026, 3, 1)},
    {"id": 5, "name": "eve", "country": "de", "score": 0.5, "signup": date(2026, 3, 2)},
]
USERS_V3_MERGE = [{"id": 2, "name": "bob", "country": "de", "score": 9.0, "signup": None}]


def users_at(version: int) -> list[dict]:
    if version == 0:
        return []  # the table's creation: schema and partitioning, no rows
    rows = [dict(r) for r in USERS_V1]
    if version >= 2:
        rows += [dict(r) for r in USERS_V2_APPEND]
    if version >= 3:
        rows[1] = dict(USERS_V3_MERGE[0])
    return rows


def as_json(rows: list[dict]) -> list[dict]:
    """What ``--format json`` gives for the rows: dates as ISO text."""
    return [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()} for r in rows]


def run(
    *args: str,
    warehouse: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    module: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess; the process is killed if it outlives the timeout."""
    command = [sys.executable, "-m", "lakehouse.cli"] if module else [str(LAKEHOUSE)]
    if warehouse is not None:
        command += ["--warehouse", str(warehouse)]
    command += list(args)
    if cwd is None:
        assert warehouse is not None, "give the command a folder to run in"
        cwd = warehouse.parent  # never the repository: a stray ./lakehouse_data stays here
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    # Wide enough that rich does not fold table names in the grid output.
    full_env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    full_env.update(env or {})
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
    )
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"{result.args} exited {result.returncode}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """A refused command: exit code 1, no traceback; returns stderr with its line wrapping
    undone (rich wraps long messages)."""
    assert result.returncode == 1, (
        f"{result.args} exited {result.returncode}, expected 1\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return " ".join(result.stderr.split())


def active_files(path: Path) -> set[str]:
    return {os.path.normpath(u.removeprefix("file://")) for u in DeltaTable(str(path)).file_uris()}


def parquet_on_disk(path: Path) -> set[str]:
    return {
        os.path.normpath(str(p)) for p in path.rglob("*.parquet") if "_delta_log" not in p.parts
    }


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """silver.users at versions 0 (creation, no rows), 1 (overwrite), 2 (append), 3 (merge),
    partitioned by country; silver.orders; gold.revenue; bronze.clicks."""
    root = tmp_path_factory.mktemp("cli") / "warehouse"
    lh = Lakehouse(root)
    lh.write("silver.users", USERS_V1, mode="overwrite", partition_by=["country"])
    lh.write("silver.users", USERS_V2_APPEND)
    lh.write("silver.users", USERS_V3_MERGE, mode="merge", keys=["id"])
    lh.write("silver.orders", [{"order_id": 10, "user_id": 1, "total": 12.5}])
    lh.write("gold.revenue", [{"country": "fr", "revenue": 100.0}])
    lh.write("bronze.clicks", [{"user_id": 1, "page": "/home"}])
    return root


QUERY = "SELECT id, name, country, score, signup FROM silver.users ORDER BY id"
TIME_TRAVEL = (
    " UNION ALL ".join(
        f"SELECT {v} AS v, id, name, country, score, signup FROM silver.users VERSION AS OF {v}"
        for v in (0, 1, 2, 3)
    )
    + " ORDER BY v, id"
)
BAD_SQL = "SELEC id FROM silver.users"
# Nested values: a list, a struct holding a list of dates, a map, and bytes.
NESTED = (
    "SELECT country, list(name ORDER BY id) AS names, "
    "{'n': count(*), 'signups': list(signup ORDER BY id)} AS about, "
    "map([country], [count(*)]) AS per, country::BLOB AS raw "
    "FROM silver.users WHERE country <> 'it' GROUP BY country ORDER BY country"
)

# Commands that only read the shared warehouse. Each CLI process spends about a second
# importing, so they are all started together, a few at a time, when the first test needs
# them; every test then checks the outcome of its own commands.
READ_ONLY: dict[str, tuple[str, ...]] = {
    "tables_json": ("tables", "--format", "json"),
    "tables_grid": ("tables",),
    "describe_grid": ("describe", "silver.users"),
    "history_json": ("history", "silver.users", "--format", "json"),
    "sql_json": ("sql", QUERY, "--format", "json"),
    "sql_csv": ("sql", QUERY, "--format", "csv"),
    "nested_json": ("sql", NESTED, "--format", "json"),
    "nested_csv": ("sql", NESTED, "--format", "csv"),
    "nested_grid": ("sql", NESTED),
    "unknown_describe": ("describe", "silver.user"),
    "unknown_sql": ("sql", "SELECT * FROM silver.user"),
    "bad_sql": ("sql", BAD_SQL),
    "bad_sql_debug": ("--debug", "sql", BAD_SQL),
    "bad_name_slash": ("describe", "Silver/users"),
    "bad_name_dots": ("describe", "silver..x"),
    "bad_format": ("sql", "SELECT 1", "--format", "yaml"),
    "restore_bad": ("restore", "silver.users", "9"),
}
# The same, pointed at the warehouse through LAKEHOUSE_WAREHOUSE (and a cwd without one).
THROUGH_ENV: dict[str, tuple[str, ...]] = {
    "env_tables_layer": ("tables", "--layer", "silver", "--format", "json"),
    "env_sql_grid": (
        "sql",
        "SELECT country, count(*) AS n FROM silver.users GROUP BY country ORDER BY country",
    ),
    "env_overridden": ("--warehouse", "{other}", "tables", "--format", "json"),
}


@pytest.fixture(scope="module")
def cli(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    other = tmp_path_factory.mktemp("cli_other") / "warehouse"
    Lakehouse(other).write("gold.other", [{"x": 1}])
    cwd = tmp_path_factory.mktemp("cli_cwd")
    env = {"LAKEHOUSE_WAREHOUSE": str(warehouse)}
    jobs: dict[str, tuple[tuple[str, ...], dict]] = {
        key: (args, {"warehouse": warehouse}) for key, args in READ_ONLY.items()
    }
    # `python -m lakehouse.cli` works as well as the console script.
    jobs["time_travel"] = (
        ("sql", TIME_TRAVEL, "--format", "json"),
        {"warehouse": warehouse, "module": True},
    )
    for key, args in THROUGH_ENV.items():
        args = tuple(a.format(other=other) for a in args)
        jobs[key] = (args, {"env": env, "cwd": cwd})
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run, *args, **kw) for key, (args, kw) in jobs.items()}
        results = {key: f.result() for key, f in futures.items()}
    assert not (cwd / "lakehouse_data").exists(), "a command ignored LAKEHOUSE_WAREHOUSE"
    return results


# -- listing and describing --------------------------------------------------------------
def test_tables_lists_every_table_with_its_figures(cli: dict[str, Result], warehouse: Path) -> None:
    listed = json.loads(ok(cli["tables_json"]).stdout)
    by_name = {t["table"]: t for t in listed}
    assert sorted(by_name) == ["bronze.clicks", "gold.revenue", "silver.orders", "silver.users"]
    users = by_name["silver.users"]
    assert (users["layer"], users["version"], users["rows"]) == ("silver", 3, 5)
    assert users["files"] == len(active_files(warehouse / "silver" / "users"))

    grid = ok(cli["tables_grid"]).stdout
    for name in by_name:
        assert name in grid
    assert "4 rows" in grid


def test_tables_layer_filter_and_env_var(cli: dict[str, Result]) -> None:
    listed = json.loads(ok(cli["env_tables_layer"]).stdout)
    assert sorted(t["table"] for t in listed) == ["silver.orders", "silver.users"]
    # --warehouse wins over the environment variable.
    listed = json.loads(ok(cli["env_overridden"]).stdout)
    assert [t["table"] for t in listed] == ["gold.other"]


def test_describe_shows_schema_and_partitioning(cli: dict[str, Result]) -> None:
    out = ok(cli["describe_grid"]).stdout
    assert re.search(r"partitioned by\s+country\b", out), out
    assert re.search(r"\btable\s+silver\.users\b", out), out
    assert re.search(r"\bversion\s+3\b", out), out
    assert re.search(r"\brows\s+5\b", out), out
    for column, kind in [
        ("id", "long"),
        ("name", "string"),
        ("country", "string"),
        ("score", "double"),
        ("signup", "date"),
    ]:
        assert re.search(rf"\b{column}\s*[│|]\s*{kind}\b", out), (column, out)


def test_history_lists_commits_newest_first(cli: dict[str, Result], warehouse: Path) -> None:
    entries = json.loads(ok(cli["history_json"]).stdout)
    assert [e["version"] for e in entries] == [3, 2, 1, 0]
    assert [e["operation"] for e in entries] == ["MERGE", "WRITE", "WRITE", "WRITE"]
    # Version 0 is the table's creation: an empty write carrying schema and partitioning.
    create = entries[3]
    assert create["metrics"]["num_added_files"] == 0, create
    assert create["metrics"]["num_added_rows"] == 0, create
    assert json.loads(create["parameters"]["partitionBy"]) == ["country"], create
    assert entries[2]["parameters"]["mode"] == "Overwrite"
    assert entries[2]["metrics"]["num_added_rows"] == 3
    assert entries[1]["parameters"]["mode"] == "Append"
    assert entries[1]["metrics"]["num_added_rows"] == 2
    # Only the creation commit is marked as such in its commitInfo.
    log = warehouse / "silver" / "users" / "_delta_log"
    operations = []
    for version in range(4):
        lines = (log / f"{version:020d}.json").read_text().splitlines()
        actions = [json.loads(line) for line in lines if line.strip()]
        info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
        operations.append(info.get("lakehouse.operation"))
        if version == 0:
            assert not [a for a in actions if "add" in a or "remove" in a], actions
            assert any("metaData" in a for a in actions), actions
    assert operations == ["create", "overwrite", "append", "merge"]


# -- SQL ---------------------------------------------------------------------------------
def test_sql_json_is_exact(cli: dict[str, Result]) -> None:
    assert json.loads(ok(cli["sql_json"]).stdout) == as_json(users_at(3))


def test_sql_csv_is_exact(cli: dict[str, Result]) -> None:
    assert ok(cli["sql_csv"]).stdout == (
        '"id","name","country","score","signup"\n'
        '1,"ann","fr",1.5,2026-01-02\n'
        '2,"bob","de",9,\n'
        '3,"cy","fr",3.25,2026-02-01\n'
        '4,"dee","it",4,2026-03-01\n'
        '5,"eve","de",0.5,2026-03-02\n'
    )


def test_nested_values_in_every_format(cli: dict[str, Result]) -> None:
    """Lists, structs and maps are JSON values in json, JSON text in a CSV field or a grid
    cell; bytes are hex."""
    de = {"n": 2, "signups": [None, "2026-03-02"]}
    fr = {"n": 2, "signups": ["2026-01-02", "2026-02-01"]}
    assert json.loads(ok(cli["nested_json"]).stdout) == [
        {"country": "de", "names": ["bob", "eve"], "about": de, "per": {"de": 2}, "raw": "6465"},
        {"country": "fr", "names": ["ann", "cy"], "about": fr, "per": {"fr": 2}, "raw": "6672"},
    ]
    assert ok(cli["nested_csv"]).stdout == (
        '"country","names","about","per","raw"\n'
        '"de","[""bob"", ""eve""]","{""n"": 2, ""signups"": [null, ""2026-03-02""]}",'
        '"{""de"": 2}","6465"\n'
        '"fr","[""ann"", ""cy""]","{""n"": 2, ""signups"": [""2026-01-02"", ""2026-02-01""]}",'
        '"{""fr"": 2}","6672"\n'
    )
    grid = ok(cli["nested_grid"]).stdout
    assert '["bob", "eve"]' in grid and '{"fr": 2}' in grid and "2 rows" in grid


def test_sql_table_format_through_env_var(cli: dict[str, Result]) -> None:
    result = ok(cli["env_sql_grid"])
    lines = [line.replace("┃", "│").replace("|", "│") for line in result.stdout.splitlines()]
    cells = [[c.strip() for c in line.strip("│ ").split("│")] for line in lines if "│" in line]
    assert cells == [["country", "n"], ["de", "2"], ["fr", "2"], ["it", "1"]]
    assert "3 rows" in result.stdout


def test_sql_time_travel(cli: dict[str, Result]) -> None:
    rows = json.loads(ok(cli["time_travel"]).stdout)
    assert {r["v"] for r in rows} == {1, 2, 3}  # version 0, the creation, has no rows
    for version in (0, 1, 2, 3):
        mine = [{k: v for k, v in r.items() if k != "v"} for r in rows if r["v"] == version]
        assert mine == as_json(users_at(version)), version


# -- errors ------------------------------------------------------------------------------
def test_unknown_table_suggests_the_closest_name(cli: dict[str, Result]) -> None:
    for key in ("unknown_describe", "unknown_sql"):
        message = failed(cli[key])
        assert "table silver.user does not exist" in message, (key, message)
        assert "did you mean silver.users" in message, (key, message)


def test_invalid_sql_shows_the_engine_message_with_its_marker(cli: dict[str, Result]) -> None:
    result = cli["bad_sql"]
    failed(result)
    assert "syntax error" in result.stderr.lower()
    assert BAD_SQL in result.stderr
    assert any(re.fullmatch(r"\s*\^+\s*", line) for line in result.stderr.splitlines()), (
        result.stderr
    )


def test_debug_shows_the_traceback(cli: dict[str, Result]) -> None:
    result = cli["bad_sql_debug"]
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "SQLError" in result.stderr and "syntax error" in result.stderr.lower()


@pytest.mark.parametrize(
    ("key", "bad"), [("bad_name_slash", "Silver/users"), ("bad_name_dots", "silver..x")]
)
def test_bad_table_names_are_refused(cli: dict[str, Result], key: str, bad: str) -> None:
    message = failed(cli[key])
    assert f"invalid table name {bad!r}" in message, message
    assert "layer.name" in message


def test_bad_format_is_refused(cli: dict[str, Result]) -> None:
    result = cli["bad_format"]
    message = failed(result)
    assert "'yaml'" in message
    assert "table, json or csv" in message
    assert result.stdout == ""


def test_restore_to_a_missing_version_is_refused(cli: dict[str, Result], warehouse: Path) -> None:
    message = failed(cli["restore_bad"])
    assert "silver.users has no version 9" in message, message
    assert DeltaTable(str(warehouse / "silver" / "users")).version() == 3


# -- changing tables ---------------------------------------------------------------------
def test_restore_brings_back_an_earlier_version(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    lh = Lakehouse(root)
    lh.write("silver.users", USERS_V1, mode="overwrite", partition_by=["country"])
    lh.write("silver.users", USERS_V2_APPEND)
    lh.write("silver.users", USERS_V3_MERGE, mode="merge", keys=["id"])

    # Version 1 holds the first write's rows (version 0 is the empty creation).
    out = ok(run("restore", "silver.users", "1", warehouse=root)).stdout
    assert "restored silver.users to 1: now at version 4" in " ".join(out.split()), out

    fresh = Lakehouse(root)
    assert fresh.table("silver.users").version == 4
    assert fresh.sql(QUERY).to_dicts() == users_at(1)
    assert fresh.table("silver.users").info.row_count == 3
    # The data before the restore is still there for time travel.
    assert fresh.sql(QUERY.replace("ORDER", "VERSION AS OF 3 ORDER")).to_dicts() == users_at(3)
    assert fresh.sql(QUERY.replace("ORDER", "VERSION AS OF 0 ORDER")).to_dicts() == []


def test_optimize_and_zorder_compact_small_files(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    lh = Lakehouse(root)
    path = root / "silver" / "metrics"
    for i in range(12):
        lh.write("silver.metrics", [{"id": i * 10 + j, "v": float(j)} for j in range(10)])
    assert len(active_files(path)) == 12
    before = lh.sql("SELECT * FROM silver.metrics ORDER BY id").to_dicts()

    out = " ".join(ok(run("optimize", "silver.metrics", warehouse=root)).stdout.split())
    assert "12 files rewritten into 1" in out, out
    assert len(active_files(path)) == 1
    fresh = Lakehouse(root)
    assert fresh.sql("SELECT * FROM silver.metrics ORDER BY id").to_dicts() == before
    assert fresh.table("silver.metrics").info.num_files == 1

    for i in range(12, 18):
        fresh.write("silver.metrics", [{"id": i * 10 + j, "v": float(j)} for j in range(10)])
    assert len(active_files(path)) == 7
    before = fresh.sql("SELECT * FROM silver.metrics ORDER BY id").to_dicts()
    out = " ".join(
        ok(run("optimize", "silver.metrics", "--zorder", "v", warehouse=root)).stdout.split()
    )
    assert "now at version" in out
    assert len(active_files(path)) == 1
    fresh = Lakehouse(root)
    assert fresh.sql("SELECT * FROM silver.metrics ORDER BY id").to_dicts() == before
    assert len(before) == 180
    assert fresh.table("silver.metrics").history(1)[0]["operation"] == "OPTIMIZE"


def test_vacuum_removes_unreferenced_files(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    lh = Lakehouse(root)
    path = root / "silver" / "logs"
    for i in range(4):
        lh.write("silver.logs", [{"id": i, "msg": f"m{i}"}])
    lh.write(
        "silver.logs", [{"id": 100, "msg": "fresh"}, {"id": 101, "msg": "again"}], mode="overwrite"
    )
    live = active_files(path)
    on_disk = parquet_on_disk(path)
    assert len(live) == 1 and len(on_disk) == 5

    out = " ".join(
        ok(run("vacuum", "silver.logs", "--retain-hours", "0", warehouse=root)).stdout.split()
    )
    assert "removed 4 files" in out, out
    assert parquet_on_disk(path) == live
    fresh = Lakehouse(root)
    assert fresh.sql("SELECT id, msg FROM silver.logs ORDER BY id").rows() == [
        (100, "fresh"),
        (101, "again"),
    ]
    assert DeltaTable(str(path)).to_pyarrow_table().num_rows == 2
    fresh.write("silver.logs", [{"id": 102, "msg": "after"}])
    assert fresh.sql("SELECT count(*) FROM silver.logs").scalar() == 3


def test_vacuum_keeps_files_within_a_fractional_retention(tmp_path: Path) -> None:
    """--retain-hours takes hours with a fraction: files removed from the table seconds
    ago are within half an hour, so they stay and time travel to them still works (version
    0 is the empty creation, 1 the first write, 2 the overwrite)."""
    root = tmp_path / "wh"
    lh = Lakehouse(root)
    path = root / "silver" / "logs"
    lh.write("silver.logs", [{"id": 1, "msg": "old"}])
    lh.write("silver.logs", [{"id": 2, "msg": "new"}], mode="overwrite")
    on_disk = parquet_on_disk(path)
    assert len(on_disk) == 2

    out = " ".join(
        ok(run("vacuum", "silver.logs", "--retain-hours", "0.5", warehouse=root)).stdout.split()
    )
    assert "removed 0 files" in out, out
    assert parquet_on_disk(path) == on_disk
    fresh = Lakehouse(root)
    assert fresh.sql("SELECT id, msg FROM silver.logs VERSION AS OF 1").rows() == [(1, "old")]
    assert fresh.sql("SELECT id, msg FROM silver.logs VERSION AS OF 2").rows() == [(2, "new")]
    assert fresh.sql("SELECT count(*) FROM silver.logs VERSION AS OF 0").scalar() == 0


def test_demo_in_an_empty_folder_is_repeatable(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    for _ in range(2):
        result = ok(run("demo", "--events", "300", cwd=folder))
        assert "bronze.app_events" in result.stdout
        lh = Lakehouse(folder / "lakehouse_data")
        assert lh.sql("SELECT count(*) FROM bronze.app_events").scalar() == 300
        assert lh.table("bronze.app_events").info.row_count == 300
        distinct = lh.sql("SELECT count(DISTINCT event_id) FROM bronze.app_events").scalar()
        assert distinct == 297  # 1% of the events are replays of earlier ones
        assert lh.table("silver.app_events").count() == 297  # de-duplicated by event_id
        assert lh.table("gold.daily_active_users").count() >= 2
    assert sorted(p.name for p in folder.iterdir()) == ["lakehouse_data"]


def test_quality_hint_replay_runs_and_restore_of_a_pipeline_table(tmp_path: Path) -> None:
    """The replay `lakehouse quality` suggests runs as printed (the pipeline's folder comes
    from its runs), the replay is listed with the runs and its figures add up, and
    `lakehouse restore` takes the table's quarantine back with it."""
    import shlex
    import textwrap

    from lakehouse.pipeline import load_pipeline, run_pipeline
    from tests.test_pipeline import SILVER, events, write_files

    root = tmp_path / "warehouse"
    lh = Lakehouse(root)
    lh.write("bronze.raw", events(0, 30))
    folder = write_files(tmp_path / "my pipeline", {"silver/events.sql": SILVER})
    run_pipeline(lh, load_pipeline(folder))
    quality = ok(run("quality", "silver.events", warehouse=root)).stdout
    hint = re.search(r"`(lakehouse replay [^`]+)`", quality)
    assert hint is not None, quality
    assert shlex.split(hint.group(1))[-2:] == ["-p", str(folder.resolve())]
    fixed = textwrap.dedent(SILVER).replace("action: quarantine", "action: warn")
    (folder / "silver" / "events.sql").write_text(fixed)
    replayed = ok(run(*shlex.split(hint.group(1))[1:], warehouse=root)).stdout
    assert "4 now pass and were written" in replayed and "1 dropped (1 by known_kind)" in replayed

    runs = json.loads(ok(run("runs", "--format", "json", warehouse=root)).stdout)
    assert [r["kind"] for r in runs] == ["replay", "run"]
    figures = json.loads(ok(run("runs", runs[0]["run_id"], "-f", "json", warehouse=root)).stdout)
    (row,) = figures
    assert (row["rows_read"], row["rows_written"], row["rows_dropped"]) == (5, 4, 1)
    assert row["rows_deduplicated"] == 0 and json.loads(row["dropped_by"]) == {"known_kind": 1}

    # Back to the creation: the quarantine follows, so the next run quarantines once.
    ok(run("restore", "silver.events", "0", warehouse=root))
    lh = Lakehouse(root)
    assert lh.table("silver.events").count() == 0
    assert lh.table("silver.events_quarantine").count() == 0
    (folder / "silver" / "events.sql").write_text(textwrap.dedent(SILVER))
    run_pipeline(lh, load_pipeline(folder))
    assert lh.table("silver.events_quarantine").count() == 5
    assert lh.table("silver.events").count() == 16


# -- validate ------------------------------------------------------------------------------
BRONZE_YML = "kind: files\npath: ${landing}/events\n"
SILVER_SQL = """-- kind: append
-- expectations:
--   - {name: has_user, not_null: %s, action: drop}
SELECT user_id, kind
FROM bronze.events
"""


def test_validate_reports_folders_columns_and_empty_clauses_in_the_users_terms(
    tmp_path: Path,
) -> None:
    """A missing landing folder is an error at its ``path:`` line, with the variables
    expanded; expectation columns are checked against the first file or the bronze table;
    what could not be checked is said, not called valid; an empty WHERE is named."""
    def pipeline(name: str, column: str, where: str = "") -> Path:
        folder = tmp_path / name
        (folder / "bronze").mkdir(parents=True)
        (folder / "silver").mkdir()
        (folder / "pipeline.yml").write_text("vars:\n  landing: ${warehouse}/landing\n")
        (folder / "bronze" / "events.yml").write_text(BRONZE_YML)
        (folder / "silver" / "events.sql").write_text(SILVER_SQL % column + where)
        return folder

    good = pipeline("good", "user_id")
    typo = pipeline("typo", "usr_id")
    empty_where = pipeline("where", "user_id", "WHERE\nORDER BY user_id\n")
    undefined = pipeline("undefined", "user_id")
    (undefined / "bronze" / "events.yml").write_text("kind: files\npath: ${incoming}/events\n")
    landing = tmp_path / "landing"
    (landing / "events").mkdir(parents=True)
    (landing / "events" / "a.csv").write_text("user_id,kind\n1,click\n")
    (tmp_path / "none" / "events").mkdir(parents=True)  # a landing folder without files
    with_table = tmp_path / "with_table"
    Lakehouse(with_table).write("bronze.events", [{"user_id": 1, "kind": "x"}])
    w = tmp_path / "w"
    jobs = {
        "missing": (w, "validate", str(good)),
        "typo": (w, "validate", str(typo), "--var", f"landing={landing}"),
        "good": (w, "validate", str(good), "--var", f"landing={landing}"),
        "no_files": (w, "validate", str(good), "--var", f"landing={tmp_path / 'none'}"),
        "table_typo": (with_table, "validate", str(typo), "--var", f"landing={tmp_path / 'none'}"),
        "where": (w, "validate", str(empty_where), "--var", f"landing={landing}"),
        "undefined": (w, "validate", str(undefined)),
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {k: pool.submit(run, *args, warehouse=wh) for k, (wh, *args) in jobs.items()}
        out = {k: f.result() for k, f in futures.items()}

    missing = failed(out["missing"])
    assert f"events.yml:2: path ${{landing}}/events is {w}/landing/events, which does not " \
        "exist" in missing and "--var landing=FOLDER" in missing, missing
    typo_text = failed(out["typo"])
    assert "events.sql:3: expectation has_user:" in typo_text and "usr_id" in typo_text
    good_text = ok(out["good"]).stdout
    assert f"files from {landing}/events" in good_text and "${landing}" not in good_text
    assert good_text.rstrip().endswith("valid")
    no_files = " ".join(ok(out["no_files"]).stdout.split())
    assert "valid as far as it could be checked: the columns of 2 dataset(s)" in no_files
    assert "bronze.events: no table bronze.events yet and no files in" in no_files
    assert "silver.events: reads bronze.events, whose columns are not known yet" in no_files
    table_typo = failed(out["table_typo"])
    assert "events.sql:3: expectation has_user:" in table_typo and "usr_id" in table_typo
    where = failed(out["where"])
    assert "events.sql:6: SQL does not parse: WHERE without a condition after it" in where
    assert "sqlglot" not in where and "Required keyword" not in where
    undefined_text = failed(out["undefined"])
    assert "events.yml:2: pipeline undefined: ${incoming} is not defined" in undefined_text
