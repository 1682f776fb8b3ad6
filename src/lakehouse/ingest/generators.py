"""Generators for the demo's sources: deterministic for a seed, sized by options."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

EVENT_TYPES = ["app_open", "page_view", "click", "scroll", "share", "purchase"]
EVENT_WEIGHTS = [0.15, 0.35, 0.25, 0.15, 0.04, 0.06]
APP_TYPES = ["ios", "android", "web"]
PAGES = ["/home", "/products", "/product/detail", "/cart", "/checkout", "/search", "/profile"]


def app_events(
    n: int = 1500,
    *,
    users: int = 200,
    days: int = 2,
    start: datetime | None = None,
    seed: int = 7,
) -> pa.Table:
    """App events: event_id, user_id, event_type, app_type, page, event_time, amount."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    seconds = np.sort(rng.integers(0, days * 86400, n))
    times = [start + timedelta(seconds=int(s)) for s in seconds]
    kinds = rng.choice(EVENT_TYPES, n, p=EVENT_WEIGHTS)
    amounts = np.where(kinds == "purchase", np.round(rng.gamma(2.0, 25.0, n), 2), np.nan)
    # A skewed user base: a few heavy users, many light ones.
    user_ids = (rng.zipf(1.6, n) % users) + 1
    return pa.table(
        {
            "event_id": pa.array([f"e{seed}-{i:08d}" for i in range(n)]),
            "user_id": pa.array(user_ids, pa.int64()),
            "event_type": pa.array(kinds),
            "app_type": pa.array(rng.choice(APP_TYPES, n, p=[0.4, 0.35, 0.25])),
            "page": pa.array(rng.choice(PAGES, n)),
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amounts, pa.float64(), mask=np.isnan(amounts)),
        }
    )


CLICK_PAGES = ["/home", "/search", "/products", "/product/detail", "/cart", "/checkout"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) Chrome/131.0 Mobile",
]


def clickstream(
    sessions: int = 800,
    *,
    users: int = 200,
    days: int = 2,
    start: datetime | None = None,
    seed: int = 11,
) -> pa.Table:
    """Clicks grouped in sessions: click_id, session_id, user_id, page, click_time,
    scroll_depth (0-100), user_agent. A session is 1-12 clicks a few seconds to minutes
    apart; its pages wander from the home page towards checkout."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    rows: dict[str, list] = {
        k: []
        for k in (
            "click_id",
            "session_id",
            "user_id",
            "page",
            "click_time",
            "scroll_depth",
            "user_agent",
        )
    }
    for s in range(sessions):
        user = int(rng.integers(1, users + 1))
        agent = USER_AGENTS[int(rng.integers(len(USER_AGENTS)))]
        at = start + timedelta(seconds=int(rng.integers(0, days * 86400 - 3600)))
        page = 0
        for c in range(int(rng.integers(1, 13))):
            rows["click_id"].append(f"c{seed}-{s:06d}-{c:02d}")
            rows["session_id"].append(f"s{seed}-{s:06d}")
            rows["user_id"].append(user)
            rows["page"].append(CLICK_PAGES[page])
            rows["click_time"].append(at)
            rows["scroll_depth"].append(int(rng.integers(0, 101)))
            rows["user_agent"].append(agent)
            at += timedelta(seconds=int(rng.integers(3, 300)))
            page = min(len(CLICK_PAGES) - 1, max(0, page + int(rng.integers(-1, 3))))
    return pa.table(
        {
            **{k: pa.array(v) for k, v in rows.items() if k != "click_time"},
            "click_time": pa.array(rows["click_time"], pa.timestamp("us", tz="UTC")),
        }
    ).select(list(rows))


CDC_TABLES = {
    "customers": lambda rng, key: {
        "customer_id": key,
        "name": f"customer {key}",
        "email": f"customer{key}@example.com",
        "tier": str(rng.choice(["free", "pro", "enterprise"])),
    },
    "products": lambda rng, key: {
        "product_id": key,
        "name": f"product {key}",
        "price": round(float(rng.uniform(1, 500)), 2),
        "in_stock": bool(rng.random() > 0.2),
    },
}


def change_events(
    n: int = 300,
    *,
    start: datetime | None = None,
    seed: int = 13,
) -> list[dict]:
    """Database change events as a source database would emit them, in commit order:
    table_name, operation (insert, update, delete), primary_key, before and after images
    (JSON text, null where the operation has none), sequence (a log position that grows
    with every change) and changed_at. Updates and deletes only touch rows that exist."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    live: dict[str, dict[int, dict]] = {t: {} for t in CDC_TABLES}
    next_key = dict.fromkeys(CDC_TABLES, 1)
    out = []
    at = start
    for seq in range(1, n + 1):
        table = str(rng.choice(list(CDC_TABLES)))
        rows = live[table]
        roll = rng.random()
        if not rows or roll < 0.45:
            key = next_key[table]
            next_key[table] += 1
            before, after, op = None, CDC_TABLES[table](rng, key), "insert"
        else:
            key = int(rng.choice(sorted(rows)))
            before = rows[key]
            if roll < 0.85:
                after = {**before, **_change(table, rng)}
                op = "update"
            else:
                after, op = None, "delete"
        if after is None:
            del rows[key]
        else:
            rows[key] = after
        at += timedelta(seconds=int(rng.integers(1, 600)))
        out.append(
            {
                "table_name": table,
                "operation": op,
                "primary_key": key,
                "before": None if before is None else json.dumps(before, sort_keys=True),
                "after": None if after is None else json.dumps(after, sort_keys=True),
                "sequence": seq,
                "changed_at": at.isoformat(),
            }
        )
    return out


def _change(table: str, rng: np.random.Generator) -> dict:
    if table == "customers":
        return {"tier": str(rng.choice(["free", "pro", "enterprise"]))}
    return {"price": round(float(rng.uniform(1, 500)), 2), "in_stock": bool(rng.random() > 0.2)}


USER_EVENT_TYPES = ["login", "click", "purchase", "logout"]
USER_EVENT_PAGES = ["/home", "/products", "/product/detail", "/cart", "/checkout", "/account"]


def user_events(
    n: int = 3000,
    *,
    initial_users: int = 100,
    growth_per_hour: float = 2.0,
    active_share: float = 0.8,
    days: int = 2,
    start: datetime | None = None,
    seed: int = 17,
) -> pa.Table:
    """Events of the real-time path: event_id, user_id, event_type (login, click,
    purchase, logout), page, source (web or mobile), amount, event_time. The user base
    grows from ``initial_users`` by ``growth_per_hour``; about ``active_share`` of the
    events come from a fifth of the users (the active ones)."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    seconds = np.sort(rng.integers(0, days * 86400, n))
    ids, user_ids, kinds, pages, sources, amounts, times = [], [], [], [], [], [], []
    for i, s in enumerate(seconds):
        base = initial_users + int(growth_per_hour * s / 3600)
        active = max(1, base // 5)
        if rng.random() < active_share:
            user = int(rng.integers(1, active + 1))
        else:
            user = int(rng.integers(active + 1, base + 1)) if base > active else 1
        kind = str(rng.choice(USER_EVENT_TYPES, p=[0.2, 0.6, 0.08, 0.12]))
        ids.append(f"u{seed}-{i:08d}")
        user_ids.append(user)
        kinds.append(kind)
        pages.append(str(rng.choice(USER_EVENT_PAGES)) if kind != "purchase" else "/checkout")
        sources.append("web" if rng.random() < 0.55 else "mobile")
        amounts.append(round(float(rng.gamma(2.0, 30.0)), 2) if kind == "purchase" else None)
        times.append(start + timedelta(seconds=int(s)))
    return pa.table(
        {
            "event_id": pa.array(ids),
            "user_id": pa.array(user_ids, pa.int64()),
            "event_type": pa.array(kinds),
            "page": pa.array(pages),
            "source": pa.array(sources),
            "amount": pa.array(amounts, pa.float64()),
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )
