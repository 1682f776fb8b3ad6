"""The scheduler's lease and job state in the catalog, on SQLite and PostgreSQL: of many
processes racing, one holds the lease; it is taken over only once expired; a job's state
is changed once per revision."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from lakehouse.catalog import Catalog
from lakehouse.ops.lease import Lease
from lakehouse.ops.schedule_store import ScheduleStore
from tests.postgres import postgres_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"
        return
    with postgres_server(wal_level="replica") as url:
        yield url


def race(n: int, fn) -> list:  # type: ignore[no-untyped-def]
    """``fn(i)`` in ``n`` threads started together; their answers."""
    answers: list = [None] * n
    gate = threading.Barrier(n)

    def go(i: int) -> None:
        gate.wait()
        answers[i] = fn(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_one_holder_among_many_then_take_over_after_expiry(catalog_url):
    leases = [Lease(Catalog(catalog_url), "race", holder=f"h{i}", seconds=1.5) for i in range(8)]
    won = race(8, lambda i: leases[i].acquire())
    assert won.count(True) == 1
    holder = leases[won.index(True)]
    others = [lease for lease in leases if lease is not holder]
    assert holder.acquire() and not any(lease.acquire() for lease in others)  # renewed
    assert holder.current()["holder"] == holder.holder
    # the holder stops renewing: one other takes over once the lease expired, not before
    deadline = time.monotonic() + 10
    while True:
        won = race(len(others), lambda i: others[i].acquire())
        if any(won):
            break
        assert time.monotonic() < deadline, "nobody took the expired lease over"
        time.sleep(0.1)
    assert won.count(True) == 1
    new = others[won.index(True)]
    assert not holder.acquire()  # the old holder has lost it
    new.release()
    assert holder.acquire()  # given up: taken at once
    holder.release()


def test_a_job_state_changes_once_per_revision(catalog_url):
    stores = [ScheduleStore(Catalog(catalog_url)) for _ in range(6)]
    first = stores[0].state("job-a", "pipeline")
    saved = race(6, lambda i: stores[i].save(first.but(outcome=f"by {i}")))
    winners = [s for s in saved if s is not None]
    assert len(winners) == 1
    now = stores[0].states()["job-a"]
    assert now.outcome == winners[0].outcome and now.revision == first.revision + 1
    assert stores[1].save(first.but(outcome="stale")) is None  # read before the change
