"""The demo's live user events, made as they happen.

Events are login, click, purchase and logout, on pages such as /home, /products and
/cart, from web or mobile. The user base grows from about 100 users by one every few
seconds, and about 80% of the events come from the active fifth of it. Event times are
the time of making, a few seconds out of order; ``late_share`` of the events are sent
minutes late, as a phone coming back online would send them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lakehouse.demo.generators import USER_EVENT_PAGES, USER_EVENT_TYPES, USER_EVENT_WEIGHTS


@dataclass
class UserEvents:
    """A live source of user events (see the module's docstring)."""

    seed: int = 17
    initial_users: int = 100
    users_per_minute: float = 12.0
    active_share: float = 0.8
    disorder_seconds: float = 5.0
    late_share: float = 0.0
    late_minutes: tuple[float, float] = (3.0, 10.0)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.started = time.time()
        self.made = 0

    def make(self, n: int, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        rng = self.rng
        base = self.initial_users + int(self.users_per_minute * (now - self.started) / 60)
        active = max(1, base // 5)
        from_active = rng.random(n) < self.active_share
        which = rng.random(n)
        quiet = active + 1 + (which * max(1, base - active)).astype(np.int64)
        users = np.where(from_active, 1 + (which * active).astype(np.int64), quiet)
        kinds = rng.choice(len(USER_EVENT_TYPES), n, p=USER_EVENT_WEIGHTS)
        pages = rng.integers(0, len(USER_EVENT_PAGES), n)
        web = rng.random(n) < 0.55
        lag = rng.random(n) * self.disorder_seconds
        late = rng.random(n) < self.late_share
        low, high = self.late_minutes
        lag[late] = 60 * (low + rng.random(int(late.sum())) * (high - low))
        amounts = np.round(rng.gamma(2.0, 30.0, n), 2)
        events = []
        for i in range(n):
            kind = USER_EVENT_TYPES[kinds[i]]
            purchase = kind == "purchase"
            at = now - lag[i]
            events.append(
                {
                    "event_id": f"live{self.seed}-{self.made + i:010d}",
                    "user_id": int(users[i]),
                    "event_type": kind,
                    "page": "/checkout" if purchase else USER_EVENT_PAGES[pages[i]],
                    "source": "web" if web[i] else "mobile",
                    "amount": float(amounts[i]) if purchase else None,
                    "event_time": _iso(at),
                }
            )
        self.made += n
        return events


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{int(seconds % 1 * 1_000_000):06d}+00:00"
    )
