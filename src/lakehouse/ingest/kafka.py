"""Kafka topics into bronze, exactly once, in micro-batches.

Each micro-batch commits to the bronze table together with one Delta transaction
identifier per partition, ``kafka:<topic>:<partition>``, whose number is the last offset
of that partition in the batch. The table therefore says, in the same atomic commit as
the rows, how far it has read each partition: a restarted consumer seeks to the next
offset, whatever crashed when, and nothing is lost or landed twice. The offsets are also
committed to the consumer group afterwards, only so that Kafka's tools show the lag.

A message that is not one JSON object (or, for Debezium topics, not a change event) goes
to ``<table>_quarantine`` with its raw bytes, topic, partition, offset and the reason;
that table carries the same identifiers, so a batch landed again after a crash does not
quarantine a message twice. Rows carry the bronze metadata columns; ``_source`` is
``<topic>:<partition>:<offset>``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from lakehouse.errors import LakehouseError
from lakehouse.ingest import jsonlines
from lakehouse.names import parse_table_name
from lakehouse.tables.prepared import METADATA_COLUMNS

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

FORMATS = ("json", "debezium")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def partition_mark(topic: str, partition: int) -> str:
    """The transaction identifier under which a table records a partition's last offset."""
    return f"kafka:{topic}:{partition}"


@dataclass
class KafkaSettings:
    bootstrap: str
    topic: str
    group: str
    batch_size: int = 100_000  # messages in a micro-batch at most
    interval: float = 0.5  # seconds a micro-batch waits for more messages at most
    start: str = "earliest"  # where a partition the table has not read yet starts
    format: str = "json"  # or debezium: change events for the CDC apply
    key_columns: list[str] | None = None  # debezium: the key when messages have none
    # A static member of the group (Kafka's group.instance.id): restarted after a crash,
    # it gets its partitions back at once instead of after the old session times out.
    # Each process of one group needs its own; None joins as a dynamic member.
    instance_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # more librdkafka settings

    def check(self) -> None:
        if not _TOPIC.match(self.topic):
            raise LakehouseError(
                f"{self.topic!r} is not a Kafka topic name",
                "use letters, digits, '.', '_' and '-' (at most 249)",
            )
        if self.start not in ("earliest", "latest"):
            raise LakehouseError(f"unknown start {self.start!r}", "use earliest or latest")
        if self.format not in FORMATS:
            raise LakehouseError(f"unknown format {self.format!r}", "use json or debezium")
        if self.batch_size < 1 or self.interval <= 0:
            raise LakehouseError("a micro-batch needs a size of 1 or more and an interval > 0")


@dataclass
class Batch:
    """Messages of one topic, in the order consumed."""

    topic: str
    partitions: np.ndarray  # int32
    offsets: np.ndarray  # int64
    values: list[bytes | None]
    keys: list[bytes | None] | None = None
    _sources: pa.Array | None = field(default=None, repr=False)
    _hashes: pa.Array | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.values)

    def last_offsets(self) -> dict[int, int]:
        last: dict[int, int] = {}
        for p in np.unique(self.partitions).tolist():
            last[int(p)] = int(self.offsets[self.partitions == p].max())
        return last

    def after(self, marks: dict[int, int]) -> Batch:
        """The messages past the given last offsets per partition."""
        if not marks or not len(self):
            return self
        held = np.full(int(self.partitions.max()) + 1, -1, np.int64)
        for p, offset in marks.items():
            if p < held.size:
                held[p] = offset
        keep = self.offsets > held[self.partitions]
        if keep.all():
            return self
        index = np.flatnonzero(keep).tolist()
        mask = pa.array(keep)
        return Batch(
            self.topic,
            self.partitions[keep],
            self.offsets[keep],
            [self.values[i] for i in index],
            None if self.keys is None else [self.keys[i] for i in index],
            None if self._sources is None else self._sources.filter(mask),
            None if self._hashes is None else self._hashes.filter(mask),
        )

    def prepare(self) -> Batch:
        """Work done ahead, in the consumer's thread while the last batch is written."""
        self.sources()
        self.hashes()
        return self

    def sources(self) -> pa.Array:
        """``_source`` of each message: topic:partition:offset."""
        if self._sources is None:
            self._sources = pc.binary_join_element_wise(
                pa.scalar(self.topic),
                pa.array(self.partitions).cast(pa.string()),
                pa.array(self.offsets).cast(pa.string()),
                ":",
            )
        return self._sources

    def hashes(self) -> pa.Array:
        """The md5 of each message's bytes, as hex text (null for a null message)."""
        if self._hashes is None:
            self._hashes = _md5(self.values)
        return self._hashes


@dataclass
class Landed:
    rows: pa.Table  # the rows that landed (as written, with _source)
    quarantined: int
    rescued: int
    version: int | None  # the bronze table's version after the batch
    marks: dict[int, int]  # last offset per partition, now in the table


def table_marks(lh: Lakehouse, table: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The last offset per partition that ``table`` holds (partitions it has none of are
    left out)."""
    if not lh.exists(table):
        return {}
    t = lh.table(table)
    found = {p: t.transaction_version(partition_mark(topic, p)) for p in partitions}
    return {p: v for p, v in found.items() if v is not None}


def land(
    lh: Lakehouse,
    table: str,
    batch: Batch,
    *,
    source_system: str | None = None,
    format: str = "json",
    key_columns: list[str] | None = None,
    quarantine_marks: dict[int, int] | None = None,
) -> Landed:
    """One micro-batch into ``table`` (and its quarantine), exactly once: the caller
    gives only messages the table does not hold yet (``Batch.after``)."""
    marks = batch.last_offsets()
    txn = [(partition_mark(batch.topic, p), o) for p, o in sorted(marks.items())]
    rows, good, bad, rescued = _read(lh, table, batch, format, key_columns)
    rows = _with_metadata(rows, batch, good, source_system)
    if bad:
        quarantine = f"{table}_quarantine"
        held = quarantine_marks if quarantine_marks is not None else {}
        fresh = [
            (i, reason)
            for i, reason in bad
            if batch.offsets[i] > held.get(int(batch.partitions[i]), -1)
        ]
        if fresh:
            lh.write(
                quarantine,
                _quarantine_rows(batch, fresh),
                source_system=source_system,
                source=f"kafka:{batch.topic}",
                txn=txn,
            )
    written = lh.write(table, rows, evolve=True, source_system=source_system, txn=txn)
    return Landed(rows, len(bad), rescued, written.version, marks)


def _read(
    lh: Lakehouse, table: str, batch: Batch, format: str, key_columns: list[str] | None
) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]], int]:
    """The batch's good rows, the message each came from, the (index, reason) of the bad
    messages, and how many values were rescued."""
    n = len(batch)
    schema = jsonlines.table_schema(lh, table)  # one look at the log for the batch
    if format == "debezium":
        from lakehouse.ingest.debezium import as_landed_before, convert_messages

        # Tombstones give no row and are not bad: rows say which message they came from.
        converted = convert_messages(
            batch.values, batch.keys, key_columns, positions=batch.offsets.tolist()
        )
        changes = converted.rows if schema is None else as_landed_before(lh, table, converted.rows)
        rows, rescued = jsonlines.fit_rows(lh, table, changes, schema)
        good = np.asarray(converted.indexes, np.int64)
        return rows, good, sorted(converted.bad), rescued
    bad: list[tuple[int, str]] = []
    present: Any = range(n) if all(batch.values) else [i for i, v in enumerate(batch.values) if v]
    if len(present) < n:
        bad += [(i, "empty message") for i, v in enumerate(batch.values) if not v]
    lines: list[bytes] = (
        batch.values if len(present) == n else [batch.values[i] for i in present]  # type: ignore[assignment]
    )
    joined = b"\n".join(lines)
    if joined.count(b"\n") != len(lines) - 1 or b"\r" in joined:
        # Line breaks inside a message: outside JSON strings they are only whitespace.
        joined = b"\n".join(v.replace(b"\n", b" ").replace(b"\r", b" ") for v in lines)
    records = jsonlines.read(lh, table, joined, schema)
    bad += [(present[b.index], b.reason) for b in records.bad]
    if records.rows.num_rows + len(records.bad) < len(lines):
        # Lines of only spaces are skipped by the reader: they are empty messages too.
        bad += [(present[j], "empty message") for j, v in enumerate(lines) if not v.strip()]
    good = _without(n, [i for i, _ in bad])
    return records.rows, good, sorted(bad), records.rescued


def _without(n: int, drop: list[int]) -> np.ndarray:
    keep = np.ones(n, bool)
    keep[drop] = False
    return np.flatnonzero(keep)


def _with_metadata(
    rows: pa.Table, batch: Batch, good: np.ndarray, source_system: str | None
) -> pa.Table:
    """The rows with all their bronze metadata columns, made here in Arrow so the writer
    has none left to add: when and from which system they landed, ``_source`` per
    message, and ``_record_hash`` the md5 of the message's bytes (a message delivered
    twice has the same hash)."""
    if rows.num_rows != len(good):
        raise LakehouseError(
            f"read {rows.num_rows} rows from {len(good)} good messages of {batch.topic}",
            "this is a bug: please report it with the messages",
        )
    n = rows.num_rows
    taken = pa.array(good, pa.int64())
    now = datetime.now(UTC)
    micros = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    days = (now.date() - date(1970, 1, 1)).days
    metadata = {
        "_ingested_at": pa.array(np.full(n, micros, np.int64)).view(pa.timestamp("us", "UTC")),
        "_ingest_date": pa.array(np.full(n, days, np.int32)).view(pa.date32()),
        "_source_system": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([source_system], pa.string())
        ).cast(pa.string()),
        "_source": batch.sources().take(taken),
        "_record_hash": batch.hashes().take(taken),
    }
    assert tuple(metadata) == METADATA_COLUMNS
    user = [c for c in rows.column_names if c not in METADATA_COLUMNS]
    return pa.table([*rows.select(user).columns, *metadata.values()], [*user, *metadata])


def _md5(values: list[bytes | None]) -> pa.Array:
    from lakehouse.scratch import scratch

    raw = pa.table({"v": pa.array(values, pa.binary())})  # noqa: F841 - read by DuckDB
    con = scratch()
    try:
        return con.sql("SELECT md5(v) AS h FROM raw").to_arrow_table().column(0).combine_chunks()
    finally:
        con.close()


def _quarantine_rows(batch: Batch, bad: list[tuple[int, str]]) -> pa.Table:
    index = [i for i, _ in bad]
    raw = [batch.values[i] or b"" for i in index]
    return pa.table(
        {
            "raw_payload": pa.array([v.decode(errors="replace") for v in raw], pa.string()),
            "raw_bytes": pa.array(raw, pa.binary()),
            "reason": pa.array([r for _, r in bad], pa.string()),
            "topic": pa.array([batch.topic] * len(index), pa.string()),
            "partition": pa.array(batch.partitions[index], pa.int32()),
            "offset": pa.array(batch.offsets[index], pa.int64()),
        }
    )


# Errors a consumer does not get over by itself: the rest (a dropped connection, a broker
# restarting, the end of a partition) librdkafka retries, and they are only logged.
_RIGHTS = "check the rights of this client on the topic and the group"
_STOPPING = {
    KafkaError.UNKNOWN_TOPIC_OR_PART: "create the topic first (lakehouse produce creates it)",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: _RIGHTS,
    KafkaError.GROUP_AUTHORIZATION_FAILED: _RIGHTS,
}


def _check(error: Any, topic: str) -> None:
    if error is None:
        return
    if error.fatal() or error.code() in _STOPPING:
        hint = _STOPPING.get(error.code(), "check the broker and the topic")
        raise LakehouseError(f"Kafka, topic {topic}: {error.str()}", hint)
    kafka_logger().warning("Kafka, topic %s: %s", topic, error.str())


# The message fields, read with map() over the C methods: a tenth of a microsecond each.
_error, _partition, _offset = Message.error, Message.partition, Message.offset
_value, _key = Message.value, Message.key


class KafkaSource:
    """A consumer in a group that hands out micro-batches. On every partition assignment
    it seeks to the offset after the one the bronze table holds, so the table, not the
    group, decides where reading resumes."""

    def __init__(self, lh: Lakehouse, table: str, settings: KafkaSettings) -> None:
        settings.check()
        name = parse_table_name(table)
        if name.layer != "bronze":
            raise LakehouseError(
                f"Kafka topics land in bronze, not {name.layer}", "use --table bronze.<name>"
            )
        self.lh = lh
        self.table = str(name)
        self.settings = settings
        self.consumer: Consumer | None = None
        self.assigned: list[int] = []
        self.on_assign: Callable[[list[int]], None] | None = None

    def open(self) -> KafkaSource:
        s = self.settings
        config = {
            "bootstrap.servers": s.bootstrap,
            "group.id": s.group,
            "enable.auto.commit": False,
            "auto.offset.reset": s.start,
            "fetch.max.bytes": 32 << 20,
            "max.partition.fetch.bytes": 8 << 20,
            # Some brokers answer a fetch with more than asked: take it rather than fail.
            "receive.message.max.bytes": 1 << 30,
            "queued.max.messages.kbytes": 256 << 10,
            "session.timeout.ms": 6_000,  # the least brokers accept: a fast first join
            "fetch.wait.max.ms": 100,  # a message waits at most this long in the broker
            "logger": kafka_logger(),
            **({"group.instance.id": s.instance_id} if s.instance_id else {}),
            **s.config,
        }
        self.consumer = Consumer(config)
        self._check_topic()
        self.consumer.subscribe([s.topic], on_assign=self._assigned, on_revoke=self._revoked)
        return self

    def _check_topic(self) -> None:
        assert self.consumer is not None
        try:
            meta = self.consumer.list_topics(self.settings.topic, timeout=10)
        except Exception as exc:  # KafkaException: the broker is not there
            raise LakehouseError(
                f"cannot reach Kafka at {self.settings.bootstrap}: {exc}",
                "check --bootstrap (host:port), and that the broker runs",
            ) from exc
        topic = meta.topics.get(self.settings.topic)
        if topic is not None and topic.error is not None and topic.error.code() != 3:
            raise LakehouseError(f"topic {self.settings.topic}: {topic.error.str()}")

    def _assigned(self, consumer: Consumer, partitions: list[Any]) -> None:
        numbers = [tp.partition for tp in partitions]
        marks = table_marks(self.lh, self.table, self.settings.topic, numbers)
        for tp in partitions:
            if tp.partition in marks:
                tp.offset = marks[tp.partition] + 1
            else:
                tp.offset = OFFSET_BEGINNING if self.settings.start == "earliest" else OFFSET_END
        consumer.assign(partitions)
        self.assigned = sorted(set(self.assigned) | set(numbers))
        if self.on_assign is not None:
            self.on_assign(numbers)

    def _revoked(self, consumer: Consumer, partitions: list[Any]) -> None:
        gone = {tp.partition for tp in partitions}
        self.assigned = [p for p in self.assigned if p not in gone]

    def next_batch(self) -> Batch | None:
        """Messages until the batch is full or ``interval`` has passed since the first
        one; None when none came within the interval."""
        assert self.consumer is not None, "open() first"
        s = self.settings
        messages: list[Any] = []
        deadline = time.monotonic() + s.interval
        while len(messages) < s.batch_size:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            got = self.consumer.consume(min(s.batch_size - len(messages), 100_000), wait)
            if any(map(_error, got)):  # rare: look at each only then
                for m in got:
                    _check(m.error(), s.topic)
                got = [m for m in got if m.error() is None]
            messages += got
        if not messages:
            return None
        n = len(messages)
        return Batch(
            s.topic,
            np.fromiter(map(_partition, messages), np.int32, n),
            np.fromiter(map(_offset, messages), np.int64, n),
            list(map(_value, messages)),
            list(map(_key, messages)) if s.format == "debezium" else None,
        )

    def commit(self, marks: dict[int, int]) -> None:
        """Tell the group how far the table has read (for lag tools; not for resuming)."""
        assert self.consumer is not None
        offsets = [TopicPartition(self.settings.topic, p, o + 1) for p, o in marks.items()]
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            except Exception:  # noqa: BLE001 - only lag reporting depends on it
                pass

    def lag(self) -> int | None:
        """Messages in the assigned partitions not read yet."""
        if self.consumer is None or not self.assigned:
            return None
        parts = [TopicPartition(self.settings.topic, p) for p in self.assigned]
        total = 0
        try:
            for tp in self.consumer.position(parts):
                low, high = self.consumer.get_watermark_offsets(tp, timeout=1.0)
                # No position yet: all that is there is still to read.
                total += max(0, high - tp.offset) if tp.offset >= 0 else high - low
        except Exception:  # noqa: BLE001 - a figure for the status line only
            return None
        return total

    def high_watermarks(self) -> dict[int, int]:
        """Per assigned partition, the offset its next message gets (for lag metrics)."""
        if self.consumer is None or not self.assigned:
            return {}
        found: dict[int, int] = {}
        try:
            for p in self.assigned:
                tp = TopicPartition(self.settings.topic, p)
                found[p] = self.consumer.get_watermark_offsets(tp, timeout=1.0)[1]
        except Exception:  # noqa: BLE001 - a figure for monitoring only
            return {}
        return found

    def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            consumer.close()


def kafka_logger() -> Any:
    """librdkafka's own log lines go here: disconnects it recovers from, and a client
    left reconnecting to a broker that stopped. Failures that matter reach the caller as
    errors; the lines show with LAKEHOUSE_DEBUG=1."""
    import logging
    import os

    logger = logging.getLogger("lakehouse.kafka")
    if not logger.handlers and os.environ.get("LAKEHOUSE_DEBUG") != "1":
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger
