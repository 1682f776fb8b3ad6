"""The demo's source generators produce what SPEC section 11 describes."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.compute as pc

from lakehouse.ingest import generators as g


def test_app_events_defaults():
    t = g.app_events()
    assert t.num_rows == 1500
    assert set(t.column("event_type").to_pylist()) == set(g.EVENT_TYPES)
    assert set(t.column("app_type").to_pylist()) == set(g.APP_TYPES)
    assert len(set(t.column("event_id").to_pylist())) == 1500
    days = {ts.date() for ts in t.column("event_time").to_pylist()}
    assert len(days) == 2
    purchases = t.filter(pc.equal(t.column("event_type"), "purchase"))
    assert purchases.column("amount").null_count == 0
    assert g.app_events().equals(t), "same seed, same events"
    assert not g.app_events(seed=8).equals(t)


def test_clickstream_sessions():
    t = g.clickstream()
    sessions = t.column("session_id").to_pylist()
    assert len(set(sessions)) == 800
    assert set(t.column("page").to_pylist()) <= set(g.CLICK_PAGES)
    depths = t.column("scroll_depth").to_pylist()
    assert min(depths) >= 0 and max(depths) <= 100
    # Within a session: one user, one user agent, clicks in time order.
    by_session: dict[str, list[dict]] = {}
    for row in t.to_pylist():
        by_session.setdefault(row["session_id"], []).append(row)
    for clicks in by_session.values():
        assert len({c["user_id"] for c in clicks}) == 1
        assert len({c["user_agent"] for c in clicks}) == 1
        times = [c["click_time"] for c in clicks]
        assert times == sorted(times)


def test_change_events_replay_to_a_consistent_database():
    events = g.change_events()
    assert len(events) == 300
    assert {e["operation"] for e in events} == {"insert", "update", "delete"}
    assert [e["sequence"] for e in events] == list(range(1, 301))
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
    assert state, "some rows survive"


def test_user_events_grow_and_concentrate_on_active_users():
    t = g.user_events()
    assert t.num_rows == 3000
    assert set(t.column("event_type").to_pylist()) == set(g.USER_EVENT_TYPES)
    assert set(t.column("source").to_pylist()) == {"web", "mobile"}
    rows = t.to_pylist()
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
