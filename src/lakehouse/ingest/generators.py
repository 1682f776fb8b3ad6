"""Generators for the demo's sources: deterministic for a seed, sized by options."""

from __future__ import annotations

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
