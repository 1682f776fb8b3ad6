"""The demo's live user events sent to Kafka, and topic creation.

The events are made by ``lakehouse.demo.live_events.UserEvents`` as they happen. Each
message's key is its user, so one user's events keep their order in one partition.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from lakehouse.demo.live_events import UserEvents
from lakehouse.errors import LakehouseError

__all__ = ["UserEvents", "ensure_topic", "produce"]


def ensure_topic(bootstrap: str, topic: str, partitions: int = 3, timeout: float = 15) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists."""
    from confluent_kafka import KafkaException

    # NewTopic is confluent_kafka.admin's documented name, re-exported there without the
    # explicit re-export its stubs would need.
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

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


def _logger() -> Any:
    from lakehouse.ingest.kafka import kafka_logger

    return kafka_logger()
