"""The audit log: buffered records written to the Delta table ``system.audit_log``."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.access import AuditLog

TABLE = "system.audit_log"


def rows(lh: Lakehouse, where: str = "") -> list[dict]:
    sql = f"SELECT * FROM {TABLE} {where} ORDER BY event_time, target"
    return lh.sql(sql).to_arrow().to_pylist()


def count(lh: Lakehouse) -> int:
    if lh.catalog.get(TABLE) is None:
        return 0
    return lh.sql(f"SELECT count(*) FROM {TABLE}").to_arrow().column(0)[0].as_py()


def wait_for(check, seconds: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not written in time"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def audits():
    """Every AuditLog a test opens is closed after it, whatever happened."""
    opened: list[AuditLog] = []

    def open_log(lh: Lakehouse, **kwargs) -> AuditLog:
        log = AuditLog(lh, **kwargs)
        opened.append(log)
        return log

    yield open_log
    for log in opened:
        log.close()


def test_records_are_written_on_flush(lh: Lakehouse, audits) -> None:
    audit = audits(lh, flush_interval=3600)
    started = time.time()
    audit.record(
        "alice",
        "analyst",
        "POST /query",
        "gold.revenue",
        "ok",
        200,
        12.5,
        detail=None,
        client="127.0.0.1",
    )
    audit.record(
        None, None, "GET /tables", "/tables", "unauthenticated", 401, 0.25, detail="unknown token"
    )
    assert lh.catalog.get(TABLE) is None  # record() wrote nothing itself
    audit.flush()
    got = rows(lh)
    assert [
        (
            r["principal"],
            r["role"],
            r["action"],
            r["target"],
            r["outcome"],
            r["status"],
            r["duration_ms"],
            r["detail"],
            r["client"],
        )
        for r in got
    ] == [
        ("alice", "analyst", "POST /query", "gold.revenue", "ok", 200, 12.5, None, "127.0.0.1"),
        (None, None, "GET /tables", "/tables", "unauthenticated", 401, 0.25, "unknown token", None),
    ]
    assert all(started - 1 <= r["event_time"].timestamp() <= time.time() for r in got)
    assert str(got[0]["event_time"].tzinfo) in ("UTC", "Etc/UTC")
    schema = lh.sql(f"SELECT * FROM {TABLE}").to_arrow().schema
    assert schema.field("status").type in (pa.int32(), pa.int64())
    assert schema.field("duration_ms").type == pa.float64()
    assert pa.types.is_timestamp(schema.field("event_time").type)
    # One commit per flush.
    version = lh.table(TABLE).version
    audit.record("bob", "viewer", "GET /me", "/me", "ok", 200, 1.0)
    audit.record("bob", "viewer", "GET /me", "/me", "ok", 200, 1.0)
    audit.flush()
    assert lh.table(TABLE).version == version + 1
    audit.flush()  # nothing buffered: no commit
    assert lh.table(TABLE).version == version + 1 and count(lh) == 4


def test_records_are_written_after_the_interval(lh: Lakehouse, audits) -> None:
    audit = audits(lh, flush_interval=0.3)
    audit.record("alice", "analyst", "GET /tables", "/tables", "ok", 200, 1.0)
    wait_for(lambda: count(lh) == 1, 10)
    audit.record("alice", "analyst", "GET /me", "/me", "ok", 200, 1.0)
    wait_for(lambda: count(lh) == 2, 10)


def test_a_full_buffer_is_written_before_the_interval(lh: Lakehouse, audits) -> None:
    audit = audits(lh, flush_interval=3600, max_buffer=100)
    for i in range(99):
        audit.record("alice", "analyst", "GET /me", str(i), "ok", 200, 1.0)
    time.sleep(0.3)
    assert count(lh) == 0
    audit.record("alice", "analyst", "GET /me", "99", "ok", 200, 1.0)
    wait_for(lambda: count(lh) == 100, 10)


def test_record_only_buffers_until_a_flush(lh: Lakehouse, audits) -> None:
    audit = audits(lh, flush_interval=3600, max_buffer=1_000_000)
    for i in range(20_000):
        audit.record("alice", "analyst", "GET /me", "/me", "ok", 200, float(i))
    assert count(lh) == 0  # no write on the caller's path
    audit.close()
    assert count(lh) == 20_000


def test_threads_lose_and_duplicate_nothing(lh: Lakehouse, audits) -> None:
    audit = audits(lh, flush_interval=0.05, max_buffer=300)
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(500):
            audit.record(f"t{thread}", "analyst", "POST /query", f"{thread}:{i}", "ok", 200, i)
            if i % 125 == 0:
                audit.flush()  # explicit flushes race with the background one

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    audit.close()
    got = lh.sql(f"SELECT target, count(*) AS n FROM {TABLE} GROUP BY target").to_arrow()
    assert got.num_rows == 4000
    assert set(got.column("n").to_pylist()) == {1}
    assert set(got.column("target").to_pylist()) == {
        f"{t}:{i}" for t in range(8) for i in range(500)
    }
    assert lh.table(TABLE).version > 2  # written in several flushes, not only by close()


def test_close_writes_the_rest_and_stops_the_thread(lh: Lakehouse, audits) -> None:
    audit = audits(lh, flush_interval=3600)
    for i in range(3):
        audit.record("alice", "analyst", "GET /me", str(i), "ok", 200, 1.0)
    assert count(lh) == 0
    audit.close()
    assert count(lh) == 3 and audit.pending == 0
    assert not audit._thread.is_alive()
    audit.close()  # closing twice is harmless
    assert count(lh) == 3


def _break(log_folder: Path) -> Path:
    """Replace the table's _delta_log folder by a file: no write can succeed, also as root."""
    moved = log_folder.with_name("_delta_log.moved")
    log_folder.rename(moved)
    log_folder.write_text("not a folder")
    return moved


def _repair(log_folder: Path, moved: Path) -> None:
    log_folder.unlink()
    moved.rename(log_folder)


def test_a_failed_flush_keeps_its_records(lh: Lakehouse, audits, caplog) -> None:
    audit = audits(lh, flush_interval=3600)
    audit.record("alice", "analyst", "GET /me", "a", "ok", 200, 1.0)
    audit.flush()
    log_folder = Path(lh.root) / "system" / "audit_log" / "_delta_log"
    moved = _break(log_folder)
    try:
        audit.record("alice", "analyst", "GET /me", "b", "ok", 200, 1.0)
        audit.record("alice", "analyst", "GET /me", "c", "ok", 200, 1.0)
        with caplog.at_level(logging.WARNING, logger="lakehouse.audit"):
            audit.flush()  # fails, and says so, without raising
        assert audit.pending == 2
        assert any("could not write 2 records" in r.getMessage() for r in caplog.records)
        audit.record("alice", "analyst", "GET /me", "d", "ok", 200, 1.0)
        audit.flush()  # fails again
        assert audit.pending == 3
    finally:
        _repair(log_folder, moved)
    audit.record("alice", "analyst", "GET /me", "e", "ok", 200, 1.0)
    audit.flush()
    assert audit.pending == 0
    assert [r["target"] for r in rows(lh)] == ["a", "b", "c", "d", "e"]


def test_the_background_thread_retries_a_failed_flush(lh: Lakehouse, audits) -> None:
    audit = audits(lh, flush_interval=0.2)
    audit.record("alice", "analyst", "GET /me", "a", "ok", 200, 1.0)
    wait_for(lambda: count(lh) == 1, 10)
    log_folder = Path(lh.root) / "system" / "audit_log" / "_delta_log"
    moved = _break(log_folder)
    try:
        audit.record("alice", "analyst", "GET /me", "b", "ok", 200, 1.0)
        time.sleep(1.0)  # several failed attempts
        assert audit.pending == 1
    finally:
        _repair(log_folder, moved)
    wait_for(lambda: count(lh) == 2, 10)
    assert [r["target"] for r in rows(lh)] == ["a", "b"]


def test_a_table_that_cannot_be_created_keeps_the_records(tmp_path: Path, audits) -> None:
    lh = Lakehouse(tmp_path / "w")
    (Path(lh.root) / "system").write_text("a file where the layer's folder goes")
    audit = audits(lh, flush_interval=3600)
    audit.record("alice", "analyst", "GET /me", "a", "ok", 200, 1.0)
    audit.flush()
    assert audit.pending == 1
    (Path(lh.root) / "system").unlink()
    audit.flush()
    assert audit.pending == 0 and [r["target"] for r in rows(lh)] == ["a"]


def test_bad_settings_are_refused(lh: Lakehouse) -> None:
    with pytest.raises(ValueError):
        AuditLog(lh, flush_interval=0)
    with pytest.raises(ValueError):
        AuditLog(lh, max_buffer=0)
