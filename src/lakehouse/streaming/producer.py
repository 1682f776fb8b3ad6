"""The demo's live user-event producer, and topic creation.

Events are made as they happen: login, click, purchase and logout, on pages such as
/home, /products and /cart, from web or mobile. The user base grows from about 100 users
by one every few seconds, and about 80% of the events come from the active fifth of it.
Event times are the time of making, a few seconds out of order; ``late_share`` of the
events are sent minutes late, as a phone coming back online would send them. Each
message's key is its user, so one user's events keep their order in one partition.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from lakehouse.errors import LakehouseError
from lakehouse.ingest.generators import USER_EVENT_PAGES, USER_EVENT_TYPES, USER_EVENT_WEIGHTS


def ensure_topic(bootstrap: str, topic: str, partitions: int = 3, timeout: float = 15) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _logger()})
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise LakehouseError(
            f"cannot reach Kafka at {bootstrap}: {exc}",
            "check --bootstrap (host:port), and that the broker runs",
        ) from exc
    if topic in existing:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    try:
        futures[topic].result(timeout)
    except KafkaException as exc:
        if "already exists" not in str(exc).lower():
            raise LakehouseError(f"cannot create topic {topic}: {exc}") from exc


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


def produce(
    bootstrap: str,
    topic: str,
    rate: float,
    *,
    source: UserEvents | None = None,
    count: int | None = None,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    on_sent: Any = None,
) -> int:
    """Send about ``rate`` events a second until ``count`` are sent, ``seconds`` have
    passed or ``stop`` is set; the number sent."""
    from confluent_kafka import Producer

    if rate <= 0:
        raise LakehouseError("--rate must be more than 0 events a second")
    source = source or UserEvents()
    stop = stop or threading.Event()
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "logger": _logger(),
        }
    )
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(error.str())

    started = time.monotonic()
    sent = 0
    tick = 0.1 if rate >= 10 else 1.0 / rate
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if seconds is not None and elapsed >= seconds:
                break
            due = int(rate * (elapsed + tick)) - sent
            if count is not None:
                due = min(due, count - sent)
            for event in source.make(max(0, due)):
                key = str(event["user_id"]).encode()
                producer.produce(topic, orjson.dumps(event), key, on_delivery=delivered)
            sent += max(0, due)
            producer.poll(0)
            if failures:
                raise LakehouseError(f"Kafka refused an event: {failures[0]}")
            if on_sent is not None:
                on_sent(sent)
            if count is not None and sent >= count:
                break
            stop.wait(tick)
    finally:
        producer.flush(30)
    return sent


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{int(seconds % 1 * 1_000_000):06d}+00:00"
    )


def _logger() -> Any:
    from lakehouse.ingest.kafka import kafka_logger

    return kafka_logger()
