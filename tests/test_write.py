from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lakehouse import InvalidDataError, Lakehouse, LakehouseError, SchemaMismatchError

ROWS = [
    {"user_id": 1, "name": "ada", "score": 1.5},
    {"user_id": 2, "name": "bob", "score": 2.5},
]


def rows(lh, sql):
    return lh.sql(sql).rows()


@pytest.fixture
def lh(lh_formats):
    """Every test of this module runs once per table format."""
    return lh_formats


@pytest.fixture
def delta_lh(tmp_path):
    """A Delta warehouse, for the tests of Delta's own log and of the files delta-rs writes
    (Iceberg's are tested in test_iceberg.py): these are not run per format."""
    return Lakehouse(tmp_path / "delta-warehouse")


@pytest.mark.parametrize(
    "make",
    [
        lambda: ROWS,
        lambda: pa.Table.from_pylist(ROWS),
        lambda: pa.Table.from_pylist(ROWS).to_batches(),
        lambda: pa.RecordBatch.from_pylist(ROWS),
        lambda: pa.Table.from_pylist(ROWS).to_reader(),
        lambda: pd.DataFrame(ROWS),
        lambda: pl.DataFrame(ROWS),
        lambda: pl.DataFrame(ROWS).lazy(),
        lambda: {"user_id": [1, 2], "name": ["ada", "bob"], "score": [1.5, 2.5]},
    ],
    ids=["dicts", "arrow", "batches", "batch", "reader", "pandas", "polars", "lazy", "columns"],
)
def test_write_accepts_every_input_kind(lh, make):
    result = lh.write("silver.users", make())
    # Version 0 creates the table (schema, partitioning); the first rows are version 1.
    assert result.version == 1 and result.rows == 2
    assert rows(lh, "SELECT user_id, name, score FROM silver.users ORDER BY 1") == [
        (1, "ada", 1.5),
        (2, "bob", 2.5),
    ]


def test_string_view_and_nanoseconds_are_normalised(lh, tmp_path):
    data = pl.DataFrame(
        {"s": ["x", "y"], "t": [dt.datetime(2026, 1, 1, 1, 2, 3, 456789)] * 2}
    ).with_columns(pl.col("t").cast(pl.Datetime("ns")))
    lh.write("silver.views", data)
    schema = lh.table("silver.views").schema
    assert schema.field("s").type == pa.string()
    assert schema.field("t").type == pa.timestamp("us")
    assert rows(lh, "SELECT s, t FROM silver.views ORDER BY s")[0] == (
        "x",
        dt.datetime(2026, 1, 1, 1, 2, 3, 456789),
    )


def test_append_overwrite_predicate_and_merge(lh):
    lh.write("silver.users", ROWS, mode="append")
    lh.write("silver.users", [{"user_id": 3, "name": "cy", "score": 0.5}])
    assert rows(lh, "SELECT count(*) FROM silver.users") == [(3,)]
    lh.write(
        "silver.users",
        [{"user_id": 3, "name": "cyd", "score": 9.0}],
        mode="overwrite",
        predicate="user_id = 3",
    )
    assert rows(lh, "SELECT user_id, name FROM silver.users ORDER BY 1") == [
        (1, "ada"),
        (2, "bob"),
        (3, "cyd"),
    ]
    result = lh.write(
        "silver.users",
        [
            {"user_id": 2, "name": "bobby", "score": 3.0},
            {"user_id": 4, "name": "dee", "score": 4.0},
            {"user_id": 4, "name": "dee2", "score": 4.5},  # the last row per key wins
        ],
        mode="merge",
        keys=["user_id"],
    )
    assert (result.inserted, result.updated) == (1, 1)
    assert rows(lh, "SELECT user_id, name, score FROM silver.users ORDER BY 1") == [
        (1, "ada", 1.5),
        (2, "bobby", 3.0),
        (3, "cyd", 9.0),
        (4, "dee2", 4.5),
    ]
    lh.write("silver.users", [{"user_id": 9, "name": "z", "score": 0.0}], mode="overwrite")
    assert rows(lh, "SELECT user_id FROM silver.users") == [(9,)]
    assert lh.table("silver.users").version == 5


def test_merge_updates_only_given_columns(lh):
    lh.write("silver.users", ROWS)
    lh.write("silver.users", [{"user_id": 1, "score": 7.0}], mode="merge", keys=["user_id"])
    assert rows(lh, "SELECT user_id, name, score FROM silver.users ORDER BY 1") == [
        (1, "ada", 7.0),
        (2, "bob", 2.5),
    ]


def test_merge_creates_missing_table(lh):
    result = lh.write("silver.users", ROWS + ROWS[:1], mode="merge", keys=["user_id"])
    # Version 0 creates the empty table, so racing first merges apply one after another.
    assert result.version == 1
    assert lh.sql("SELECT count(*) FROM silver.users VERSION AS OF 0").scalar() == 0
    assert result.inserted == 2
    assert rows(lh, "SELECT user_id, name FROM silver.users ORDER BY 1") == [
        (1, "ada"),
        (2, "bob"),
    ]


def test_wrong_type_names_column_and_commits_nothing(lh):
    lh.write("silver.users", ROWS)
    before = lh.table("silver.users").version
    with pytest.raises(SchemaMismatchError) as err:
        lh.write("silver.users", [{"user_id": "three", "name": "x", "score": 1.0}])
    message = str(err.value)
    assert "'user_id'" in message and "long" in message and "string" in message
    assert err.value.column == "user_id"
    assert err.value.expected == "long" and err.value.given == "string"
    assert lh.table("silver.users").version == before
    assert rows(lh, "SELECT count(*) FROM silver.users") == [(2,)]


def test_new_column_without_evolve_is_refused(lh):
    lh.write("silver.users", ROWS)
    with pytest.raises(SchemaMismatchError) as err:
        lh.write("silver.users", [{"user_id": 3, "name": "c", "score": 1.0, "age": 30}])
    assert "'age'" in str(err.value) and "evolve=True" in str(err.value)
    assert lh.table("silver.users").version == 1


def test_evolve_adds_columns_and_records_schema_history(lh):
    lh.write("silver.users", ROWS)
    result = lh.write(
        "silver.users", [{"user_id": 3, "name": "c", "score": 1.0, "age": 30}], evolve=True
    )
    assert result.schema_changes == ["added column age"]
    assert rows(lh, "SELECT user_id, age FROM silver.users ORDER BY 1") == [
        (1, None),
        (2, None),
        (3, 30),
    ]
    history = lh.table("silver.users").schema_history()
    assert [h["version"] for h in history] == [1, 2]
    assert history[1]["change"] == "added column age"
    assert [c["name"] for c in history[1]["columns"]] == ["user_id", "name", "score", "age"]


def test_widening_needs_evolve_and_keeps_data(lh):
    small = pa.table({"id": pa.array([1, 2], pa.int32()), "v": pa.array([1.0, 2.0], pa.float32())})
    lh.write("silver.nums", small)
    big = pa.table({"id": pa.array([2**40], pa.int64()), "v": pa.array([0.1], pa.float64())})
    with pytest.raises(SchemaMismatchError) as err:
        lh.write("silver.nums", big)
    assert "integer" in str(err.value) and "long" in str(err.value)
    assert "evolve=True" in str(err.value)
    result = lh.write("silver.nums", big, evolve=True)
    assert "widened id to long" in result.schema_changes
    schema = lh.table("silver.nums").schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("v").type == pa.float64()
    assert rows(lh, "SELECT id FROM silver.nums ORDER BY id") == [(1,), (2,), (2**40,)]
    # Narrower data goes into a wider column without ceremony.
    lh.write("silver.nums", pa.table({"id": pa.array([5], pa.int16())}))
    assert rows(lh, "SELECT count(*), count(v) FROM silver.nums") == [(4, 3)]


def test_missing_nullable_columns_are_filled(lh):
    lh.write("silver.users", ROWS)
    lh.write("silver.users", [{"user_id": 3}])
    assert rows(lh, "SELECT name, score FROM silver.users WHERE user_id = 3") == [(None, None)]


def test_all_null_column_on_create_is_refused(lh):
    with pytest.raises(SchemaMismatchError) as err:
        lh.write("silver.t", [{"a": 1, "b": None}])
    assert "'b'" in str(err.value) and "cast" in str(err.value)
    assert "silver.t" not in [t.name for t in lh.tables()]


def test_mixed_types_in_rows_name_the_column(lh):
    with pytest.raises(InvalidDataError) as err:
        lh.write("silver.t", [{"a": 1, "b": "x"}, {"a": 2, "b": 3}])
    assert "'b'" in str(err.value)


def test_bad_arguments(lh):
    with pytest.raises(InvalidDataError):
        lh.write("silver.t", 42)
    with pytest.raises(LakehouseError, match="needs keys"):
        lh.write("silver.t", ROWS, mode="merge")
    with pytest.raises(LakehouseError, match="unknown write mode"):
        lh.write("silver.t", ROWS, mode="upsert")
    with pytest.raises(LakehouseError, match="merge key"):
        lh.write("silver.t", ROWS, mode="merge", keys=["nope"])
    assert lh.tables() == []


def test_bronze_gets_metadata_columns_and_ingest_day_partitions(lh):
    lh.write("bronze.events", ROWS, source_system="crm", source="file:a.json")
    table = lh.table("bronze.events")
    assert table.partition_by == ["_ingest_date"]
    got = lh.sql(
        "SELECT _source_system, _source, _ingest_date, _ingested_at, _record_hash "
        "FROM bronze.events ORDER BY user_id"
    ).to_dicts()
    assert {r["_source_system"] for r in got} == {"crm"}
    assert {r["_source"] for r in got} == {"file:a.json"}
    assert got[0]["_ingest_date"] == got[0]["_ingested_at"].date()
    assert len({r["_record_hash"] for r in got}) == 2
    # The same record ingested again has the same hash.
    lh.write("bronze.events", ROWS[:1])
    hashes = rows(lh, "SELECT _record_hash FROM bronze.events WHERE user_id = 1")
    assert hashes[0] == hashes[1]


def _codecs(path: str) -> set[str]:
    codecs = set()
    for f in Path(path).rglob("*.parquet"):
        meta = pq.ParquetFile(f).metadata
        codecs |= {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    return codecs


def test_layer_defaults_compression_partitioning_retention(lh):
    lh.write("bronze.raw", ROWS)
    lh.write(
        "silver.events",
        [{"id": 1, "event_time": dt.datetime(2026, 3, 4, 5, tzinfo=dt.UTC)}],
        date_column="event_time",
    )
    lh.write(
        "gold.monthly",
        [{"id": 1, "day": dt.date(2026, 3, 4)}, {"id": 2, "day": dt.date(2026, 4, 1)}],
        date_column="day",
    )
    lh.write("silver.custom", ROWS, compression="snappy", retention_days=10, partition_by=["name"])
    assert _codecs(lh.table("bronze.raw").location) == {"SNAPPY"}
    assert _codecs(lh.table("silver.events").location) == {"ZSTD"}
    assert _codecs(lh.table("silver.custom").location) == {"SNAPPY"}
    assert lh.table("silver.events").partition_by == ["event_time_day"]
    assert lh.table("gold.monthly").partition_by == ["day_month"]
    assert lh.table("silver.custom").partition_by == ["name"]
    assert rows(lh, "SELECT day_month FROM gold.monthly ORDER BY id") == [
        (dt.date(2026, 3, 1),),
        (dt.date(2026, 4, 1),),
    ]
    retention = {t.name: t.retention_days for t in lh.tables()}
    assert retention == {
        "bronze.raw": 90,
        "gold.monthly": 2555,
        "silver.custom": 10,
        "silver.events": 730,
    }


def test_tables_stay_readable_by_other_engines(delta_lh):
    lh = delta_lh
    lh.write("silver.users", ROWS, partition_by=["name"])
    lh.write("silver.users", [{"user_id": 3, "name": "ada", "score": 0.0}])
    path = lh.table("silver.users").location
    assert DeltaTable(path).to_pyarrow_table().num_rows == 3
    assert pl.read_delta(path).height == 3
    import duckdb

    files = DeltaTable(path).file_uris()
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet({files})").fetchall() == [(3,)]


def test_transaction_ids_make_writes_idempotent(lh):
    first = lh.write("bronze.feed", ROWS, txn=("feed-1", 1))
    assert not first.skipped and first.version == 1
    table = lh.table("bronze.feed")
    assert table.transaction_version("feed-1") == 1
    again = lh.write("bronze.feed", ROWS, txn=("feed-1", 1))  # a retry after a crash
    assert again.skipped and again.rows == 0 and again.version == 1
    older = lh.write("bronze.feed", ROWS, txn=("feed-1", 0))
    assert older.skipped
    assert rows(lh, "SELECT count(*) FROM bronze.feed") == [(2,)]
    lh.write("bronze.feed", ROWS, txn=("feed-1", 2))
    lh.write("bronze.feed", ROWS[:1], mode="merge", keys=["user_id"], txn=("other", 7))
    assert table.transaction_version("feed-1") == 2
    assert table.transaction_version("other") == 7
    assert table.transaction_version("unknown") is None
    assert rows(lh, "SELECT count(*) FROM bronze.feed") == [(4,)]


def _row_groups(location: str) -> list[int]:
    sizes = []
    for uri in DeltaTable(location).file_uris():
        meta = pq.ParquetFile(uri.removeprefix("file://")).metadata
        sizes += [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    return sizes


def test_row_groups_are_sized_for_parallel_scans(delta_lh):
    """DuckDB scans a file's row groups in parallel: every path that writes data files
    (streamed and whole-table writes, partitioned or not, merges, compaction) cuts them
    into row groups of at most ROW_GROUP_ROWS rows."""
    lh = delta_lh
    from lakehouse.tables.encoding import ROW_GROUP_ROWS

    n = ROW_GROUP_ROWS * 5 // 2
    table = pa.table({"id": pa.array(range(n), pa.int64()), "v": pa.array(range(n), pa.float64())})
    lh.write("bronze.raw", table)  # partitioned by ingestion day
    lh.write("silver.flat", table.to_reader())
    lh.write("silver.keyed", table.slice(0, 10), keys=["id"], mode="merge")
    lh.write("silver.keyed", table, keys=["id"], mode="merge")
    for name in ("bronze.raw", "silver.flat", "silver.keyed"):
        sizes = _row_groups(lh.table(name).location)
        assert sum(sizes) == n, name
        assert max(sizes) <= ROW_GROUP_ROWS and len(sizes) >= 3, (name, sizes)
    for start in range(0, n, n // 3 + 1):  # small files, compacted into one
        lh.write("silver.compact", table.slice(start, n // 3 + 1))
    lh.table("silver.compact").optimize()
    sizes = _row_groups(lh.table("silver.compact").location)
    assert lh.table("silver.compact").info.num_files == 1
    assert sum(sizes) == n and max(sizes) <= ROW_GROUP_ROWS, sizes


def _chunks(location: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for uri in DeltaTable(location).file_uris():
        meta = pq.ParquetFile(uri.removeprefix("file://")).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for i in range(group.num_columns):
                chunk = group.column(i)
                out.setdefault(chunk.path_in_schema, []).append(chunk)
    return out


def test_dictionary_only_for_columns_that_repeat(delta_lh):
    """A column of distinct values (ids, hashes) is written without a dictionary; one of
    few values keeps it, and one of 10,000 values per row group (80 KB of dictionary, like
    TPC-H's l_suppkey) keeps it in every page: stored in far less than its plain size.
    The same on every write path: streamed, whole-table, partitioned, merge."""
    lh = delta_lh
    import numpy as np

    from lakehouse.tables.encoding import ROW_GROUP_ROWS

    n = ROW_GROUP_ROWS * 2
    rng = np.random.default_rng(5)
    table = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "key": pa.array([f"k{i:09d}" for i in range(n)]),
            "kind": pa.array(rng.choice(["a", "b", "c"], n)),
            "supplier": pa.array(rng.integers(0, 10_000, n, dtype=np.int64)),
        }
    )
    lh.write("silver.streamed", table.to_reader())
    lh.write("silver.whole", table)
    lh.write("bronze.events", table)  # partitioned, with the metadata columns
    lh.write("silver.merged", table.slice(0, 10), keys=["id"], mode="merge")
    lh.write("silver.merged", table, keys=["id"], mode="merge")
    for name in ("silver.streamed", "silver.whole", "bronze.events", "silver.merged"):
        chunks = _chunks(lh.table(name).location)
        for column in ("id", "key") + (("_record_hash",) if name == "bronze.events" else ()):
            assert not any(c.has_dictionary_page for c in chunks[column]), (name, column)
        for column in ("kind", "supplier"):
            assert all(c.has_dictionary_page for c in chunks[column]), (name, column)
        for c in chunks["supplier"]:  # no fallback to plain pages
            assert c.total_uncompressed_size < c.num_values * 8 // 2, (name, c)


def test_a_column_that_cycles_through_its_values_keeps_its_dictionary(delta_lh):
    """Rows ordered by one key, another column cycling through 10,000 values (TPC-H's
    partsupp: four suppliers per part, 8% of the rows distinct). Every n-th row of it
    looks distinct; the column is written with a dictionary all the same."""
    lh = delta_lh
    import numpy as np

    from lakehouse.tables.encoding import ROW_GROUP_ROWS

    i = np.arange(ROW_GROUP_ROWS * 2, dtype=np.int64)
    table = pa.table({"part": i // 4, "supplier": (i // 4 + (i % 4) * 2_500) % 10_000})
    lh.write("silver.partsupp", table)
    lh.write("silver.partsupp_streamed", table.to_reader(max_chunksize=50_000))
    for name in ("silver.partsupp", "silver.partsupp_streamed"):
        chunks = _chunks(lh.table(name).location)
        assert all(c.has_dictionary_page for c in chunks["supplier"]), name
        assert not any(c.has_dictionary_page for c in chunks["part"]), name


def test_pages_end_on_duckdbs_vectors(delta_lh):
    """DuckDB reads 2,048 rows at a time and keeps a dictionary-encoded column as a
    dictionary only when those rows lie in one page (a GROUP BY over TPC-H's
    l_returnflag took 18 ms instead of 10 without): every data page of a dictionary
    column holds a multiple of 2,048 rows (but the last of a row group), on every write
    path and whatever the sizes of the batches handed in. delta-rs writes the batches of
    a stream out of order, so the last one, which need not be a multiple, may land
    before others: one page of a file may be off."""
    lh = delta_lh
    import numpy as np

    from lakehouse.tables import parallel
    from tests.helpers.parquet_pages import data_page_rows

    vector = 2048  # DuckDB's STANDARD_VECTOR_SIZE

    n = parallel.MIN_ROWS + 777  # a whole table this large goes through pyarrow's writer
    rng = np.random.default_rng(3)
    table = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "flag": pa.array(rng.choice(["A", "N", "R"], n)),
            "supplier": pa.array(rng.integers(0, 10_000, n, dtype=np.int64)),
        }
    )
    odd = pa.Table.from_batches(table.to_batches(max_chunksize=20_011))  # odd-sized chunks
    lh.write("silver.whole", odd)
    lh.write("silver.streamed", odd.to_reader())
    lh.write("bronze.events", odd.to_reader())  # partitioned, with the metadata columns
    for name in ("silver.whole", "silver.streamed", "bronze.events"):
        seen = 0
        for uri in DeltaTable(lh.table(name).location).file_uris():
            for column in ("flag", "supplier"):
                groups = data_page_rows(uri.removeprefix("file://"), column)
                off = [rows for pages in groups for rows in pages[:-1] if rows % vector]
                assert len(off) <= 1, (name, column, groups)
                seen += sum(map(sum, groups))
        assert seen == 2 * n, name
