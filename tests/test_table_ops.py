from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import ConstraintViolationError, LakehouseError, VersionNotFoundError


def data_files(location: Path) -> list[Path]:
    """The parquet data files under a table's folder (not its log's checkpoints)."""
    return [p for p in location.rglob("*.parquet") if "_delta_log" not in p.parts]


def ids(lh, name="silver.t"):
    return [r[0] for r in lh.sql(f"SELECT id FROM {name} ORDER BY id").rows()]


@pytest.fixture
def lh(lh_formats):
    """Every test of this module runs once per table format."""
    return lh_formats


def test_history_versions_and_time_travel(lh):
    lh.write("silver.t", [{"id": 1}])
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    lh.write("silver.t", [{"id": 2}])
    lh.write("silver.t", [{"id": 3}], mode="overwrite")
    t = lh.table("silver.t")
    assert t.version == 3
    history = t.history()
    assert [h["version"] for h in history] == [3, 2, 1, 0]
    assert history[0]["operation"] == "WRITE"
    assert history[0]["parameters"]["mode"] == "Overwrite"
    assert t.to_arrow(version=0).num_rows == 0  # the table's creation
    assert t.to_arrow(version=1).column("id").to_pylist() == [1]
    assert sorted(t.to_arrow(version=2).column("id").to_pylist()) == [1, 2]
    assert t.to_arrow().column("id").to_pylist() == [3]
    assert t.to_arrow(timestamp=between).column("id").to_pylist() == [1]
    assert t.to_arrow(timestamp=between.isoformat()).column("id").to_pylist() == [1]
    with pytest.raises(VersionNotFoundError, match="no version 7"):
        t.to_arrow(version=7)
    with pytest.raises(VersionNotFoundError):
        t.to_arrow(timestamp="2001-01-01 00:00:00")


def test_restore_adds_a_version(lh):
    lh.write("silver.t", [{"id": 1}])
    lh.write("silver.t", [{"id": 2}])
    lh.write("silver.t", [{"id": 3}], mode="overwrite")
    t = lh.table("silver.t")
    assert t.restore(2) == 4
    assert ids(lh) == [1, 2]
    assert t.history()[0]["operation"] == "RESTORE"
    assert lh.tables()[0].row_count == 2
    with pytest.raises(VersionNotFoundError):
        t.restore(99)
    assert t.version == 4


def test_restore_takes_back_the_transaction_ids_committed_since(lh):
    """A batch whose write a restore took away is written again, not skipped as done."""
    lh.write("bronze.loads", [{"id": 1}], txn=("loader", 1))
    lh.write("bronze.loads", [{"id": 2}], txn=[("loader", 2), ("other", 7)])
    t = lh.table("bronze.loads")
    t.restore(1)
    assert t.transaction_version("loader") == 1 and t.transaction_version("other") is None
    assert not lh.write("bronze.loads", [{"id": 2}], txn=[("loader", 2), ("other", 7)]).skipped
    assert sorted(r[0] for r in lh.sql("SELECT id FROM bronze.loads").rows()) == [1, 2]
    assert lh.write("bronze.loads", [{"id": 2}], txn=("loader", 2)).skipped


def test_delete_by_predicate(lh):
    lh.write("silver.t", [{"id": i, "k": i % 3} for i in range(10)])
    metrics = lh.table("silver.t").delete("k = 0")
    assert metrics["num_deleted_rows"] == 4
    assert ids(lh) == [1, 2, 4, 5, 7, 8]
    assert lh.tables()[0].row_count == 6
    with pytest.raises(LakehouseError, match="delete failed"):
        lh.table("silver.t").delete("no_such_column = 1")
    assert ids(lh) == [1, 2, 4, 5, 7, 8]


def test_optimize_zorder_vacuum(lh):
    for i in range(12):
        lh.write("silver.t", [{"id": i, "x": 12 - i}])
    t = lh.table("silver.t")
    location = Path(t.location)
    assert lh.tables()[0].num_files == 12
    metrics = t.optimize()
    assert metrics["numFilesRemoved"] == 12 and metrics["numFilesAdded"] == 1
    assert lh.tables()[0].num_files == 1
    assert ids(lh) == list(range(12))
    t.zorder(["x", "id"])
    assert ids(lh) == list(range(12))
    with pytest.raises(LakehouseError, match="no column nope"):
        t.zorder(["nope"])
    on_disk = len(data_files(location))
    assert on_disk >= 13
    assert t.vacuum(retain_hours=168) == []  # everything is younger than a week
    removed = t.vacuum(retain_hours=0)
    assert len(removed) == on_disk - 1
    assert len(data_files(location)) == 1
    assert ids(lh) == list(range(12))
    with pytest.raises(VersionNotFoundError):
        t.to_arrow(version=1)


def test_check_constraint(lh):
    lh.write("silver.t", [{"id": 1, "amount": 5}])
    t = lh.table("silver.t")
    t.add_constraint("amount_positive", "amount > 0")
    assert t.constraints == {"amount_positive": "amount > 0"}
    version = t.version
    with pytest.raises(ConstraintViolationError) as err:
        lh.write("silver.t", [{"id": 2, "amount": -1}])
    assert "amount_positive" in str(err.value) or "amount > 0" in str(err.value)
    assert t.version == version
    assert ids(lh) == [1]
    with pytest.raises(ConstraintViolationError):
        t.add_constraint("id_big", "id > 100")


def test_catalog_records_everything(lh):
    lh.write(
        "silver.users",
        pa.table({"user_id": [1, 2], "email": ["a@x", "b@x"]}),
        description="People who signed up",
        owner="data-team",
        tags=["core", "pii"],
        keys=["user_id"],
        column_tags={"email": ("pii",)},
    )
    lh.write("gold.kpis", [{"day": "2026-01-01", "users": 2}], tags=["kpi"])
    info = lh.table("silver.users").info
    assert info.layer == "silver" and info.format == lh.settings.format
    assert info.location == lh.table("silver.users").location
    assert info.owner == "data-team" and info.description == "People who signed up"
    assert info.tags == ["core", "pii"]
    assert info.column_tags == {"email": ["pii"]}
    assert info.keys == ["user_id"]
    assert info.retention_days == 730
    assert info.row_count == 2 and info.num_files == 1 and info.size_bytes > 0
    assert [c["name"] for c in info.columns] == ["user_id", "email"]
    assert info.schema_history[0]["change"] == "created"
    assert [t.name for t in lh.tables(layer="gold")] == ["gold.kpis"]
    assert [t.name for t in lh.tables(tag="kpi")] == ["gold.kpis"]
    assert [t.name for t in lh.tables(tag="pii")] == ["silver.users"]
    assert [t.name for t in lh.tables(column="email")] == ["silver.users"]
    assert [t.name for t in lh.tables(search="signed")] == ["silver.users"]
    assert [t.name for t in lh.tables(search="kpi")] == ["gold.kpis"]
    lh.table("gold.kpis").set(owner="analytics", tags=["kpi", "daily"])
    assert lh.table("gold.kpis").info.owner == "analytics"
    assert lh.table("gold.kpis").info.tags == ["daily", "kpi"]
    with pytest.raises(LakehouseError):
        lh.tables(layer="platinum")


def test_catalog_survives_reopen_and_finds_foreign_tables(tmp_path):
    from deltalake import write_deltalake

    from lakehouse import Lakehouse

    lh = Lakehouse(tmp_path / "w")
    lh.write("silver.a", [{"id": 1}])
    again = Lakehouse(tmp_path / "w")
    assert [t.name for t in again.tables()] == ["silver.a"]
    # A Delta table written by another engine into the warehouse is discovered on use.
    write_deltalake(str(tmp_path / "w" / "gold" / "other"), pa.table({"x": [1, 2, 3]}))
    assert again.sql("SELECT sum(x) FROM gold.other").rows() == [(6,)]
    assert "gold.other" in [t.name for t in again.tables()]


def test_reads_do_not_register_tables_found_on_disk(tmp_path):
    from deltalake import write_deltalake

    from lakehouse import Lakehouse

    lh = Lakehouse(tmp_path / "w")
    write_deltalake(str(tmp_path / "w" / "gold" / "other"), pa.table({"x": [1, 2]}))
    assert lh.exists("gold.other")
    assert lh.table("gold.other").version == 0
    assert not lh.exists("gold.none")
    assert lh.catalog.names() == []
    assert lh.register_found("gold.other")
    assert lh.catalog.names() == ["gold.other"]
    assert not lh.register_found("gold.none")


def test_apply_retention_deletes_old_rows(lh):
    now = datetime.now(UTC)
    from datetime import timedelta

    lh.write(
        "silver.events",
        [
            {"id": 1, "at": now - timedelta(days=40)},
            {"id": 2, "at": now - timedelta(days=5)},
            {"id": 3, "at": now},
        ],
        date_column="at",
        retention_days=30,
    )
    result = lh.table("silver.events").apply_retention()
    assert result["deleted_rows"] == 1
    assert ids(lh, "silver.events") == [2, 3]
    lh.write("silver.plain", [{"id": 1}])
    with pytest.raises(LakehouseError, match="no date column"):
        lh.table("silver.plain").apply_retention()
