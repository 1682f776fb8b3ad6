"""Table maintenance: the plan each table's policy and figures call for, doing it,
retention and the time travel window, a writer appending while maintenance runs, and the
HTTP endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse import Lakehouse, LakehouseError, TableNotFoundError, VersionNotFoundError
from lakehouse.service.access import create_token
from lakehouse.service.maintenance import failed, maintain
from lakehouse.settings.model import MaintenancePolicy, MaintenanceSettings, Settings
from tests.helpers.server import start_server

ROOT = Path(__file__).resolve().parents[1]


def settings(table_format: str = "delta", **maintenance: object) -> Settings:
    policy = MaintenancePolicy(small_files=4, vacuum_after=0, checkpoint_every=5)
    return Settings(
        format=table_format,  # type: ignore[arg-type]
        maintenance=MaintenanceSettings(policy=policy, **maintenance),  # type: ignore[arg-type]
    )


def appends(lh: Lakehouse, table: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        lh.write(table, [{"id": i, "day": "2026-01-01"}])


def by_action(records: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["table"], r["action"]): r for r in records}


def test_the_plan_says_why_and_maintain_does_it(tmp_path: Path, table_format: str) -> None:
    over = {
        "silver.off": MaintenancePolicy(enabled=False),
        "silver.z": MaintenancePolicy(zorder=["nope"]),
    }
    lh = Lakehouse(
        tmp_path / "w", settings=settings(table_format, tables=over, system_tables=False)
    )
    appends(lh, "silver.t", 10)
    appends(lh, "silver.off", 6)
    appends(lh, "silver.z", 6)
    appends(lh, "system.audit_log", 6)
    lh.create_view("gold.v", "SELECT * FROM silver.t")
    before = lh.table("silver.t").version

    plan = by_action(maintain(lh, dry_run=True))
    assert plan[("silver.t", "compact")]["reason"] == "10 small files > 4"
    assert plan[("silver.t", "compact")]["status"] == "planned"
    # A checkpoint is the Delta log's; an Iceberg table's metadata needs none.
    checkpoints = table_format == "delta"
    if checkpoints:
        assert "11 versions since the last checkpoint" in plan[("silver.t", "checkpoint")]["reason"]
    else:
        assert ("silver.t", "checkpoint") not in plan
    assert "enabled: false" in plan[("silver.off", "none")]["reason"]
    assert "system_tables" in plan[("system.audit_log", "none")]["reason"]
    assert plan[("silver.z", "zorder")]["status"] == "failed"
    assert "no column nope" in plan[("silver.z", "zorder")]["reason"]
    assert not any(r["table"] == "gold.v" for r in plan.values())
    assert lh.table("silver.t").version == before  # a plan changes nothing

    done = maintain(lh, "silver.t")
    got = by_action(done)
    assert not failed(done)
    assert got[("silver.t", "compact")]["files_after"] == 1
    assert got[("silver.t", "vacuum")]["files_removed"] == 10
    if checkpoints:
        assert got[("silver.t", "checkpoint")]["status"] == "done"
        assert lh.table("silver.t").last_checkpoint() == lh.table("silver.t").version
    assert lh.sql("SELECT count(*) FROM silver.t").rows() == [(10,)]
    assert maintain(lh, "silver.t") == [
        {
            "table": "silver.t",
            "action": "none",
            "status": "skipped",
            "reason": "nothing to do",
            "seconds": 0.0,
        }
    ]

    with pytest.raises(TableNotFoundError):
        maintain(lh, "silver.nope")
    with pytest.raises(LakehouseError, match="is a view"):
        maintain(lh, "gold.v")


def test_retention_then_vacuum_and_the_time_travel_window(
    tmp_path: Path, table_format: str
) -> None:
    lh = Lakehouse(tmp_path / "w", settings=settings(table_format))
    old = (datetime.now(UTC) - timedelta(days=800)).date()
    new = datetime.now(UTC).date()
    lh.write("silver.e", [{"id": 1, "day": old}, {"id": 2, "day": new}], date_column="day")
    lh.write("silver.e", [{"id": 3, "day": new}])
    # The default policy: removed files kept 7 days.
    kept = Lakehouse(tmp_path / "w", settings=Settings(format=table_format))  # type: ignore[arg-type]
    lh.write("silver.k", [{"id": 1}])
    lh.write("silver.k", [{"id": 2}])
    assert [r["reason"] for r in maintain(kept, "silver.k")] == ["nothing to do"]

    plan = by_action(maintain(lh, "silver.e", dry_run=True))
    assert "1 row older than 730 days" in plan[("silver.e", "retention")]["reason"]
    done = by_action(maintain(lh, "silver.e"))
    assert done[("silver.e", "retention")]["rows_deleted"] == 1
    assert done[("silver.e", "vacuum")]["files_removed"] >= 1
    assert sorted(r[0] for r in lh.sql("SELECT id FROM silver.e").rows()) == [2, 3]
    latest = lh.table("silver.e").version
    with pytest.raises(VersionNotFoundError, match="removed by vacuum") as caught:
        lh.sql("SELECT * FROM silver.e VERSION AS OF 1")
    assert f"{latest} can still be read" in caught.value.message

    # Inside the window (the default 7 days), old versions stay readable after maintenance.
    for i in range(3, 20):
        kept.write("silver.k", [{"id": i}])
    done = by_action(maintain(kept, "silver.k"))
    assert done[("silver.k", "compact")]["status"] == "done"
    assert ("silver.k", "vacuum") not in done
    assert kept.sql("SELECT count(*) FROM silver.k VERSION AS OF 1").rows() == [(1,)]


def test_a_writer_appending_while_maintenance_runs_loses_nothing(tmp_path: Path) -> None:
    warehouse = tmp_path / "w"
    lh = Lakehouse(warehouse, settings=settings())
    appends(lh, "silver.t", 20)
    config = tmp_path / "lakehouse.yaml"
    config.write_text("maintenance:\n  policy: {small_files: 2, vacuum_after: 0}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    writer = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/helpers/appender.py"),
            str(warehouse),
            "silver.t",
            "1000",
            "150",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    maintain_cmd = [
        sys.executable,
        "-m",
        "lakehouse.cli",
        "--config",
        str(config),
        "--warehouse",
        str(warehouse),
        "maintain",
        "silver.t",
        "-f",
        "json",
    ]
    try:
        assert writer.stdout is not None
        assert "ok" in json.loads(writer.stdout.readline())  # the writer is writing
        runs = []
        while writer.poll() is None:
            done = subprocess.run(
                maintain_cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode in (0, 1), done.stderr
            records = json.loads(done.stdout)
            for r in records:
                assert r["status"] in ("done", "skipped", "failed")
                if r["status"] == "failed":
                    assert done.returncode == 1 and "next run" in r["reason"]
            runs.append(records)
        rest = writer.stdout.read()
        assert writer.wait(timeout=60) == 0, rest
        assert any(r["action"] == "compact" and r["status"] == "done" for rs in runs for r in rs)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    final = subprocess.run(
        maintain_cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stdout + final.stderr
    ids = [r[0] for r in Lakehouse(warehouse).sql("SELECT id FROM silver.t ORDER BY id").rows()]
    assert ids == list(range(20)) + list(range(1000, 1150))


def test_the_endpoints_plan_and_run_for_those_who_may(tmp_path: Path) -> None:
    warehouse = tmp_path / "w"
    lh = Lakehouse(warehouse)
    appends(lh, "silver.t", 20)
    analyst = create_token(lh, "ana", "analyst")
    server = start_server(warehouse, args=["--workers", "1"])
    try:
        with server.client(server.login_token) as client:
            answer = client.get("/maintenance")
            assert answer.status_code == 200, answer.text
            plan = answer.json()["actions"]
            assert [(r["action"], r["reason"]) for r in plan] == [
                ("compact", "20 small files > 16")
            ]
            ran = client.post("/maintenance", json={"table": "silver.t"}).json()
            assert ran["failed"] is False
            assert ran["actions"][0]["files_after"] == 1
        with server.client(analyst) as client:
            assert client.get("/maintenance").status_code == 403
            assert client.post("/maintenance", json={}).status_code == 403
    finally:
        server.stop()


def test_vacuum_leaves_files_no_version_references_yet_for_an_hour(
    tmp_path: Path, table_format: str
) -> None:
    """A writer's files before its commit are referenced by no version: a vacuum that
    removed them would lose its rows."""
    lh = Lakehouse(tmp_path / "w", settings=settings(table_format))
    appends(lh, "silver.t", 6)
    folder = Path(lh.table("silver.t").files()[0].path.removeprefix("file://")).parent
    young, old = folder / "part-young.parquet", folder / "part-old.parquet"
    young.write_bytes(b"being written")
    old.write_bytes(b"left by a killed writer")
    two_hours_ago = datetime.now().timestamp() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    done = by_action(maintain(lh, "silver.t"))
    assert done[("silver.t", "vacuum")]["files_removed"] == 7  # 6 compacted away, 1 stray
    assert young.exists() and not old.exists()
    assert lh.sql("SELECT count(*) FROM silver.t").rows() == [(6,)]


@pytest.mark.parametrize("conflicts", [1, 2])
def test_a_compaction_refused_by_a_concurrent_delete_is_retried_then_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conflicts: int
) -> None:
    """Another writer deletes rows after the compaction read the table and before it
    commits: delta-rs refuses the commit. Once refused, it is done again on the new version;
    refused twice, it is reported as failed and the table keeps every other writer's rows."""
    from lakehouse.tables.delta_format import DeltaFormat

    warehouse = tmp_path / "w"
    lh = Lakehouse(warehouse, settings=settings())
    appends(lh, "silver.c", 8)
    other = Lakehouse(warehouse)
    real = DeltaFormat.optimize
    deleted: list[int] = []

    def optimize_after_another_commit(self, handle, target_size, compression):  # type: ignore[no-untyped-def]
        if len(deleted) < conflicts:
            victim = len(deleted)
            other.table("silver.c").delete(f"id = {victim}")  # commits on top of `handle`
            deleted.append(victim)
        return real(self, handle, target_size, compression)

    monkeypatch.setattr(DeltaFormat, "optimize", optimize_after_another_commit)
    records = by_action(maintain(lh, "silver.c"))
    compact = records[("silver.c", "compact")]
    ids = [r[0] for r in Lakehouse(warehouse).sql("SELECT id FROM silver.c ORDER BY id").rows()]
    assert ids == list(range(conflicts, 8))  # the other writer's deletes all stand
    table = Lakehouse(warehouse).table("silver.c")
    if conflicts == 1:
        assert compact["status"] == "done", compact
        assert len(table.files()) == 1
    else:
        assert compact["status"] == "failed", compact
        assert "refused twice" in compact["reason"] and "next run" in compact["reason"]
        assert len(table.files()) == 6  # the two deletes, no compaction
        assert not failed(maintain(Lakehouse(warehouse, settings=settings()), "silver.c"))
        assert len(Lakehouse(warehouse).table("silver.c").files()) == 1
