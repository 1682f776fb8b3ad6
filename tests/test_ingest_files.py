"""Bronze ingestion from a folder: every format, exactly once across re-runs and kill -9,
schema drift, rescued values and quarantined records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse import Lakehouse, LakehouseError
from lakehouse.ingest import jsonlines
from lakehouse.ingest.files import ingest_folder
from tests.helpers.commits import kill_after_commits


def write_lines(path: Path, records: list) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records))


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    write_lines(
        folder / "a.jsonl",
        [
            {"user_id": 1, "kind": "click"},
            '{"user_id": 2, "kind": ',  # cut off
            {"user_id": 3, "kind": "view"},
            "[1, 2]",  # not an object
        ],
    )
    (folder / "b.csv").write_text("user_id,kind\n4,buy\n5,view\n")
    (folder / "c.json").write_text(json.dumps([{"user_id": 6, "kind": "open"}]))
    pq.write_table(pa.table({"user_id": [7, 8], "kind": ["x", "y"]}), folder / "d.parquet")
    (folder / "notes.txt").write_text("not data")
    return folder


def test_every_format_lands_once_with_metadata_and_quarantine(lh, landing):
    report = ingest_folder(lh, landing, "bronze.events", source_system="app")
    assert len(report.files_ingested) == 4 and report.rows == 7
    assert report.quarantined == 2
    got = lh.sql(
        "SELECT user_id, kind, _source, _source_system FROM bronze.events ORDER BY user_id"
    ).rows()
    assert [r[0] for r in got] == [1, 3, 4, 5, 6, 7, 8]
    assert {Path(r[2]).name for r in got} == {"a.jsonl", "b.csv", "c.json", "d.parquet"}
    assert {r[3] for r in got} == {"app"}
    bad = lh.sql(
        "SELECT raw_payload, reason, _source FROM bronze.events_quarantine ORDER BY reason"
    ).rows()
    assert bad[0][0] == '{"user_id": 2, "kind": ' and "line 2: invalid JSON" in bad[0][1]
    assert bad[1][0] == "[1, 2]" and "line 4: not a JSON object" in bad[1][1]
    assert all(Path(r[2]).name == "a.jsonl" for r in bad)
    again = ingest_folder(lh, landing, "bronze.events")
    assert again.files_ingested == [] and len(again.files_skipped) == 4
    assert lh.sql("SELECT count(*) FROM bronze.events").scalar() == 7
    assert lh.sql("SELECT count(*) FROM bronze.events_quarantine").scalar() == 2


def test_schema_drift_and_rescued_values(lh, landing):
    ingest_folder(lh, landing, "bronze.events")
    write_lines(
        landing / "e.jsonl",
        [
            {"user_id": 9, "kind": "view", "country": "fr"},
            {"user_id": "ten", "kind": "view"},
        ],
    )
    report = ingest_folder(lh, landing, "bronze.events")
    assert report.files_ingested == [str(landing / "e.jsonl")] and report.rescued == 1
    rows = lh.sql(
        "SELECT user_id, country, _rescued_data FROM bronze.events "
        "WHERE _source LIKE '%e.jsonl' ORDER BY user_id NULLS LAST"
    ).rows()
    assert rows == [(9, "fr", None), (None, None, '{"user_id": "ten"}')]
    assert lh.sql("SELECT count(country) FROM bronze.events").scalar() == 1


def test_a_file_committed_before_a_crash_is_not_ingested_again(lh, landing):
    from lakehouse.ingest.files import file_id

    # The loader committed b.csv, then died before recording anything else.
    lh.write(
        "bronze.events",
        [{"user_id": 4, "kind": "buy"}, {"user_id": 5, "kind": "view"}],
        source=str(landing / "b.csv"),
        txn=(file_id(landing / "b.csv"), 1),
    )
    report = ingest_folder(lh, landing, "bronze.events")
    assert report.files_skipped == [str(landing / "b.csv")]
    assert lh.sql("SELECT count(*) FROM bronze.events WHERE user_id IN (4, 5)").scalar() == 2


def test_bad_arguments(lh, tmp_path):
    with pytest.raises(LakehouseError, match="no folder"):
        ingest_folder(lh, tmp_path / "missing", "bronze.x")
    with pytest.raises(LakehouseError, match="into bronze"):
        ingest_folder(lh, tmp_path, "silver.x")


def test_progress_callback_and_files_that_are_not_data(lh, landing):
    (landing / "_generated.json").write_text(json.dumps({"not": "data"}))
    (landing / ".e.jsonl").write_text('{"user_id": 99}')  # being written
    (landing / "_tmp").mkdir()
    write_lines(landing / "_tmp" / "f.jsonl", [{"user_id": 98}])
    seen: list[tuple[str, int]] = []
    report = ingest_folder(
        lh, landing, "bronze.events", on_file=lambda p, n: seen.append((p.name, n))
    )
    assert seen == [("a.jsonl", 2), ("b.csv", 2), ("c.json", 1), ("d.parquet", 2)]
    assert report.rows == 7
    seen.clear()
    write_lines(landing / "e.jsonl", [{"user_id": 9, "kind": "x"}])
    ingest_folder(lh, landing, "bronze.events", on_file=lambda p, n: seen.append((p.name, n)))
    assert seen == [("a.jsonl", 0), ("b.csv", 0), ("c.json", 0), ("d.parquet", 0), ("e.jsonl", 1)]
    assert lh.sql("SELECT count(*) FROM bronze.events WHERE user_id > 90").scalar() == 0


def per_line(lh, table: str, path: Path) -> None:
    """Ingest one JSON lines file the way the per-line reader does."""
    rows, bad = jsonlines.per_line(path.read_bytes())
    if bad:
        quarantined = [
            {"raw_payload": b.raw, "reason": f"line {b.index + 1}: {b.reason}"} for b in bad
        ]
        lh.write(f"{table}_quarantine", quarantined, source=str(path))
    data, _ = jsonlines.fit_rows(lh, table, rows)
    lh.write(table, data, evolve=True, source=str(path))


def whole(path: Path):
    """The whole-data reading of a file, or None where it leaves it to the per-line one."""
    return jsonlines.parse(path.read_bytes()).rows


def same_rows(lh, a: str, b: str, path: Path) -> None:
    """The two tables hold the same rows from ``path`` (all but their _ingested_at)."""
    columns = lh.table(b).schema.names
    assert sorted(lh.table(a).schema.names) == sorted(columns)
    listed = ", ".join(f'"{c}"' for c in columns if c != "_ingested_at")
    query = f"SELECT {listed} FROM {{}} WHERE _source = '{path}' ORDER BY ALL"
    fast, slow = lh.sql(query.format(a)).to_arrow(), lh.sql(query.format(b)).to_arrow()
    assert fast.num_rows > 0 and fast.equals(slow)


def test_whole_file_and_per_line_readers_agree(lh, tmp_path):
    folder = tmp_path / "edges"
    folder.mkdir()
    first = [
        {"id": 1, "at": "2026-11-01 00:05:12", "day": "2026-11-01", "x": 1.5, "ok": True},
        "",
        "   ",
        {"id": 2, "at": "2026-11-01T00:05:12+00:00", "x": 2, "note": 'caf\u00e9 "q"'},
        '{"id": 3, "x": ',
        "7",
        {"id": 4, "_source": "spoofed", "_rescued_data": "x", "x": None, "none": None},
    ]
    (folder / "e1.jsonl").write_text(
        "\r\n".join(json.dumps(r) if isinstance(r, dict) else r for r in first)
    )
    write_lines(folder / "e2.jsonl", [{"id": 5, "x": 3, "ok": None}, {"id": 6}])  # ints fit
    write_lines(folder / "e3.jsonl", [{"id": 7, "tags": ["a"], "x": 1.0}])  # nested
    write_lines(folder / "e4.jsonl", [{"id": 18446744073709551616, "x": 1.0}])  # > 64 bits
    write_lines(folder / "e5.jsonl", [{"id": 8, "x": 1e300}, {"id": "nine", "x": 0.5}])
    # Two objects on a line (Arrow would read both), an indented line, bytes not UTF-8.
    (folder / "e6.jsonl").write_bytes(b'{"id": 10} {"id": 11}\n  {"id": 12}\n\t\n')
    (folder / "e7.jsonl").write_bytes(b'{"id": 13, "note": "\xff"}\n{"id": 14}\n')
    assert whole(folder / "e6.jsonl") is not None
    assert whole(folder / "e7.jsonl") is None
    assert whole(folder / "e1.jsonl") is not None
    assert whole(folder / "e3.jsonl") is None
    assert whole(folder / "e4.jsonl") is None
    report = ingest_folder(lh, folder, "bronze.fast")
    assert report.quarantined == 4 and report.rescued == 2
    for path in sorted(folder.iterdir()):
        per_line(lh, "bronze.slow", path)
    for path in sorted(folder.iterdir()):
        same_rows(lh, "bronze.fast", "bronze.slow", path)
    for name in ("e1.jsonl", "e6.jsonl", "e7.jsonl"):
        same_rows(lh, "bronze.fast_quarantine", "bronze.slow_quarantine", folder / name)
    got = lh.sql('SELECT id, "at", x, _source FROM bronze.fast WHERE id < 3 ORDER BY id').rows()
    assert [r[:3] for r in got] == [
        (1, "2026-11-01 00:05:12", 1.5),
        (2, "2026-11-01T00:05:12+00:00", 2.0),
    ], "text that looks like a time stays text, as the per-line reader keeps it"
    assert all(Path(r[3]).name == "e1.jsonl" for r in got)


LOADER = """
import sys
from lakehouse import Lakehouse
from lakehouse.ingest.files import ingest_folder
ingest_folder(Lakehouse(sys.argv[1]), sys.argv[2], "bronze.many")
"""


def test_kill_during_ingestion_then_rerun_gives_every_file_once(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    files, per_file = 24, 4000
    for f in range(files):
        write_lines(
            folder / f"part-{f:03d}.jsonl",
            [{"file": f, "n": n, "payload": "x" * 40} for n in range(per_file)],
        )
    warehouse = tmp_path / "w"
    Lakehouse(warehouse)  # the catalog exists before the loaders start
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    kills = 0
    for more in (3, 5, 7):  # files committed by this loader before it is killed
        proc = subprocess.Popen(
            [sys.executable, "-c", LOADER, str(warehouse), str(folder)], env=env
        )
        try:
            kills += kill_after_commits(proc, warehouse, more)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert kills >= 1, "the loader was killed at least once while working"
    finished = subprocess.run(
        [sys.executable, "-c", LOADER, str(warehouse), str(folder)], env=env, timeout=300
    )
    assert finished.returncode == 0
    lh = Lakehouse(warehouse)
    per_source = lh.sql(
        "SELECT file, count(*), count(DISTINCT n) FROM bronze.many GROUP BY file ORDER BY file"
    ).rows()
    assert per_source == [(f, per_file, per_file) for f in range(files)]


def test_cli_ingest(tmp_path, landing):
    command = [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(tmp_path / "w")]
    first = subprocess.run(
        [*command, "ingest", str(landing), "--table", "bronze.events"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert "4 new file(s), 7 rows" in first.stdout and "2 quarantined" in first.stdout
    second = subprocess.run(
        [*command, "ingest", str(landing), "--table", "bronze.events"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "0 new file(s)" in second.stdout and "4 file(s) already ingested" in second.stdout
    bad = subprocess.run(
        [*command, "ingest", str(tmp_path / "nope"), "--table", "bronze.events"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "no folder" in bad.stderr and "Traceback" not in bad.stderr


RACER = """
import sys, time
from lakehouse import Lakehouse
lh = Lakehouse(sys.argv[1])
start = float(sys.argv[2])
while time.time() < start:
    pass
result = lh.write("bronze.t", [{"i": int(sys.argv[3])}], txn=("one-file", 1))
print("skipped" if result.skipped else "committed")
"""


def test_racing_writers_of_one_transaction_id_commit_once(tmp_path):
    warehouse = tmp_path / "w"
    Lakehouse(warehouse).write("bronze.t", [{"i": -1}])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(warehouse), str(start), str(i)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        outcomes = [p.communicate(timeout=120)[0].strip() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert sorted(outcomes) == ["committed", "skipped", "skipped", "skipped"]
    assert Lakehouse(warehouse).sql("SELECT count(*) FROM bronze.t").scalar() == 2


def test_lines_starting_with_a_bare_value_are_quarantined(lh, tmp_path):
    """A line holding `null` (or another bare value) goes to the quarantine; Arrow's JSON
    reader is never handed one (it can crash the process on them)."""
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(b'null\n{"id": 1}\nnull  \n{"id": 2}\n"x"\n')
    report = ingest_folder(lh, folder, "bronze.bare")
    assert report.rows == 2 and report.quarantined == 3
    reasons = lh.sql("SELECT reason FROM bronze.bare_quarantine ORDER BY reason").rows()
    assert [r[0] for r in reasons] == [f"line {n}: not a JSON object" for n in (1, 3, 5)]


# -- file identity: what a file holds, not where it lies ------------------------------------
def counts(lh, table: str = "bronze.events") -> tuple[int, int]:
    return (
        lh.sql(f"SELECT count(*) FROM {table}").scalar(),
        lh.sql(f"SELECT count(*) FROM {table}_quarantine").scalar(),
    )


def test_moved_or_copied_folders_bring_nothing_new_and_changed_content_is_new(lh, landing):
    import shutil

    write_lines(landing / "bad.jsonl", ["{", "[3]"])  # every line to the quarantine
    first = ingest_folder(lh, landing, "bronze.events")
    assert len(first.files_ingested) == 5 and counts(lh) == (7, 4)
    copy = landing.parent / "elsewhere" / "copy"
    shutil.copytree(landing, copy)
    moved = landing.parent / "moved"
    landing.rename(moved)
    for folder in (copy, moved):
        again = ingest_folder(lh, folder, "bronze.events")
        assert again.files_ingested == [] and len(again.files_skipped) == 5
        assert counts(lh) == (7, 4)
    # The same bytes under a second name are one file's content: ingested once.
    shutil.copy(moved / "b.csv", moved / "b-again.csv")
    (moved / "b.csv").rename(moved / "sub.csv")
    report = ingest_folder(lh, moved, "bronze.events")
    assert report.files_ingested == [] and counts(lh) == (7, 4)
    assert report.duplicates == {str(moved / "sub.csv"): str(moved / "b-again.csv")}
    # A file whose content changed under the same name is a new file.
    (moved / "b-again.csv").write_text("user_id,kind\n4,buy\n5,view\n50,new\n")
    changed = ingest_folder(lh, moved, "bronze.events")
    assert changed.files_ingested == [str(moved / "b-again.csv")] and changed.rows == 3
    assert counts(lh) == (10, 4)


def old_path_id(path: Path) -> str:
    """The identifier loaders gave a file before files were named by content."""
    import hashlib

    return "file:" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]


def test_a_table_written_with_path_identifiers_ingests_nothing_again(lh, landing):
    """A warehouse whose loader named files by path: none of its files comes in again,
    not where they were and not after the folder moved; new content still does."""
    write_lines(landing / "bad.jsonl", ["{"])
    # What the loader of path identifiers committed: each file's rows (bad records to the
    # quarantine) under the file's path identifier; a file without a good record only in
    # the quarantine.
    for path in sorted(landing.iterdir()):
        if path.suffix not in (".csv", ".jsonl", ".json", ".parquet"):
            continue
        txn = (old_path_id(path), 1)
        if path.name == "a.jsonl":
            lh.write("bronze.events_quarantine", [{"raw_payload": "x", "reason": "r"}] * 2,
                     source=str(path), txn=txn)
            rows = [{"user_id": 1, "kind": "click"}, {"user_id": 3, "kind": "view"}]
        elif path.name == "bad.jsonl":
            lh.write("bronze.events_quarantine", [{"raw_payload": "{", "reason": "r"}],
                     source=str(path), txn=txn)
            continue
        else:
            rows = [{"user_id": 0, "kind": path.name}] * {"b.csv": 2, "c.json": 1}.get(
                path.name, 2
            )
        lh.write("bronze.events", rows, source=str(path), txn=txn)
    assert counts(lh) == (7, 3)
    same_place = ingest_folder(lh, landing, "bronze.events")
    assert same_place.files_ingested == [] and counts(lh) == (7, 3)
    moved = landing.parent / "moved"
    landing.rename(moved)
    after_move = ingest_folder(lh, moved, "bronze.events")
    assert after_move.files_ingested == [] and counts(lh) == (7, 3)
    # A path identifier vouched for the file it was given to: new content at that path,
    # after the upgrade, is a new file.
    (moved / "c.json").write_text(json.dumps([{"user_id": 60, "kind": "new"}]))
    (moved / "b.csv").rename(moved / "b2.csv")
    (moved / "b.csv").write_text("user_id,kind\n70,new\n")
    report = ingest_folder(lh, moved, "bronze.events")
    assert sorted(Path(f).name for f in report.files_ingested) == ["b.csv", "c.json"]
    assert counts(lh) == (9, 3)


def test_a_second_loader_with_the_same_files_ingests_nothing(lh, landing):
    """Identifiers come from the hashes, not from the cache: another warehouse folder,
    or a warehouse whose cache is gone, recognises the files all the same."""
    ingest_folder(lh, landing, "bronze.events")
    cache = Path(lh.root) / "_ingest" / "file_ids.sqlite"
    assert cache.is_file()
    cache.unlink()
    assert ingest_folder(lh, landing, "bronze.events").files_ingested == []
    assert counts(lh) == (7, 2)


def test_the_hash_cache_is_used_only_for_files_as_they_were(lh, tmp_path):
    import sqlite3

    folder = tmp_path / "cached"
    folder.mkdir()
    (folder / "a.csv").write_text("id,kind\n1,x\n")
    (folder / "b.csv").write_text("id,kind\n2,y\n")
    settled = max(os.stat(p).st_ctime_ns for p in folder.iterdir()) + 2_000_000_000
    while time.time_ns() <= settled:  # files changed in the last 2 s are not remembered
        time.sleep(0.05)
    assert len(ingest_folder(lh, folder, "bronze.c").files_ingested) == 2
    cache = sqlite3.connect(Path(lh.root) / "_ingest" / "file_ids.sqlite")
    with cache:
        remembered = dict(cache.execute("SELECT path, id FROM file_ids"))
        assert set(remembered) == {str(folder / "a.csv"), str(folder / "b.csv")}
        # Unchanged files are not read again: what the cache says is what counts.
        cache.execute("UPDATE file_ids SET id = 'file:sha256:0:1' WHERE path LIKE '%a.csv'")
    assert ingest_folder(lh, folder, "bronze.c").files_ingested == [str(folder / "a.csv")]
    # New bytes of the same size under the old modification time: ctime tells.
    stat = os.stat(folder / "b.csv")
    (folder / "b.csv").write_text("id,kind\n3,z\n")
    os.utime(folder / "b.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ingest_folder(lh, folder, "bronze.c").files_ingested == [str(folder / "b.csv")]
    assert lh.sql("SELECT list(id ORDER BY id) FROM bronze.c").scalar() == [1, 1, 2, 3]
    cache.close()


def test_missing_values_are_null_and_empty_text_stays_empty_in_every_format(lh, tmp_path):
    """An empty unquoted CSV field is NULL for every type, a quoted "" is ''; JSON null is
    NULL and "" is ''; Parquet as written."""
    folder = tmp_path / "nulls"
    folder.mkdir()
    (folder / "a.csv").write_text(
        'id,name,n,x,at,ok,code\n'
        '1,,,,,,""\n'
        '2,"",5,1.5,2026-11-01 10:00:00,true,NA\n'
        '3,ann,,,,false,null\n'
    )
    (folder / "a2.csv").write_text("id,name,n,nothing\n10,,,\n11,,,\n")  # columns of nulls
    write_lines(folder / "b.jsonl", [{"id": 4, "name": None, "code": ""}, {"id": 5, "name": ""}])
    write_lines(  # the per-line reader (a nested value) reads them the same way
        folder / "c.jsonl", [{"id": 6, "name": None, "code": "", "tags": ["t"]}]
    )
    (folder / "d.json").write_text(json.dumps([{"id": 7, "name": None, "code": ""}]))
    pq.write_table(pa.table({"id": [8, 9], "name": [None, ""], "code": ["", None]}),
                   folder / "e.parquet")
    ingest_folder(lh, folder, "bronze.nulls")
    got = lh.sql(
        'SELECT id, name, n, x, "at", ok, code FROM bronze.nulls ORDER BY id'
    ).rows()
    assert [(r[0], r[1], r[6]) for r in got] == [
        (1, None, ""),
        (2, "", "NA"),
        (3, "ann", "null"),
        (4, None, ""),
        (5, "", None),
        (6, None, ""),
        (7, None, ""),
        (8, None, ""),
        (9, "", None),
        (10, None, None),
        (11, None, None),
    ]
    assert "nothing" not in lh.table("bronze.nulls").schema.names  # no type to give it yet
    assert got[0][2:6] == (None, None, None, None) and got[2][2:5] == (None, None, None)
    assert got[1][2:6] == (5, 1.5, datetime(2026, 11, 1, 10), True)


def test_a_pipeline_pointed_at_a_copy_of_its_landing_folder_ingests_nothing(lh, landing):
    import shutil

    from lakehouse.pipeline import load_pipeline, run_pipeline

    folder = landing.parent / "pipeline"
    (folder / "bronze").mkdir(parents=True)
    (folder / "bronze" / "events.yml").write_text("kind: files\npath: ${landing}\n")
    run_pipeline(lh, load_pipeline(folder, {"landing": str(landing)}))
    assert counts(lh) == (7, 2)
    copy = landing.parent / "copy"
    shutil.copytree(landing, copy)
    report = run_pipeline(lh, load_pipeline(folder, {"landing": str(copy)}))
    assert counts(lh) == (7, 2)
    [bronze] = [d for d in report.datasets if d.dataset == "bronze.events"]
    assert bronze.rows_written == 0 and "(0 new file(s))" in bronze.strategy


def test_csv_dialects_and_bad_rows_are_read_as_a_user_expects(lh, tmp_path):
    """A semicolon, tab or bar delimiter is found from the header (comma otherwise, quotes
    respected); a row with too many or too few fields goes to the quarantine on its own,
    not with the whole file; a JSON document nested past the parser's limit is quarantined,
    not a crash."""
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "a.csv").write_bytes('\ufeffid;"name; full";amount\n1;Ann;3,5\n2;;\n'.encode())
    (folder / "b.tsv").write_text("id\tname\n3\tBob\n")
    (folder / "c.csv").write_text('id|name\n4|"Cy|d"\n')
    (folder / "d.csv").write_text('id,name\n5,"Di, E."\n6,Ed,extra\n7\n8,Flo\n')
    (folder / "e.json").write_text("[" * 50_000 + "]" * 50_000)
    report = ingest_folder(lh, folder, "bronze.people")
    assert report.rows == 6 and report.quarantined == 3
    rows = lh.sql('SELECT id, name, "name; full" FROM bronze.people ORDER BY id').rows()
    assert rows == [
        (1, None, "Ann"), (2, None, None), (3, "Bob", None), (4, "Cy|d", None),
        (5, "Di, E.", None), (8, "Flo", None),
    ]
    reasons = sorted(
        lh.sql("SELECT raw_payload, reason FROM bronze.people_quarantine").rows(), key=repr
    )
    assert [r for r in reasons if r[0] in ("6,Ed,extra", "7")] == [
        ("6,Ed,extra", "unreadable CSV row: 3 field(s), the header has 2"),
        ("7", "unreadable CSV row: 1 field(s), the header has 2"),
    ]
    assert any(reason == "JSON nested too deeply to read" for _, reason in reasons)
