"""The landing folder: the four sources delivered as files, drop after drop, with what real
deliveries carry (malformed lines, repeated, late and reordered change events), and
ingested into bronze by the whole-file readers exactly as the per-line reader would."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from lakehouse import LakehouseError
from lakehouse.demo import generators as g
from lakehouse.demo.landing import SOURCES, add_drop, read_manifest, write_sources
from lakehouse.ingest.files import ingest_folder
from tests.test_generators import replay
from tests.test_ingest_files import per_line, same_rows, whole

START = datetime(2026, 11, 1, tzinfo=UTC)
SUFFIXES = {"app_events": ".jsonl", "clickstream": ".csv", "cdc_changes": ".jsonl"}
SUFFIXES["user_events"] = ".jsonl"


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sources") / "landing"
    write_sources(folder, events=3000, drops=3, start=START)
    return folder


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_one_file_per_drop_and_source_in_its_format(landing, tmp_path):
    manifest = read_manifest(landing)
    parameters = dict(manifest["parameters"])
    assert parameters.pop("formats") == {s: x.removeprefix(".") for s, x in SUFFIXES.items()}
    assert parameters == {
        "events": 3000,
        "sessions": 1600,
        "changes": 600,
        "user_events": 6000,
        "drops": 3,
        "days": 2,
        "start": START.isoformat(),
        "seed": 7,
    }
    slices = [(when(d["from"]), when(d["to"])) for d in manifest["drops"]]
    assert slices[0][0] == START and slices[-1][1] == START + timedelta(days=2)
    for source, suffix in SUFFIXES.items():
        names = sorted(p.name for p in (landing / source).iterdir())
        assert names == [f"drop-{k:04d}{suffix}" for k in (1, 2, 3)]
        recorded = manifest["sources"][source]["files"]
        assert [f["name"] for f in recorded] == names
        for f in recorded:
            path = landing / source / f["name"]
            count = pacsv.read_csv(path).num_rows if suffix == ".csv" else len(lines(path))
            assert count == f["rows"]
    for k, path in enumerate(sorted((landing / "user_events").iterdir())):
        times = [when(json.loads(line)["event_time"]) for line in lines(path)]
        assert all(slices[k][0] <= t < slices[k][1] for t in times)
    clicks = pacsv.read_csv(landing / "clickstream" / "drop-0002.csv")
    times = clicks.column("click_time").to_pylist()
    assert all(slices[1][0] <= t < slices[1][1] for t in times)
    assert (landing / "_generated.json").is_file()

    parquet = write_sources(tmp_path / "p", events=300, drops=2, start=START, formats="parquet")
    assert {s: [p.name for p in ps] for s, ps in parquet.items()} == {
        s: ["drop-0001.parquet", "drop-0002.parquet"] for s in SOURCES
    }
    delivered = pa.concat_tables(pq.read_table(p) for p in parquet["app_events"])
    assert delivered.equals(g.app_events(300, start=START)), "parquet holds the rows as made"
    mixed = write_sources(tmp_path / "m", events=100, drops=1, formats={"clickstream": "jsonl"})
    assert [p.name for p in mixed["clickstream"]] == ["drop-0001.jsonl"]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert read_manifest(tmp_path / "m")["parameters"]["start"] in {
        (today - timedelta(days=2)).isoformat(),
        (today - timedelta(days=1)).isoformat(),  # midnight passed meanwhile
    }
    with pytest.raises(LakehouseError, match="unknown format"):
        write_sources(tmp_path / "x", formats="xml")
    with pytest.raises(LakehouseError, match="unknown source"):
        write_sources(tmp_path / "x", formats={"orders": "csv"})
    with pytest.raises(LakehouseError, match="already holds files"):
        write_sources(landing)


def test_same_seed_same_files(tmp_path):
    first = write_sources(tmp_path / "a", events=1200, drops=2, start=START)
    again = write_sources(tmp_path / "b", events=1200, drops=2, start=START)
    other = write_sources(tmp_path / "c", events=1200, drops=2, start=START, seed=8)
    for source in SOURCES:
        for a, b, c in zip(first[source], again[source], other[source], strict=True):
            assert a.read_bytes() == b.read_bytes()
            assert a.read_bytes() != c.read_bytes()


def test_malformed_app_events_go_to_the_quarantine(lh, landing):
    malformed, total = [], 0
    for path in sorted((landing / "app_events").iterdir()):
        for line in lines(path):
            total += 1
            try:
                json.loads(line)
            except json.JSONDecodeError:
                malformed.append(line)
    recorded = read_manifest(landing)["sources"]["app_events"]["files"]
    assert sum(f["malformed"] for f in recorded) == len(malformed)
    assert 2 <= len(malformed) <= 20  # about 0.2% of 3,000
    report = ingest_folder(lh, landing / "app_events", "bronze.app_events")
    assert report.quarantined == len(malformed) and report.rows == total - len(malformed)
    bad = lh.sql("SELECT raw_payload, reason FROM bronze.app_events_quarantine").rows()
    assert sorted(r[0] for r in bad) == sorted(malformed)
    assert all("invalid JSON" in r[1] for r in bad)
    # What silver has to deal with is in bronze: replays and invalid events.
    counts = lh.sql(
        """SELECT count(*) - count(DISTINCT event_id), count(*) FILTER (user_id IS NULL),
                  count(*) FILTER (event_type = 'unknown'), count(*) FILTER (amount < 0)
           FROM bronze.app_events"""
    ).rows()[0]
    assert all(c > 0 for c in counts)


def test_change_events_come_late_twice_and_out_of_order(landing):
    drops = read_manifest(landing)["drops"]
    recorded = read_manifest(landing)["sources"]["cdc_changes"]["files"]
    delivered: dict[int, str] = {}
    seen: Counter[int] = Counter()
    for k, path in enumerate(sorted((landing / "cdc_changes").iterdir())):
        texts = lines(path)
        events = [json.loads(t) for t in texts]
        sequences = [e["sequence"] for e in events]
        assert sequences != sorted(sequences), "a little out of order"
        assert max(abs(a - b) for a, b in zip(sequences, sorted(sequences), strict=True)) < 200
        late = sum(when(e["changed_at"]) < when(drops[k]["from"]) for e in events)
        assert late == recorded[k]["late"]
        assert late == 0 if k == 0 else 3 <= late <= 25  # about 5% of 200
        twice = len(sequences) - len(set(sequences))
        assert twice == recorded[k]["duplicates"] and twice <= 15
        for text, sequence in zip(texts, sequences, strict=True):
            assert delivered.setdefault(sequence, text) == text, "a repeat is the same line"
        seen.update(sequences)
    assert sorted(seen) == list(range(1, 601)), "every change delivered"
    assert 3 <= sum(c - 1 for c in seen.values()) <= 30  # about 2% of 600 twice
    log = [json.loads(delivered[s]) for s in sorted(delivered)]
    assert replay(log)


def ids(folder: Path, source: str, column: str, names: list[str]) -> list:
    out = []
    for name in names:
        path = folder / source / name
        if path.suffix == ".csv":
            out += pacsv.read_csv(path).column(column).to_pylist()
        else:
            out += [json.loads(t)[column] for t in lines(path) if t.endswith("}")]
    return out


def test_add_drop_continues_without_id_collisions(tmp_path):
    folder = tmp_path / "landing"
    write_sources(folder, events=2000, drops=2, start=START)
    before = read_manifest(folder)
    old = {s: [f["name"] for f in e["files"]] for s, e in before["sources"].items()}
    added = add_drop(folder, fraction=0.05)
    assert {s: [p.name for p in ps] for s, ps in added.items()} == {
        s: [f"drop-0003{SUFFIXES[s]}"] for s in SOURCES
    }
    manifest = read_manifest(folder)
    assert [d["drop"] for d in manifest["drops"]] == [1, 2, 3]
    begin = when(manifest["drops"][2]["from"])
    assert begin >= when(before["newest"]) and begin >= START + timedelta(days=2)
    new = {s: [p.name for p in ps] for s, ps in added.items()}
    for source, column in [
        ("app_events", "event_id"),
        ("clickstream", "click_id"),
        ("clickstream", "session_id"),
        ("user_events", "event_id"),
    ]:
        earlier, fresh = (
            ids(folder, source, column, old[source]),
            ids(folder, source, column, new[source]),
        )
        assert fresh and not set(earlier) & set(fresh), f"{source}.{column} ids are new"
    app = ids(folder, "app_events", "event_time", new["app_events"])
    assert 90 <= len(lines(added["app_events"][0])) <= 110  # 5% of 2,000
    assert min(when(t) for t in app) >= begin
    # The change log goes on: next sequences, new keys for inserts, only live rows touched.
    old_log = [json.loads(t) for n in old["cdc_changes"] for t in lines(folder / "cdc_changes" / n)]
    new_log = [json.loads(t) for t in lines(added["cdc_changes"][0])]
    last = max(e["sequence"] for e in old_log)
    assert {e["sequence"] for e in new_log} == set(range(last + 1, last + 21))
    assert min(when(e["changed_at"]) for e in new_log) >= begin
    unique = {e["sequence"]: e for e in old_log + new_log}
    replay([unique[s] for s in sorted(unique)])
    inserted = {(e["table_name"], e["primary_key"]) for e in old_log}
    for e in new_log:
        if e["operation"] == "insert":
            assert (e["table_name"], e["primary_key"]) not in inserted
    again = add_drop(folder, fraction=0.05)
    assert again["app_events"][0].name == "drop-0004.jsonl"
    assert read_manifest(folder)["sources"]["user_events"]["generated"] == 4000 + 200 + 210
    with pytest.raises(LakehouseError, match="seed 7 was used"):
        add_drop(folder, seed=7)
    with pytest.raises(LakehouseError, match="no _generated.json"):
        add_drop(tmp_path)


def test_whole_file_reading_equals_the_per_line_reader(lh, landing):
    app = read_manifest(landing)["sources"]["app_events"]["files"]
    broken = max(app, key=lambda f: f["malformed"])["name"]  # a file with malformed lines
    for source, name in [
        ("app_events", broken),
        ("cdc_changes", "drop-0002.jsonl"),
        ("user_events", "drop-0003.jsonl"),
    ]:
        path = landing / source / name
        assert whole(path) is not None, "read whole, not line by line"
        ingest_folder(lh, landing / source, f"bronze.fast_{source}")
        per_line(lh, f"bronze.slow_{source}", path)
        same_rows(lh, f"bronze.fast_{source}", f"bronze.slow_{source}", path)
    path = landing / "app_events" / broken
    same_rows(lh, "bronze.fast_app_events_quarantine", "bronze.slow_app_events_quarantine", path)


def test_parquet_sources_land_with_their_types(lh, tmp_path):
    written = write_sources(tmp_path / "landing", events=400, drops=2, formats="parquet")
    seen = []
    report = ingest_folder(
        lh,
        tmp_path / "landing" / "app_events",
        "bronze.app_events",
        on_file=lambda p, n: seen.append((p.name, n)),
    )
    assert report.rows == 400 and [n for _, n in seen] == [
        pq.read_metadata(p).num_rows for p in written["app_events"]
    ]
    schema = lh.table("bronze.app_events").schema
    assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("amount").type == pa.float64()
