"""Iceberg tables: chosen by the settings, by a write or by a dataset's header, found again
by what lies in the warehouse, partitioned by transforms, written copy-on-write with
exactly-once transaction ids, and read by pyiceberg alone exactly as the SQL engine reads
them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.names import parse_table_name
from lakehouse.settings.model import Settings
from lakehouse.tables.formats import format_of
from tests.helpers.iceberg import iceberg_rows, iceberg_table
from tests.test_conformance import canonical


@pytest.fixture
def lh(tmp_path) -> Lakehouse:
    return Lakehouse(tmp_path / "warehouse", settings=Settings(format="iceberg"))


def events(start: int, n: int) -> pa.Table:
    base = dt.datetime(2026, 1, 30, tzinfo=dt.UTC)
    return pa.table(
        {
            "tenant": [f"t{i % 2}" for i in range(start, start + n)],
            "id": pa.array(range(start, start + n), pa.int64()),
            "at": [base + dt.timedelta(hours=7 * i) for i in range(start, start + n)],
            "amount": [float(i) for i in range(start, start + n)],
        }
    )


def test_every_table_reads_the_same_through_pyiceberg(lh):
    lh.write("bronze.raw", events(0, 20))  # metadata columns, partitioned by ingest day
    lh.write("silver.daily", events(0, 30), partition_by=["day(at)", "tenant"])
    lh.write("silver.monthly", events(0, 30), partition_by=["month(at)"])
    lh.write("silver.yearly", events(0, 30), partition_by=["year(at)"])
    lh.write("silver.daily", events(20, 30), mode="merge", keys=["tenant", "id"])
    lh.table("silver.monthly").delete("amount < 5")
    lh.write("gold.kpis", events(0, 5), mode="overwrite", predicate="amount >= 0")
    lh.write("gold.kpis", events(2, 2).append_column("note", pa.array(["x", "y"])), evolve=True)
    written = [t.name for t in lh.tables()]
    assert len(written) == 5
    for name in written:
        assert lh.table(name).format.name == "iceberg"
        ours = lh.sql(f"SELECT * FROM {name}").to_arrow()
        assert canonical(ours) == canonical(iceberg_rows(lh, name, None)), name
        assert lh.catalog.get(name).format == "iceberg"


def test_transforms_partition_the_files(lh):
    lh.write("silver.daily", events(0, 30), partition_by=["day(at)", "tenant"])
    table = iceberg_table(lh, "silver.daily")
    assert [str(f.transform) for f in table.spec().fields] == ["day", "identity"]
    assert lh.table("silver.daily").partition_by == ["day(at)", "tenant"]
    files = list(table.scan().plan_files())
    days = {f.file.partition[0] for f in files}
    assert len(days) > 1 and len(files) >= len(days)


def test_merge_on_composite_keys_rewrites_only_the_files_it_touches(lh):
    lh.write("silver.t", events(0, 10), partition_by=["tenant"])
    lh.write("silver.t", events(100, 4))  # another file, no key in common
    before = {f.file.file_path for f in iceberg_table(lh, "silver.t").scan().plan_files()}
    change = events(0, 2).set_column(3, "amount", pa.array([-1.0, -2.0]))
    result = lh.write("silver.t", change, mode="merge", keys=["tenant", "id"])
    assert (result.updated, result.inserted) == (2, 0)
    after = {f.file.file_path for f in iceberg_table(lh, "silver.t").scan().plan_files()}
    assert len(before - after) == 2  # the two tenant files of version 1, not the append's
    amounts = dict(lh.sql("SELECT id, amount FROM silver.t WHERE id < 2").rows())
    assert amounts == {0: -1.0, 1: -2.0}
    assert lh.sql("SELECT count(*) FROM silver.t").rows() == [(14,)]
    summary = iceberg_table(lh, "silver.t").current_snapshot().summary
    assert summary.operation.value == "overwrite"


def test_transaction_ids_commit_with_the_rows(lh):
    first = lh.write("silver.t", events(0, 3), txn=("source", 1))
    again = lh.write("silver.t", events(0, 3), txn=("source", 1))
    assert again.skipped and lh.sql("SELECT count(*) FROM silver.t").rows() == [(3,)]
    props = iceberg_table(lh, "silver.t").current_snapshot().summary.additional_properties
    assert '"source": 1' in props["lakehouse.transactions"]
    assert lh.table("silver.t").transaction_version("source") == 1
    assert first.version == 1


def test_the_format_is_found_by_what_lies_in_the_warehouse(tmp_path):
    Lakehouse(tmp_path / "w").write("silver.d", events(0, 2))
    Lakehouse(tmp_path / "w").write("silver.i", events(0, 2), format="iceberg")
    reopened = Lakehouse(tmp_path / "w")  # Delta by default: the tables keep their own
    reopened.write("silver.i", events(2, 2))
    assert format_of(reopened.storage, parse_table_name("silver.i")).name == "iceberg"
    assert format_of(reopened.storage, parse_table_name("silver.d")).name == "delta"
    assert reopened.sql("SELECT count(*) FROM silver.i").rows() == [(4,)]
    assert reopened.table("silver.i").version == 2


def test_time_travel_restore_and_vacuum(lh):
    lh.write("silver.t", events(0, 3))
    lh.write("silver.t", events(3, 3))
    lh.write("silver.t", events(6, 3), mode="overwrite")
    t = lh.table("silver.t")
    assert lh.sql("SELECT count(*) FROM silver.t VERSION AS OF 2").rows() == [(6,)]
    assert t.to_arrow(version=0).num_rows == 0
    t.restore(2)
    assert t.version == 4 and lh.sql("SELECT count(*) FROM silver.t").rows() == [(6,)]
    assert [h["operation"] for h in t.history()][:2] == ["RESTORE", "WRITE"]
    removed = t.vacuum(retain_hours=0)
    assert len(removed) == 1  # the overwrite's file: no kept snapshot needs it
    assert lh.sql("SELECT count(*) FROM silver.t").rows() == [(6,)]
    assert canonical(t.to_arrow()) == canonical(iceberg_rows(lh, "silver.t", None))


def test_a_dataset_header_chooses_the_format(tmp_path):
    from lakehouse.pipeline.definition import build_dataset

    header = {"name": "silver.t", "table_format": "iceberg"}
    ds = build_dataset(tmp_path / "t.sql", None, header, {}, sql="SELECT 1", sql_line=1)
    assert ds.options["format"] == "iceberg"


def test_concurrent_writers_commit_one_after_the_other(tmp_path):
    """Writers racing on one table: a losing commit is retried on the new snapshot, so
    every row is kept once and every write reports a version of its own."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path / "w"
    Lakehouse(root, settings=Settings(format="iceberg")).write("silver.t", events(0, 1))

    def writer(proc: int) -> list[int]:
        lh = Lakehouse(root)
        versions = []
        for i in range(5):
            start = 1000 * (proc + 1) + i
            versions.append(lh.write("silver.t", events(start, 1)).version)
        merged = lh.write("silver.t", events(proc, 1), mode="merge", keys=["tenant", "id"])
        return versions + [merged.version]

    with ThreadPoolExecutor(4) as pool:
        reported = [v for vs in pool.map(writer, range(4)) for v in vs]
    lh = Lakehouse(root)
    assert sorted(reported) == list(range(2, 2 + 24))
    assert lh.sql("SELECT count(*), count(DISTINCT id) FROM silver.t").rows() == [(24, 24)]
    assert canonical(lh.sql("SELECT * FROM silver.t").to_arrow()) == canonical(
        iceberg_rows(lh, "silver.t", None)
    )


def test_a_dropped_table_is_made_again(lh):
    lh.write("silver.t", events(0, 3))
    lh.drop("silver.t")
    lh.write("silver.t", events(0, 2), format="delta")
    assert lh.table("silver.t").format.name == "delta"
    lh.drop("silver.t")
    lh.write("silver.t", events(0, 1))
    assert lh.table("silver.t").format.name == "iceberg" and lh.table("silver.t").version == 1
    assert canonical(lh.sql("SELECT * FROM silver.t").to_arrow()) == canonical(events(0, 1))


def test_rows_appended_in_a_range(lh):
    """What incremental pipelines read: the files added in a range of versions, unless a
    version in it changed or removed rows; a rollback of what was added since, and a
    compaction of files added since, leave the range append-only."""
    from lakehouse.tables.format import NotAppendOnly
    from lakehouse.tables.iceberg_format import ICEBERG

    name = parse_table_name("silver.t")
    for i in range(3):
        lh.write("silver.t", events(10 * i, 2))  # versions 1, 2, 3
    added = ICEBERG.appended(lh.storage, name, 1, 3)
    assert sum(f.num_records for f in added.files) == 4
    lh.write("silver.t", events(90, 2))  # 4
    lh.table("silver.t").restore(3)  # 5: the rows of 4 taken back
    assert sum(f.num_records for f in ICEBERG.appended(lh.storage, name, 3, 5).files) == 0
    lh.write("silver.t", events(0, 1), mode="merge", keys=["tenant", "id"])  # 6
    with pytest.raises(NotAppendOnly):
        ICEBERG.appended(lh.storage, name, 3, 6)


def test_columns_are_read_by_field_id(lh):
    """pyiceberg stores a column whose name parquet cannot hold under another name; the
    read path finds it by its field id, nested fields too."""
    rows = pa.table(
        {
            "id": [1, 2],
            "name; full": ["Ann", None],
            "a.b": [{"x y": 1}, {"x y": 2}],
        }
    )
    lh.write("bronze.people", rows)
    got = lh.sql('SELECT id, "name; full", "a.b" FROM bronze.people ORDER BY id').rows()
    assert got == [(1, "Ann", {"x y": 1}), (2, None, {"x y": 2})]
    assert canonical(lh.sql("SELECT * FROM bronze.people").to_arrow()) == canonical(
        iceberg_rows(lh, "bronze.people", None)
    )


def test_changes_keep_columns_stored_under_another_name(lh):
    rows = pa.table({"id": [1, 2, 3], "name; full": ["Ann", "Bo", "Cy"], "k": [1, 1, 2]})
    lh.write("silver.people", rows)
    lh.write("silver.people", rows.slice(0, 1), mode="merge", keys=["id", "name; full"])
    lh.table("silver.people").delete("`name; full` = 'Bo'")
    lh.table("silver.people").optimize()
    got = lh.sql('SELECT id, "name; full" FROM silver.people ORDER BY id').rows()
    assert got == [(1, "Ann"), (3, "Cy")]


def test_a_type_change_iceberg_cannot_make_is_refused_by_name(lh):
    from lakehouse.errors import SchemaMismatchError

    lh.write("silver.t", pa.table({"k": pa.array([1], pa.int32())}))
    lh.write("silver.t", pa.table({"k": pa.array([2**40], pa.int64())}), evolve=True)
    with pytest.raises(SchemaMismatchError, match="'k' expects long, got double"):
        lh.write("silver.t", pa.table({"k": pa.array([1.5], pa.float64())}), evolve=True)
    assert lh.sql("SELECT k FROM silver.t ORDER BY k").rows() == [(1,), (2**40,)]


def test_a_table_the_catalog_lost_is_registered_with_its_own_options(lh):
    """A writer killed between its commit and the catalog: the table is found by what lies
    in the warehouse and registered with the options its creation recorded."""
    lh.write("silver.t", events(0, 3), owner="ops", tags=["kept"])
    lh.catalog.drop("silver.t")
    assert lh.sql("SELECT count(*) FROM silver.t").rows() == [(3,)]
    info = lh.catalog.get("silver.t")
    assert info is not None and info.format == "iceberg"
    assert info.owner == "ops" and info.tags == ["kept"] and info.version == 1


def test_the_settings_file_names_the_format_of_new_tables(tmp_path):
    from lakehouse.settings import load_settings

    config = tmp_path / "lakehouse.yaml"
    config.write_text("format: iceberg\nwarehouse: w\n")
    lh = Lakehouse.from_settings(load_settings(config, env={}).settings)
    lh.write("gold.t", events(0, 2))
    assert lh.table("gold.t").format.name == "iceberg"
    assert load_settings(None, env={"LAKEHOUSE_FORMAT": "iceberg"}).settings.format == "iceberg"


def test_merge_combines_and_deletes_by_flag(lh):
    lh.write("gold.counts", pa.table({"k": ["a", "b", "c"], "n": [1, 2, 3]}))
    result = lh.write(
        "gold.counts",
        pa.table({"k": ["a", "b", "d"], "n": [10, 0, 4], "gone": [False, True, False]}),
        mode="merge",
        keys=["k"],
        merge_combine={"n": "sum"},
        merge_delete="gone",
    )
    assert (result.inserted, result.updated, result.deleted) == (1, 1, 1)
    got = lh.sql("SELECT k, n FROM gold.counts ORDER BY k").rows()
    assert got == [("a", 11), ("c", 3), ("d", 4)]
