"""Shared by the benchmarks that measure produced-to-visible latency: a sender of user
events at a steady rate with a probe event of its own type every 100 ms."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

from confluent_kafka import Producer


class ProbeSender:
    """Sends ``rate`` events a second (made up front, so sending costs little CPU) and a
    probe every 100 ms; ``sent`` maps each probe's event type to when it was sent."""

    def __init__(self, bootstrap: str, topic: str, rate: float, payloads: list[bytes]) -> None:
        self.bootstrap, self.topic, self.rate, self.payloads = bootstrap, topic, rate, payloads
        self.sent: dict[str, float] = {}
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProbeSender:
        self._thread.start()
        return self

    def join(self, timeout: float = 30) -> None:
        self.stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        started = time.monotonic()
        k = 0
        while not self.stop.is_set() and k < len(self.payloads):
            due = min(len(self.payloads), int(self.rate * (time.monotonic() - started)))
            for payload in self.payloads[k:due]:
                producer.produce(self.topic, payload)
            k = max(k, due)
            if int((time.monotonic() - started) * 10) > len(self.sent):
                probe = f"probe-{len(self.sent)}"
                event = {
                    "event_id": probe,
                    "user_id": 1,
                    "event_type": probe,
                    "source": "web",
                    "event_time": datetime.now(UTC).isoformat(),
                }
                producer.produce(self.topic, json.dumps(event).encode())
                self.sent[probe] = time.time()
            producer.poll(0)
            time.sleep(0.01)
        producer.flush(30)
