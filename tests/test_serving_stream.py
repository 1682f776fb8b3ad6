"""The serving store under real writers: while a real `lakehouse serve --workers 2` owns
it, `lakehouse stream --realtime` lands user events (sent by `lakehouse produce` as it
runs) and `lakehouse run pipelines/demo` builds a new drop of the demo's files into the
same warehouse. Once both are done and the topic is drained, every mirror of a gold table
or realtime view becomes current and holds exactly its table's rows: none lost, none
doubled."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse import Lakehouse
from lakehouse.demo.landing import add_drop
from lakehouse.demo.live_events import UserEvents
from tests.helpers.kafka import kafka, new_topic
from tests.helpers.live import (
    ROOT,
    build_demo,
    child,
    cli_command,
    send_user_events,
    serving_status,
    stop,
    stream_command,
    wait_for,
)
from tests.helpers.mirrors import no_null_lists
from tests.helpers.server import start_server

FIRST = 200  # sent before the stream starts
PRODUCED = 1000  # sent by `lakehouse produce` (5 s) while the stream and the run go on
LAST = 50  # sent once the run has ended: the stream commits after the run's last commit
SENT = FIRST + PRODUCED + LAST


def sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Every row, in an order both engines' values give (a time with UTC as a timezone
    object or as a zone name prints the same)."""
    rows = [tuple(r.values()) for r in table.to_pylist()]
    return sorted(rows, key=lambda r: tuple(str(v) for v in r))


def commit_times(lh: Lakehouse, table: str, after: int) -> list[datetime]:
    """When each commit of ``table`` after version ``after`` was made."""
    return [
        datetime.fromisoformat(c["timestamp"])
        for c in lh.table(table).history()
        if c["version"] > after
    ]


def landed(lh: Lakehouse, topic: str) -> tuple[int, int]:
    """The rows the stream landed in bronze from ``topic``, and their distinct events."""
    found = lh.sql(
        "SELECT count(*), count(DISTINCT event_id) FROM bronze.user_events "
        f"WHERE _source LIKE '{topic}:%'"
    ).rows()[0]
    return int(found[0]), int(found[1])


def drained(lh: Lakehouse, topic: str) -> bool:
    """Whether every sent event is in bronze once and counted once by the windows."""
    if landed(lh, topic) != (SENT, SENT) or lh.catalog.get("realtime.late_events") is None:
        return False
    counted = lh.sql(
        "SELECT (SELECT coalesce(sum(events), 0) FROM realtime.events_per_minute)"
        " + (SELECT coalesce(sum(events), 0) FROM realtime.late_events)"
    ).scalar()
    return bool(counted == SENT)


def test_mirrors_equal_their_tables_after_a_stream_and_a_run_at_once(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    build_demo(warehouse)
    lh = Lakehouse(warehouse)
    written_by_run = [
        i.name for i in lh.tables() if i.layer in ("silver", "gold") and i.format != "view"
    ]
    before = {name: lh.table(name).version for name in written_by_run}
    add_drop(warehouse / "landing", fraction=0.5)  # new files for the run to build
    with kafka(tmp_path / "broker") as bootstrap:
        topic = new_topic(bootstrap)
        server = start_server(warehouse, args=["--workers", "2"], cwd=ROOT)
        try:
            send_user_events(bootstrap, topic, UserEvents(seed=23, late_share=0.0), FIRST)
            produce = cli_command(
                warehouse,
                "produce",
                "--topic",
                topic,
                "--bootstrap",
                bootstrap,
                "--rate",
                "200",
                "--count",
                str(PRODUCED),
                "--late-share",
                "0.05",  # some minutes late: realtime.late_events has rows too
                "--seed",
                "29",
            )
            run = cli_command(warehouse, "run", "pipelines/demo")
            stream = stream_command(warehouse, bootstrap, topic)
            with child(stream, tmp_path / "stream.log") as streaming:
                # The stream is under way (the first events committed) before the others
                # start, and the run starts while the producer's events keep coming.
                wait_for(
                    "the stream's first commit",
                    lambda: (
                        lh.catalog.get("realtime.windows") is not None
                        or streaming.poll() is not None
                    ),
                    60,
                )
                assert streaming.poll() is None, (tmp_path / "stream.log").read_text()
                with child(produce, tmp_path / "produce.log") as producer:
                    # The run starts once the producer's events are landing.
                    wait_for(
                        "the produced events landing",
                        lambda: landed(lh, topic)[0] > FIRST or producer.poll() is not None,
                        60,
                    )
                    with child(run, tmp_path / "run.log") as runner:
                        assert runner.wait(240) == 0, (tmp_path / "run.log").read_text()
                    assert producer.wait(120) == 0, (tmp_path / "produce.log").read_text()
                send_user_events(bootstrap, topic, UserEvents(seed=31, late_share=0.0), LAST)
                wait_for("the stream drained the topic", lambda: drained(lh, topic), 120)
                assert stop(streaming) == 0, (tmp_path / "stream.log").read_text()
            log = (tmp_path / "run.log").read_text()
            assert " succeeded in " in log, log

            # The two wrote at the same time: the stream committed before the run's first
            # commit (the run started once produced events had landed) and after its last
            # one (events sent once the run had ended), so it was writing all along.
            run_commits = [t for n in written_by_run for t in commit_times(lh, n, before[n])]
            assert run_commits, "the run built the new drop"
            stream_commits = commit_times(lh, "realtime.windows", -1)
            assert min(stream_commits) < min(run_commits), (run_commits, stream_commits)
            assert max(stream_commits) > max(run_commits), (run_commits, stream_commits)

            # Every gold table and realtime table or view has a mirror, and each becomes
            # current (the server's main process pulls the new versions itself).
            mirrored = {i.name for i in lh.tables() if i.layer in ("gold", "realtime")}
            assert {"realtime.events_per_minute", "realtime.late_events"} <= mirrored
            assert len([n for n in mirrored if n.startswith("gold.")]) == 8

            def all_current() -> list[dict[str, Any]] | None:
                status = serving_status(warehouse)
                states = {r["table"]: r["state"] for r in status}
                ok = set(states) == mirrored and set(states.values()) == {"current"}
                return status if ok else None

            status = wait_for("every mirror current", all_current, timeout=90, every=0.5)

            # Each mirror holds exactly its table's rows.
            serving = lh.serving
            try:
                for row in status:
                    name = row["table"]
                    lake = no_null_lists(lh.sql(f"SELECT * FROM {name}").to_arrow())
                    mirror = serving.sql(f"SELECT * FROM {name}")
                    assert mirror.column_names == lake.column_names, name
                    assert mirror.num_rows == lake.num_rows == row["rows"], (name, row)
                    assert sorted_rows(mirror) == sorted_rows(lake), name
                    assert lake.num_rows > 0, name
                # The stream's events: every one counted once in the mirrors too.
                counted = serving.sql(
                    "SELECT (SELECT sum(events) FROM realtime.events_per_minute)"
                    " + (SELECT sum(events) FROM realtime.late_events) AS n"
                )
                assert counted.column("n").to_pylist() == [SENT]
            finally:
                serving.close()
        finally:
            server.stop()
