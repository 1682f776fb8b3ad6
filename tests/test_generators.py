"""The demo's source generators produce what SPEC section 11 describes, at any size."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.demo import generators as g

TS = pa.timestamp("us", tz="UTC")


def test_sources_have_their_columns_and_types():
    assert g.app_events(50).schema == pa.schema(
        [
            ("event_id", pa.string()),
            ("user_id", pa.int64()),
            ("event_type", pa.string()),
            ("app_type", pa.string()),
            ("page", pa.string()),
            ("event_time", TS),
            ("amount", pa.float64()),
        ]
    )
    assert g.clickstream(20).schema == pa.schema(
        [
            ("click_id", pa.string()),
            ("session_id", pa.string()),
            ("user_id", pa.int64()),
            ("page", pa.string()),
            ("click_time", TS),
            ("scroll_depth", pa.int64()),
            ("user_agent", pa.string()),
        ]
    )
    assert g.change_events(20).schema == pa.schema(
        [
            ("table_name", pa.string()),
            ("operation", pa.string()),
            ("primary_key", pa.int64()),
            ("before", pa.string()),
            ("after", pa.string()),
            ("sequence", pa.int64()),
            ("changed_at", pa.string()),
        ]
    )
    assert g.user_events(50).schema == pa.schema(
        [
            ("event_id", pa.string()),
            ("user_id", pa.int64()),
            ("event_type", pa.string()),
            ("page", pa.string()),
            ("source", pa.string()),
            ("amount", pa.float64()),
            ("event_time", TS),
        ]
    )
    for empty in (g.app_events(0), g.clickstream(0), g.change_events(0), g.user_events(0)):
        assert empty.num_rows == 0


def test_app_events_defaults():
    t = g.app_events()
    assert t.num_rows == 1500
    assert set(t.column("event_type").to_pylist()) == {*g.EVENT_TYPES, g.INVALID_EVENT_TYPE}
    assert set(t.column("app_type").to_pylist()) == set(g.APP_TYPES)
    assert set(t.column("page").to_pylist()) <= set(g.PAGES)
    days = {ts.date() for ts in t.column("event_time").to_pylist()}
    assert days == {datetime(2026, 11, 1).date(), datetime(2026, 11, 2).date()}
    users = t.column("user_id").drop_null().to_pylist()
    assert 1 <= min(users) and max(users) <= 200, "200 users for a small sample"
    purchases = t.filter(pc.equal(t.column("event_type"), "purchase"))
    assert purchases.column("amount").null_count == 0
    others = t.filter(pc.not_equal(t.column("event_type"), "purchase"))
    assert others.column("amount").null_count == others.num_rows
    assert g.app_events().equals(t), "same seed, same events"
    assert not g.app_events(seed=8).equals(t)


def test_app_events_replay_about_one_percent_of_events():
    t = g.app_events(20_000)
    rows = t.to_pylist()
    seen: dict[str, int] = {}
    replays = 0
    for i, row in enumerate(rows):
        first = seen.setdefault(row["event_id"], i)
        if first != i:
            replays += 1
            assert rows[first] == row, "a replay repeats the event's values"
    assert 150 <= replays <= 250
    # Delivered after the event, close to the time order.
    times = t.column("event_time").to_pylist()
    assert sum(b < a for a, b in zip(times, times[1:], strict=False)) <= replays
    clean = g.app_events(5000, duplicate_share=0, invalid_share=0)
    assert pc.count_distinct(clean.column("event_id")).as_py() == 5000


def test_about_two_percent_of_app_events_are_invalid_in_one_way():
    t = g.app_events(20_000, duplicate_share=0)
    no_user = pc.is_null(t.column("user_id"))
    unknown = pc.equal(t.column("event_type"), g.INVALID_EVENT_TYPE)
    negative = pc.fill_null(pc.less(t.column("amount"), 0), False)
    columns = (a.to_pylist() for a in (no_user, unknown, negative))
    faults = [sum(x) for x in zip(*columns, strict=True)]
    assert max(faults) == 1, "one fault per invalid event"
    assert 300 <= sum(faults) <= 500
    assert faults.count(0) > 19_000
    for kind in (no_user, unknown, negative):
        assert pc.sum(kind).as_py() > 60
    negatives = t.filter(negative)
    assert set(negatives.column("event_type").to_pylist()) == {"purchase"}
    clean = g.app_events(5000, invalid_share=0)
    assert clean.column("user_id").null_count == 0
    assert g.INVALID_EVENT_TYPE not in clean.column("event_type").to_pylist()


def test_user_base_grows_with_the_volume():
    t = g.app_events(50_000)
    users = pc.count_distinct(t.column("user_id")).as_py()
    assert pc.max(t.column("user_id")).as_py() <= 1000 and users > 200
    assert pc.max(g.app_events(5000, users=30).column("user_id")).as_py() <= 30


def test_clickstream_sessions():
    t = g.clickstream()
    sessions = t.column("session_id").to_pylist()
    assert len(set(sessions)) == 800
    clicks = Counter(sessions)
    assert min(clicks.values()) >= 1 and max(clicks.values()) <= 12
    assert 3 <= t.num_rows / 800 <= 5, "about four clicks a session"
    assert len(set(t.column("click_id").to_pylist())) == t.num_rows
    assert set(t.column("page").to_pylist()) <= set(g.CLICK_PAGES)
    depths = t.column("scroll_depth").to_pylist()
    assert min(depths) >= 0 and max(depths) <= 100
    times = t.column("click_time").to_pylist()
    assert times == sorted(times), "clicks come in time order"
    assert times[-1] < datetime(2026, 11, 3, tzinfo=UTC)
    # Within a session: one user, one user agent, clicks in time order, from the home page.
    by_session: dict[str, list[dict]] = {}
    for row in t.to_pylist():
        by_session.setdefault(row["session_id"], []).append(row)
    for session, rows in by_session.items():
        assert len({c["user_id"] for c in rows}) == 1
        assert len({c["user_agent"] for c in rows}) == 1
        assert [c["click_time"] for c in rows] == sorted(c["click_time"] for c in rows)
        assert rows[0]["page"] == "/home"
        assert [c["click_id"] for c in rows] == [
            f"c{session[1:]}-{i:02d}" for i in range(len(rows))
        ]
    assert g.clickstream().equals(t)
    assert max(g.clickstream(20_000).column("user_id").to_pylist()) <= 800


def replay(events: list[dict]) -> dict[tuple[str, int], dict]:
    """Apply change events to an empty database, checking each against the state."""
    state: dict[tuple[str, int], dict] = {}
    for e in events:
        key = (e["table_name"], e["primary_key"])
        before = None if e["before"] is None else json.loads(e["before"])
        after = None if e["after"] is None else json.loads(e["after"])
        if e["operation"] == "insert":
            assert key not in state and before is None and after is not None
        else:
            assert state[key] == before, "before image is the row as it was"
        if after is None:
            del state[key]
        else:
            state[key] = after
    return state


def test_change_events_replay_to_a_consistent_database():
    events = g.change_events().to_pylist()
    assert len(events) == 300
    assert {e["operation"] for e in events} == {"insert", "update", "delete"}
    assert {e["table_name"] for e in events} == set(g.CDC_TABLES)
    assert [e["sequence"] for e in events] == list(range(1, 301))
    assert replay(events), "some rows survive"
    times = [datetime.fromisoformat(e["changed_at"]) for e in events]
    assert times == sorted(times) and times[0] > datetime(2026, 11, 1, tzinfo=UTC)
    row = json.loads(next(e["after"] for e in events if e["table_name"] == "products"))
    assert isinstance(row["price"], float) and isinstance(row["in_stock"], bool)
    assert g.change_events().equals(g.change_events())


def test_a_longer_change_log_continues_a_shorter_one():
    long = g.change_events(20_000, days=2)
    state = replay(long.to_pylist())
    assert len(state) > 1000
    short = g.change_events(5_000, days=2)
    columns = [c for c in short.column_names if c != "changed_at"]
    assert long.slice(0, 5_000).select(columns).equals(short.select(columns))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    times = [datetime.fromisoformat(t) for t in long.column("changed_at").to_pylist()]
    assert start <= min(times) and max(times) < start + timedelta(days=2)
    assert max(times) > start + timedelta(days=1, hours=23)


def test_user_events_grow_and_concentrate_on_active_users():
    t = g.user_events()
    assert t.num_rows == 3000
    assert set(t.column("event_type").to_pylist()) == set(g.USER_EVENT_TYPES)
    assert set(t.column("source").to_pylist()) == {"web", "mobile"}
    rows = t.to_pylist()
    assert [r["event_time"] for r in rows] == sorted(r["event_time"] for r in rows)
    first_day = {r["user_id"] for r in rows if r["event_time"].date().day == 1}
    everyone = {r["user_id"] for r in rows}
    assert max(everyone) > max(first_day), "the user base grows"
    assert 90 <= len(first_day) <= 200
    # About 80% of events come from the most active fifth of the users.
    counts = Counter(r["user_id"] for r in rows)
    top = sorted(counts.values(), reverse=True)[: max(1, len(counts) // 5)]
    assert 0.7 <= sum(top) / len(rows) <= 0.9
    for r in rows:
        assert (r["amount"] is not None) == (r["event_type"] == "purchase")
        assert r["page"] == "/checkout" or r["event_type"] != "purchase"
    assert len(set(t.column("event_id").to_pylist())) == 3000
    assert g.user_events().equals(t)
    bigger = g.user_events(60_000)  # the user base scales with the volume
    assert 2000 <= pc.count_distinct(bigger.column("user_id")).as_py() <= 4000
