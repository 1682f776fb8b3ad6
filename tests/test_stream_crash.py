"""kill -9 of `lakehouse stream` during 100,000 messages, again and again: in the end every
message is in bronze exactly once, and counted once in the real-time windows."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from lakehouse import Lakehouse
from tests.helpers.kafka import kafka, new_topic, send

MESSAGES = 100_000
KILLS = 10


def start_stream(warehouse, bootstrap: str, topic: str, *more: str) -> subprocess.Popen:
    code = "from lakehouse.cli import main; main()"
    return subprocess.Popen(
        [
            sys.executable, "-c", code, "-w", str(warehouse), "stream",
            "--topic", topic, "--table", "bronze.user_events", "--bootstrap", bootstrap,
            "--realtime", "--batch-size", "1000", "--interval", "0.2", *more,
        ],
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


class Sender(threading.Thread):
    """Sends each part of the messages once its event is set, in order."""

    def __init__(self, bootstrap: str, topic: str, parts, released) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.args_ = (bootstrap, topic)
        self.parts, self.released = parts, released
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for part, event in zip(self.parts, self.released, strict=True):
                event.wait()
                send(*self.args_, part)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def landed(lh: Lakehouse) -> int:
    if lh.catalog.get("bronze.user_events") is None:
        return 0
    return lh.sql("SELECT count(*) FROM bronze.user_events").scalar()


def test_kill_9_during_100k_messages(tmp_path):
    rng = random.Random(11)
    start = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    kinds = ["login", "click", "purchase", "logout"]
    values = [
        json.dumps(
            {
                "event_id": f"k{i}",
                "user_id": i % 977,
                "event_type": kinds[i % 4],
                "source": "web" if i % 3 else "mobile",
                "amount": 1.0 if i % 4 == 2 else None,
                # All within 100 s, under the 2-minute watermark: no event is late, however
                # the partitions' reading interleaves.
                "event_time": (start + timedelta(milliseconds=i)).isoformat(),
            }
        ).encode()
        for i in range(MESSAGES)
    ]
    warehouse = tmp_path / "wh"
    lh = Lakehouse(warehouse)
    # The messages arrive in KILLS + 1 parts, the next part only after a kill: however fast
    # the stream is, every kill lands while messages are still coming, and the last part is
    # sent only once the kills are spent.
    parts = [values[i::KILLS + 1] for i in range(KILLS + 1)]
    released = [threading.Event() for _ in parts]
    procs: list[subprocess.Popen] = []
    with kafka(tmp_path / "broker") as bootstrap:
        topic = new_topic(bootstrap, partitions=3)
        sender = Sender(bootstrap, topic, parts, released)
        sender.start()
        try:
            seen: list[int] = []
            released[0].set()
            for k in range(KILLS):
                before = landed(lh)
                proc = start_stream(warehouse, bootstrap, topic)
                procs.append(proc)
                deadline = time.monotonic() + 120
                while landed(lh) <= before:  # each run lands something before it is killed
                    assert proc.poll() is None, proc.stderr.read().decode()
                    assert time.monotonic() < deadline, "the stream landed nothing"
                    assert sender.error is None, sender.error
                    time.sleep(0.1)
                time.sleep(rng.uniform(0.0, 1.5))  # then dies anywhere: mid-batch, mid-commit
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                seen.append(landed(lh))
                released[k + 1].set()
            assert seen[-1] < MESSAGES, f"the kills came after the last message: {seen}"
            sender.join(300)
            assert not sender.is_alive() and sender.error is None, sender.error
            proc = start_stream(warehouse, bootstrap, topic, "--idle-exit", "3")
            procs.append(proc)
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()
        finally:
            for event in released:  # a failed test lets the sender finish and stops the streams
                event.set()
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            sender.join(60)
    counts = lh.sql(
        "SELECT count(*), count(DISTINCT event_id), count(DISTINCT _source) "
        "FROM bronze.user_events"
    ).rows()
    assert counts == [(MESSAGES, MESSAGES, MESSAGES)]
    assert lh.sql("SELECT sum(events) FROM realtime.events_per_minute").scalar() == MESSAGES
    assert lh.sql("SELECT sum(logins) FROM realtime.logins_per_source").scalar() == MESSAGES // 4
    purchases = lh.sql("SELECT sum(purchases), sum(revenue) FROM realtime.purchases_per_minute")
    assert purchases.rows() == [(MESSAGES // 4, MESSAGES / 4)]
    late = lh.sql("SELECT count(*) FROM realtime.late_events").scalar()
    assert late == 0
    windows = lh.sql("SELECT count(DISTINCT window_start) FROM realtime.events_per_minute")
    assert windows.scalar() == 2  # 09:00 and 09:01
