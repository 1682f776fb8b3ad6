"""Kafka into bronze and the real-time windows, on a real broker process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse import Lakehouse, LakehouseError
from lakehouse.ingest.kafka import KafkaSettings, partition_mark
from lakehouse.streaming.loop import run_stream
from tests.helpers.kafka import kafka, new_topic, send, tansu

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory):
    with kafka(tmp_path_factory.mktemp("broker")) as address:
        yield address


def stream(lh, bootstrap, topic, table="bronze.events", **kwargs):
    settings = KafkaSettings(
        bootstrap,
        topic,
        kwargs.pop("group", "g"),
        interval=kwargs.pop("interval", 0.3),
        batch_size=kwargs.pop("batch_size", 100_000),
        format=kwargs.pop("format", "json"),
        key_columns=kwargs.pop("key_columns", None),
        instance_id=kwargs.pop("instance_id", "member-1"),
    )
    return run_stream(lh, table, settings, idle_seconds=kwargs.pop("idle", 1.5), **kwargs)


def events(n: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps({"event_id": f"e{i}", "n": i, "kind": "click" if i % 3 else "view"}).encode()
        for i in range(start, start + n)
    ]


def test_messages_land_once_and_bad_ones_go_to_quarantine(lh, bootstrap):
    topic = new_topic(bootstrap)
    bad = [b"not json", b"[1, 2]", b"", b"   ", b'{"event_id": "cut', b"\xff\xfe"]
    send(bootstrap, topic, events(3000) + bad + events(10, start=3000))
    stats = stream(lh, bootstrap, topic)
    assert stats.messages == 3016 and stats.quarantined == 6
    rows = lh.sql("SELECT count(*), count(DISTINCT event_id), min(n), max(n) FROM bronze.events")
    assert rows.rows() == [(3010, 3010, 0, 3009)]
    sources = lh.sql("SELECT _source FROM bronze.events").to_arrow().column(0).to_pylist()
    assert len(set(sources)) == 3010 and all(s.startswith(f"{topic}:") for s in sources)
    quarantined = lh.sql(
        'SELECT raw_bytes, reason, topic, partition, "offset" FROM bronze.events_quarantine'
    ).rows()
    assert sorted(q[0] for q in quarantined) == sorted(bad)
    reasons = {q[0]: q[1] for q in quarantined}
    assert reasons[b"[1, 2]"] == "not a JSON object"
    assert reasons[b""] == reasons[b"   "] == "empty message"
    assert reasons[b"not json"].startswith("invalid JSON")
    assert all(q[2] == topic and q[3] in (0, 1, 2) and q[4] >= 0 for q in quarantined)
    # The table holds the last offset of each partition, in the same commits as the rows.
    table = lh.table("bronze.events")
    held = {p: table.transaction_version(partition_mark(topic, p)) for p in range(3)}
    last = lh.sql(
        """SELECT CAST(split_part(_source, ':', 2) AS INT) p,
                   max(CAST(split_part(_source, ':', 3) AS BIGINT))
            FROM bronze.events GROUP BY 1"""
    ).rows()
    for p, offset in last:
        assert held[p] >= offset
    # Another consumer group, or the same one again: the table decides, nothing lands twice.
    assert stream(lh, bootstrap, topic, group="other", idle=1.0).messages == 0
    send(bootstrap, topic, events(5, start=5000))
    assert stream(lh, bootstrap, topic, group="third", idle=1.0).messages == 5
    assert lh.sql("SELECT count(*) FROM bronze.events").scalar() == 3015
    assert lh.sql("SELECT count(*) FROM bronze.events_quarantine").scalar() == 6


def test_schema_drift_and_rescued_values(lh, bootstrap):
    topic = new_topic(bootstrap, partitions=1)
    send(bootstrap, topic, [b'{"id": 1, "v": 10}', b'{"id": 2, "v": 11}'])
    stream(lh, bootstrap, topic, table="bronze.drift")
    send(bootstrap, topic, [b'{"id": 3, "v": "eleven", "extra": true}', b'{"id": 4, "v": 12}'])
    stream(lh, bootstrap, topic, table="bronze.drift")
    rows = lh.sql(
        "SELECT id, v, extra, _rescued_data FROM bronze.drift ORDER BY id"
    ).rows()
    assert rows[0] == (1, 10, None, None)
    assert rows[2][:3] == (3, None, True) and json.loads(rows[2][3]) == {"v": "eleven"}
    assert rows[3][:2] == (4, 12)


def test_a_batch_landed_again_is_skipped(lh, bootstrap):
    """What a restart after a crash between the bronze commit and the group commit does:
    the same messages come again, and the table's offsets turn them away."""
    import numpy as np

    from lakehouse.ingest.kafka import Batch, land

    values = events(4) + [b"oops"]
    partitions = np.array([0, 0, 1, 1, 1], np.int32)
    batch = Batch("topic-x", partitions, np.arange(5, dtype=np.int64), values)
    first = land(lh, "bronze.again", batch)
    assert first.rows.num_rows == 4 and first.quarantined == 1
    assert first.marks == {0: 1, 1: 4}
    again = land(lh, "bronze.again", batch, quarantine_marks=first.marks)
    assert again.version == first.version  # nothing committed
    assert lh.sql("SELECT count(*) FROM bronze.again").scalar() == 4
    assert lh.sql("SELECT count(*) FROM bronze.again_quarantine").scalar() == 1
    assert len(batch.after(first.marks)) == 0


def user_event(i: int, at: datetime, rng: random.Random) -> dict:
    kind = rng.choices(["login", "click", "purchase", "logout"], [2, 6, 1, 1])[0]
    return {
        "event_id": f"u{i}",
        "user_id": rng.randint(1, 50),
        "event_type": kind,
        "page": "/checkout" if kind == "purchase" else "/home",
        "source": rng.choice(["web", "mobile"]),
        "amount": round(rng.uniform(1, 200), 2) if kind == "purchase" else None,
        "event_time": at.isoformat(),
    }


def expected_windows(on_time: list[dict], late: list[dict]) -> dict[str, Counter]:
    def minute(e: dict) -> datetime:
        return datetime.fromisoformat(e["event_time"]).replace(second=0, microsecond=0)

    out = {
        "events": Counter((minute(e), e["event_type"]) for e in on_time),
        "logins": Counter(
            (minute(e), e["source"]) for e in on_time if e["event_type"] == "login"
        ),
        "purchases": Counter(minute(e) for e in on_time if e["event_type"] == "purchase"),
        "late": Counter((minute(e), e["event_type"]) for e in late),
    }
    revenue: Counter = Counter()
    for e in on_time:
        if e["event_type"] == "purchase":
            revenue[minute(e)] += e["amount"]
    out["revenue"] = revenue
    return out


def test_windows_equal_a_computation_from_the_events(lh, bootstrap):
    """Out-of-order events (up to 50 s, under the 2-minute watermark) count in their
    windows; events older than the watermark when they come are counted as late and kept
    in bronze; the counts equal ones computed from the produced events."""
    rng = random.Random(5)
    topic = new_topic(bootstrap)

    def spread(first: int, n: int, start: datetime, seconds: float) -> list[dict]:
        at = [start + timedelta(seconds=i * seconds / n - rng.uniform(0, 50)) for i in range(n)]
        return [user_event(first + i, t, rng) for i, t in enumerate(at)]

    phase1 = spread(0, 900, T0 + timedelta(seconds=60), 240)  # 10:00 to 10:05
    untimed = [{"event_id": "no-time", "event_type": "click", "source": "web"}]
    send(bootstrap, topic, [json.dumps(e).encode() for e in phase1 + untimed])
    first = stream(lh, bootstrap, topic, realtime=True)
    assert first.late == 0
    # The newest time seen is about 10:05, so the watermark is about 10:03.
    old = [T0 + timedelta(seconds=rng.uniform(0, 150)) for _ in range(40)]
    late = [user_event(5000 + i, t, rng) for i, t in enumerate(old)]
    phase2 = spread(1000, 600, T0 + timedelta(seconds=330), 180)
    mixed = list(phase2)
    for event in late:  # late events arrive among the others
        mixed.insert(rng.randrange(len(mixed) + 1), event)
    send(bootstrap, topic, [json.dumps(e).encode() for e in mixed])
    second = stream(lh, bootstrap, topic, realtime=True)
    assert second.late == 40

    want = expected_windows(phase1 + phase2, late)
    got = Counter(
        {
            (w, t): n
            for w, t, n in lh.sql(
                "SELECT window_start, event_type, events FROM realtime.events_per_minute"
            ).rows()
        }
    )
    assert got == want["events"]
    logins = lh.sql("SELECT window_start, source, logins FROM realtime.logins_per_source")
    assert Counter({(w, s): n for w, s, n in logins.rows()}) == want["logins"]
    purchases = lh.sql(
        "SELECT window_start, purchases, revenue FROM realtime.purchases_per_minute"
    ).rows()
    assert Counter({w: n for w, n, _ in purchases}) == want["purchases"]
    for w, _, revenue in purchases:
        assert revenue == pytest.approx(want["revenue"][w])
    late_rows = lh.sql("SELECT window_start, event_type, events FROM realtime.late_events")
    assert Counter({(w, t): n for w, t, n in late_rows.rows()}) == want["late"]
    # Window bounds, and every event (late and untimed ones too) is in bronze.
    bounds = lh.sql(
        "SELECT count(*) FROM realtime.events_per_minute "
        "WHERE window_end - window_start <> INTERVAL 1 MINUTE "
        "OR extract(second FROM window_start) <> 0"
    ).scalar()
    assert bounds == 0
    assert lh.sql("SELECT count(*) FROM bronze.events").scalar() == 900 + 1 + 600 + 40


def test_windows_brought_level_after_a_crash_between_commits(lh, bootstrap):
    """Bronze committed a batch but the process died before the windows did: the next
    start counts that batch from bronze, once."""
    from lakehouse.streaming.windows import Windows

    rng = random.Random(8)
    topic = new_topic(bootstrap, partitions=2)
    batch1 = [user_event(i, T0 + timedelta(seconds=i), rng) for i in range(200)]
    send(bootstrap, topic, [json.dumps(e).encode() for e in batch1])
    stream(lh, bootstrap, topic, realtime=True)
    batch2 = [user_event(1000 + i, T0 + timedelta(seconds=200 + i), rng) for i in range(300)]
    send(bootstrap, topic, [json.dumps(e).encode() for e in batch2])
    stream(lh, bootstrap, topic)  # bronze only: as if killed before the windows' commits
    windows = Windows(lh, "bronze.events", topic)
    assert windows.behind({0: 10**9}) is not None  # behind bronze
    stats = stream(lh, bootstrap, topic, realtime=True)
    assert stats.messages == 0 and stats.caught_up == 300
    total = lh.sql("SELECT sum(events) FROM realtime.events_per_minute").scalar()
    assert total == 500
    again = stream(lh, bootstrap, topic, realtime=True)
    assert again.caught_up == 0
    assert lh.sql("SELECT sum(events) FROM realtime.events_per_minute").scalar() == 500


def test_debezium_topic_applies_to_silver(lh, bootstrap, tmp_path):
    """Debezium change events from Kafka land as change rows; the pipelines' CDC apply
    gives the source table's final state. The events are MySQL's: source.ts_ms is 0 and
    only the binlog position orders them, also when the connector, restarted, sends a
    stretch of them again at later offsets. SCD 1 is the current rows of SCD 2."""
    from lakehouse.pipeline import load_pipeline, run_pipeline

    topic = new_topic(bootstrap, partitions=3)
    state: dict[int, dict] = {}
    values, keys = [], []
    rng = random.Random(3)
    file, pos = 999_999, 4
    for n in range(1, 301):
        key = rng.randint(1, 40)
        before = state.get(key)
        if before is None:
            op, after = "c", {"id": key, "name": f"n{n}", "score": n}
        elif rng.random() < 0.2:
            op, after = "d", None
        else:
            op, after = "u", {**before, "name": f"n{n}", "score": n}
        if after is None:
            state.pop(key)
        else:
            state[key] = after
        if n % 120 == 0:
            file, pos = file + 1, 4  # mysql-bin.999999, then mysql-bin.1000000
        pos += rng.randint(50, 900)
        envelope = {
            "before": before,
            "after": after,
            "op": op,
            "ts_ms": 1_700_000_000_000,  # handled in the same millisecond
            "source": {
                "connector": "mysql",
                "table": "people",
                "db": "app",
                "ts_ms": 0,
                "snapshot": "false",
                "file": f"mysql-bin.{file:06d}",
                "pos": pos,
                "row": 0,
                "server_id": 1,
            },
        }
        values.append(json.dumps({"schema": {}, "payload": envelope}).encode())
        keys.append(json.dumps({"id": key}).encode())
    values.append(None)  # a tombstone: skipped
    keys.append(b'{"id": 1}')
    # A table of a connector without log positions: ordered by the envelope's ts_ms, then
    # the offsets; its insert is sent again too.
    note = {"table": "notes", "db": "app", "ts_ms": 0}
    names = [None, "a", "b", "c"]
    notes = [
        {"before": None if n == 1 else {"id": 1, "text": names[n - 1]},
         "after": {"id": 1, "text": names[n]}, "op": "c" if n == 1 else "u",
         "ts_ms": 1_700_000_000_000, "source": note}
        for n in (1, 2, 3)
    ]
    values += [json.dumps(n).encode() for n in notes]
    keys += [b'{"id": 1}'] * 3
    send(bootstrap, topic, values, keys=keys)
    stats = stream(
        lh, bootstrap, topic, table="bronze.people_changes", format="debezium", batch_size=100
    )
    assert stats.batches > 3
    # The connector, restarted, sends a stretch again: later offsets, a later stream.
    send(bootstrap, topic, values[100:220] + values[-3:-2], keys=keys[100:220] + keys[-3:-2])
    stream(lh, bootstrap, topic, table="bronze.people_changes", format="debezium")
    texts = lh.sql(
        "SELECT json_extract_string(after, '$.text') FROM bronze.people_changes "
        "WHERE table_name = 'notes' ORDER BY sequence"
    ).rows()
    assert texts == [("a",), ("a",), ("b",), ("c",)]  # the copy sorts with its original
    folder = tmp_path / "p"
    (folder / "silver").mkdir(parents=True)
    (folder / "pipeline.yml").write_text("name: people\n")
    query = """-- kind: cdc
-- scd: {scd}
-- keys: [id]
-- sequence_by: sequence
-- delete_when: operation = 'delete'
-- except_columns: [operation]
SELECT CAST(json_extract(primary_key, '$.id') AS BIGINT) AS id,
       json_extract_string(after, '$.name') AS name,
       CAST(json_extract(after, '$.score') AS BIGINT) AS score,
       operation, sequence
FROM bronze.people_changes WHERE table_name = 'people'
"""
    (folder / "silver" / "people.sql").write_text(query.format(scd=1))
    (folder / "silver" / "people_history.sql").write_text(query.format(scd=2))
    report = run_pipeline(lh, load_pipeline(folder))
    assert report.status == "succeeded", report
    got = sorted(lh.sql("SELECT id, name, score FROM silver.people").rows())
    assert got == sorted((k, v["name"], v["score"]) for k, v in state.items())
    current = "SELECT id, name, score FROM silver.people_history WHERE is_current"
    assert sorted(lh.sql(current).rows()) == got


def test_the_stream_runs_on_tansu_too(lh):
    """The same client code on a second Kafka-protocol broker."""
    with tansu() as address:
        topic = new_topic(address, partitions=2)
        send(address, topic, events(500))
        stats = stream(
            lh, address, topic, idle=4.0, group="tansu"
        )
        assert stats.messages == 500
        assert lh.sql("SELECT count(DISTINCT event_id) FROM bronze.events").scalar() == 500


def cli(*args, env=None, timeout=120):
    code = "from lakehouse.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_cli_produce_and_stream(tmp_path, bootstrap):
    warehouse = str(tmp_path / "wh")
    topic = f"cli-{os.getpid()}"
    sent = cli("produce", "--topic", topic, "--rate", "2000", "--count", "500",
               "--bootstrap", bootstrap, "--late-share", "0")
    assert sent.returncode == 0, sent.stderr
    assert "500 events sent" in sent.stdout
    out = cli("-w", warehouse, "stream", "--topic", topic, "--table", "bronze.user_events",
              "--bootstrap", bootstrap, "--realtime", "--idle-exit", "2")
    assert out.returncode == 0, out.stderr
    assert "500 messages" in out.stdout and "msg/s" in out.stdout and "lag" in out.stdout
    lh = Lakehouse(warehouse)
    assert lh.sql("SELECT count(DISTINCT event_id) FROM bronze.user_events").scalar() == 500
    assert lh.sql("SELECT sum(events) FROM realtime.events_per_minute").scalar() == 500
    types = {r[0] for r in lh.sql("SELECT DISTINCT event_type FROM bronze.user_events").rows()}
    assert types <= {"login", "click", "purchase", "logout"} and "click" in types


def test_clear_errors(tmp_path, bootstrap):
    lh = Lakehouse(tmp_path / "wh")
    with pytest.raises(LakehouseError, match="not a Kafka topic name"):
        stream(lh, bootstrap, "bad topic!")
    with pytest.raises(LakehouseError, match="land in bronze"):
        stream(lh, bootstrap, "ok", table="silver.events")
    out = cli("-w", str(tmp_path / "wh"), "stream", "--topic", "t", "--table", "bronze.x",
              "--bootstrap", "127.0.0.1:1", "--idle-exit", "1")
    assert out.returncode == 1
    assert "cannot reach Kafka at 127.0.0.1:1" in out.stderr and "hint" in out.stderr
    assert "Traceback" not in out.stderr


def test_demo_stream(tmp_path):
    warehouse = tmp_path / "demo"
    out = cli("-w", str(warehouse), "demo", "--stream", "--seconds", "6", "--rate", "200")
    assert out.returncode == 0, out.stderr
    assert "realtime.events_per_minute" in out.stdout
    lh = Lakehouse(warehouse)
    landed = lh.sql("SELECT count(*) FROM bronze.user_events").scalar()
    counted = lh.sql(
        "SELECT (SELECT sum(events) FROM realtime.events_per_minute)"
        " + coalesce((SELECT sum(events) FROM realtime.late_events), 0)"
    ).scalar()
    assert landed > 200 and counted == landed
