"""Bad input on Iceberg tables: rows of other types merged in, a catalog entry whose
metadata file is missing, two writers committing the same table. Each gives a clear error
or a retry, and a failed write leaves the table at its last snapshot."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import CatalogError, SchemaMismatchError
from lakehouse.settings.model import Settings
from lakehouse.tables.format import CommitConflict, WriteJob
from lakehouse.tables.prepared import Prepared
from lakehouse.tables.schema import plan_schema


@pytest.fixture
def lh(tmp_path) -> Lakehouse:
    return Lakehouse(tmp_path / "warehouse", settings=Settings(format="iceberg"))


def _accounts(lh: Lakehouse) -> None:
    rows = [{"id": i, "amount": i * 1.5, "owner": f"o{i}"} for i in range(5)]
    lh.write("silver.accounts", rows, mode="merge", keys=["id"])


def test_rows_of_other_types_merged_in_are_refused_and_change_nothing(lh, tmp_path):
    _accounts(lh)
    before = lh.table("silver.accounts").version
    rows = lh.sql("SELECT * FROM silver.accounts ORDER BY id").rows()
    # Rows from a Delta table whose columns have other types than the Iceberg table's.
    delta = Lakehouse(tmp_path / "delta")
    delta.write("silver.accounts", [{"id": "7", "amount": Decimal("1.25"), "owner": "x"}])
    foreign = delta.sql("SELECT * FROM silver.accounts").to_arrow()
    with pytest.raises(SchemaMismatchError, match="column 'id' expects long, got string"):
        lh.write("silver.accounts", foreign, mode="merge", keys=["id"])
    bad = [
        ([{"id": 1, "amount": "lots", "owner": "b"}], "'amount' expects double, got string"),
        ([{"id": 1, "amount": 2.0, "owner": {"first": "b"}}], "'owner' expects string"),
        ([{"id": 2.5, "amount": 2.0, "owner": "c"}], "'id' expects long, got double"),
    ]
    for data, message in bad:
        with pytest.raises(SchemaMismatchError, match=message):
            lh.write("silver.accounts", data, mode="merge", keys=["id"])
    assert lh.table("silver.accounts").version == before
    assert lh.sql("SELECT * FROM silver.accounts ORDER BY id").rows() == rows
    # Types that convert safely (a narrower integer, a float32) are merged.
    narrow = pa.table(
        {"id": pa.array([1], pa.int32()), "amount": pa.array([9.5], pa.float32()), "owner": ["n"]}
    )
    lh.write("silver.accounts", narrow, mode="merge", keys=["id"])
    assert lh.sql("SELECT amount, owner FROM silver.accounts WHERE id = 1").rows() == [(9.5, "n")]


def test_a_catalog_entry_whose_metadata_file_is_missing_is_refused_by_name(lh):
    _accounts(lh)
    lh.write("silver.accounts", [{"id": 9, "amount": 1.0, "owner": "z"}], mode="merge", keys=["id"])
    rows = lh.sql("SELECT * FROM silver.accounts ORDER BY id").rows()
    current = Path(lh.table("silver.accounts").files()[0].path).parents[1] / "metadata"
    newest = max(current.glob("*.metadata.json"), key=lambda p: p.stat().st_mtime_ns)
    kept = newest.read_bytes()
    newest.unlink()

    other = Lakehouse(lh.root)  # another process: nothing of the table held
    for act in (
        lambda: other.sql("SELECT count(*) FROM silver.accounts"),
        lambda: other.table("silver.accounts").version,
        lambda: other.write("silver.accounts", [{"id": 10, "amount": 2.0, "owner": "y"}]),
    ):
        with pytest.raises(CatalogError, match=f"metadata file .*{newest.name}, which is missing"):
            act()
    assert not newest.exists()  # nothing was written over the table
    newest.write_bytes(kept)
    assert Lakehouse(lh.root).sql("SELECT * FROM silver.accounts ORDER BY id").rows() == rows


def test_two_writers_committing_the_same_table(lh):
    _accounts(lh)
    table = lh.table("silver.accounts")
    fmt = table.format
    stale = fmt.load(lh.storage, table.name)  # one writer's view of the table
    lh.write("silver.accounts", [{"id": 20, "amount": 1.0, "owner": "a"}])  # the other's commit
    version, rows = table.version, lh.sql("SELECT * FROM silver.accounts ORDER BY id").rows()
    data = pa.table({"id": [30], "amount": [3.0], "owner": ["b"]})
    prepared = Prepared(table.name, data, lh.storage.layer_defaults["silver"], None, None)
    plan = plan_schema("silver.accounts", fmt.schema(stale), prepared.schema, False)
    job = WriteJob(
        stale, prepared, plan, lh.storage.layer_defaults["silver"], fmt.commit("append"), True
    )
    with pytest.raises(CommitConflict):
        fmt.append(job)
    assert table.version == version  # at its last snapshot
    assert lh.sql("SELECT * FROM silver.accounts ORDER BY id").rows() == rows

    # Through the write path, writers that meet are retried on the new snapshot.
    start = threading.Barrier(3)
    results: dict[int, list[int]] = {}

    def writer(n: int) -> None:
        start.wait(30)
        results[n] = [
            lh.write(
                "silver.accounts",
                [{"id": 100 * n + i, "amount": float(i), "owner": f"w{n}"}],
                mode="merge",
                keys=["id"],
            ).version
            for i in range(4)
        ]

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    versions = sorted(v for vs in results.values() for v in vs)
    assert versions == list(range(version + 1, version + 13))
    counts = lh.sql("SELECT owner, count(*) FROM silver.accounts GROUP BY owner").rows()
    assert {o: c for o, c in counts if o.startswith("w")} == {"w1": 4, "w2": 4, "w3": 4}
