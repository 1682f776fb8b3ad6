"""Delta tables other engines write read as delta-rs reads them, at every version: deletion
vectors (inline, relative and absolute), column mapping (name and id modes, reader versions 2
and 3, nested fields), classic and v2 checkpoints, change data files, timestamps without
time zone, generated and identity columns. The tables are built by
``tests/helpers/delta_fixtures.py``, which also gives the rows each version must read as."""

from __future__ import annotations

import os
import shutil
import struct

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError, VersionNotFoundError
from lakehouse.tables.deletion_vectors import (
    DeletionVectorError,
    Descriptor,
    decode_bitmap,
    positions,
)
from lakehouse.tables.snapshot import UnsupportedFeatureError
from tests.helpers import delta_fixtures as F
from tests.test_conformance import canonical


def rows_of(table: pa.Table) -> list[tuple]:
    return canonical(table)


def expected_rows(rows: list[dict], like: pa.Table) -> list[tuple]:
    """The builder's rows as a table with ``like``'s schema, canonical."""
    return canonical(pa.Table.from_pylist(rows, schema=like.schema))


def delta_rs(path: str, version: int) -> pa.Table:
    """delta-rs's own reading of a version: its DataFusion scan, which applies deletion
    vectors and column mapping (``to_pyarrow_table`` refuses those reader features)."""
    qb = QueryBuilder().register("t", DeltaTable(path, version=version))
    return pa.table(qb.execute("SELECT * FROM t").read_all())


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """One warehouse with every kind of table, built once for the module."""
    root = tmp_path_factory.mktemp("delta-read") / "warehouse"
    bronze = root / "bronze"
    bronze.mkdir(parents=True)
    expected = {
        "dv": F.deletion_vector_table(str(bronze / "dv")),
        "cm_name_r2": F.column_mapping_table(str(bronze / "cm_name_r2"), "name", 2),
        "cm_id_r2": F.column_mapping_table(str(bronze / "cm_id_r2"), "id", 2),
        "cm_name_r3": F.column_mapping_table(str(bronze / "cm_name_r3"), "name", 3),
        "cm_id_r3": F.column_mapping_table(str(bronze / "cm_id_r3"), "id", 3),
        "id_only": F.id_only_table(str(bronze / "id_only")),
        "identity": F.identity_table(str(bronze / "identity")),
        "v2_checkpoint": F.v2_checkpoint_table(str(bronze / "v2_checkpoint")),
    }
    written = F.deltalake_tables(str(bronze))
    return Lakehouse(root), expected, written


def read_ours(lh: Lakehouse, name: str, version: int) -> pa.Table:
    ours = lh.sql(f"SELECT * FROM {name} VERSION AS OF {version}").to_arrow()
    assert rows_of(lh.table(name).to_arrow(version=version)) == rows_of(ours)
    return ours


def test_deletion_vectors_every_version(warehouse):
    lh, expected, _ = warehouse
    name, path = "bronze.dv", os.path.join(lh.root, "bronze", "dv")
    for version, rows in expected["dv"].items():
        ours = read_ours(lh, name, version)
        theirs = delta_rs(path, version)
        assert ours.column_names == theirs.column_names == ["id", "name", "part"]
        assert rows_of(ours) == rows_of(theirs), f"version {version} differs from delta-rs"
        polars = pl.read_delta(path, version=version).to_arrow()
        assert rows_of(polars) == rows_of(theirs), f"version {version}: Polars and delta-rs"
        assert rows_of(ours) == expected_rows(rows, ours), f"version {version}"
        count = lh.sql(f"SELECT count(*) AS n FROM {name} VERSION AS OF {version}").to_dicts()
        assert count == [{"n": len(rows)}]
    latest = max(expected["dv"])
    assert rows_of(lh.sql(f"SELECT * FROM {name}").to_arrow()) == rows_of(delta_rs(path, latest))
    assert lh.table(name).count() == len(expected["dv"][latest])
    assert lh.catalog.get(name).row_count == len(expected["dv"][latest])
    # Filters and aggregates over the positions a vector keeps.
    got = lh.sql(f"SELECT min(id), max(id) FROM {name} WHERE part = 'a'").rows()
    assert got == [(1, 8)]


def test_deletion_vectors_from_a_checkpoint(warehouse, tmp_path):
    """The vectors of files last added before a checkpoint are read from it (classic
    checkpoint written by delta-rs, the commits before it cleaned up)."""
    lh, expected, _ = warehouse
    copy = tmp_path / "w" / "bronze" / "dv"
    shutil.copytree(os.path.join(lh.root, "bronze", "dv"), copy)
    DeltaTable(str(copy)).create_checkpoint()
    latest = max(expected["dv"])
    for version in range(latest + 1):
        os.remove(copy / "_delta_log" / f"{version:020d}.json")
    other = Lakehouse(tmp_path / "w")
    ours = other.sql("SELECT * FROM bronze.dv").to_arrow()
    assert rows_of(ours) == rows_of(delta_rs(str(copy), latest))
    assert rows_of(ours) == expected_rows(expected["dv"][latest], ours)


def test_api_path_reads_deletion_vectors_and_mapping(warehouse):
    """The server's locked-down engine reads the same rows."""
    lh, expected, _ = warehouse
    server = Lakehouse(lh.root)
    server.engine.lock_down()
    got = server.engine.safe_query("SELECT count(*) AS n FROM bronze.dv").table.to_pylist()
    assert got == [{"n": len(expected["dv"][max(expected["dv"])])}]
    got = server.engine.safe_query(
        'SELECT count("full name") AS n FROM bronze.cm_id_r3 WHERE score IS NOT NULL'
    ).table.to_pylist()
    assert got == [
        {
            "n": sum(
                1
                for r in expected["cm_id_r3"][3]
                if r["score"] is not None and r["full name"] is not None
            )
        }
    ]


@pytest.mark.parametrize("name", ["cm_name_r2", "cm_id_r2", "cm_name_r3", "cm_id_r3"])
def test_column_mapping_every_version(warehouse, name):
    lh, expected, _ = warehouse
    path = os.path.join(lh.root, "bronze", name)
    for version, rows in expected[name].items():
        ours = read_ours(lh, f"bronze.{name}", version)
        theirs = delta_rs(path, version)
        assert ours.column_names == theirs.column_names == list(rows[0])
        assert rows_of(ours) == rows_of(theirs), f"version {version} differs from delta-rs"
        assert rows_of(ours) == expected_rows(rows, ours), f"version {version}"
        # No column silently all NULL: every logical column has values.
        for column in ours.column_names:
            assert ours.column(column).null_count < ours.num_rows, (version, column)
    # Nested fields are reached by their logical names.
    got = lh.sql(
        f"SELECT \"full name\", info.city, tags[1].d, props['k'].v FROM bronze.{name} "
        "VERSION AS OF 1 WHERE id = 1"
    ).rows()
    assert got == [(None if 1 % 4 == 0 else "n1", "c1", 1, 10)]


def test_column_mapping_by_id_ignores_names(warehouse):
    """In id mode a file's columns are found by field id, whatever they are named.
    delta-rs is not compared here: its scan finds them by physical name, so this file,
    whose column names match no physical name, reads as NULLs there."""
    lh, expected, _ = warehouse
    for version, rows in expected["id_only"].items():
        ours = read_ours(lh, "bronze.id_only", version)
        assert rows_of(ours) == expected_rows(rows, ours)


def test_column_mapping_in_changes_view(warehouse):
    """Pipelines read the rows a mapped table gained with the same column resolution."""
    lh, expected, _ = warehouse
    view = lh.engine.changes_view("bronze.cm_name_r2", 0, 2)
    got = lh.engine.cursor().sql(f"SELECT * FROM {view}").to_arrow_table()
    added = [r for r in expected["cm_name_r2"][2] if r["id"] >= 20]
    assert rows_of(got) == expected_rows(added, got)


def test_identity_columns(warehouse):
    lh, expected, _ = warehouse
    path = os.path.join(lh.root, "bronze", "identity")
    for version, rows in expected["identity"].items():
        ours = read_ours(lh, "bronze.identity", version)
        assert rows_of(ours) == rows_of(DeltaTable(path, version=version).to_pyarrow_table())
        assert rows_of(ours) == rows_of(pl.read_delta(path, version=version).to_arrow())
        assert rows_of(ours) == expected_rows(rows, ours)


def test_v2_checkpoint_with_sidecars(warehouse):
    lh, expected, _ = warehouse
    name, path = "bronze.v2_checkpoint", os.path.join(lh.root, "bronze", "v2_checkpoint")
    for version, rows in expected["v2_checkpoint"].items():
        ours = read_ours(lh, name, version)
        assert rows_of(ours) == rows_of(delta_rs(path, version))
        assert rows_of(ours) == expected_rows(rows, ours)
    with pytest.raises(VersionNotFoundError, match="version 0"):
        lh.sql(f"SELECT * FROM {name} VERSION AS OF 0")  # its commit was cleaned up


@pytest.mark.parametrize("name", ["cdf", "ntz", "generated", "checkpoint"])
def test_tables_delta_rs_wrote(warehouse, name):
    lh, _, written = warehouse
    path = written[name]
    latest = DeltaTable(path).version()
    for version in range(latest + 1):
        if not os.path.exists(os.path.join(path, "_delta_log", f"{version:020d}.json")):
            continue  # cleaned up behind a checkpoint
        ours = read_ours(lh, f"bronze.{name}", version)
        theirs = DeltaTable(path, version=version).to_pyarrow_table()
        assert sorted(ours.column_names) == sorted(theirs.column_names), version
        assert rows_of(ours) == rows_of(theirs), f"{name} version {version}"
        polars = pl.read_delta(path, version=version).to_arrow()
        assert rows_of(ours) == rows_of(polars), f"{name} version {version} (Polars)"
    if name == "cdf":
        assert os.listdir(os.path.join(path, "_change_data"))  # present, and not read
    if name == "ntz":
        kind = lh.sql("SELECT t FROM bronze.ntz").to_arrow().schema.field("t").type
        assert kind == pa.timestamp("us")  # no time zone added
    if name == "checkpoint":
        assert any(n.endswith(".checkpoint.parquet") for n in os.listdir(f"{path}/_delta_log"))


def test_unreadable_latest_keeps_old_versions(tmp_path):
    """A commit needing a reader feature no reader knows: the latest version is refused by
    name, the versions before it still read."""
    lh = Lakehouse(tmp_path / "w")
    path = tmp_path / "w" / "bronze" / "future"
    path.parent.mkdir(parents=True)
    expected = F.identity_table(str(path))
    F.unknown_feature_commit(str(path), 2, "futureFeature")
    for version in (0, 1):
        ours = read_ours(lh, "bronze.future", version)
        assert rows_of(ours) == expected_rows(expected[version], ours)
    with pytest.raises(UnsupportedFeatureError, match="futureFeature"):
        lh.sql("SELECT * FROM bronze.future")
    with pytest.raises(UnsupportedFeatureError, match="futureFeature"):
        lh.sql("SELECT * FROM bronze.future VERSION AS OF 2")
    # By time: the commit times come from the log (identity_table: 1 s apart from 1.7e12 ms).
    at = "2023-11-14 22:13:22"  # version 1's commit time, UTC
    ours = lh.sql(f"SELECT * FROM bronze.future TIMESTAMP AS OF '{at}'").to_arrow()
    assert rows_of(ours) == expected_rows(expected[1], ours)
    with pytest.raises(VersionNotFoundError, match="no version 3"):
        lh.sql("SELECT * FROM bronze.future VERSION AS OF 3")


def test_reader_feature_not_implemented_is_refused(tmp_path):
    """A reader feature delta-rs loads but this reader does not implement: a clear error
    naming it, never rows read without it."""
    lh = Lakehouse(tmp_path / "w")
    root = str(tmp_path / "w" / "bronze" / "widened")
    t = F.HandTable(root)
    schema = F.struct_type(F.field_json("n", "long"))
    feats = ["typeWidening"]
    t.commit(
        t.protocol(3, 7, feats, feats),
        t.metadata(schema),
        t.parquet(pa.table({"n": pa.array([1], pa.int32())})),
    )
    with pytest.raises(UnsupportedFeatureError, match="typeWidening"):
        lh.sql("SELECT * FROM bronze.widened")


# -- the deletion vector format --------------------------------------------------------------
def test_protocol_inline_example_decodes():
    """The inline vector of the Delta protocol's example 3 (Delta's native framing)."""
    d = Descriptor("i", "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", None, 40, 6)
    assert positions(d, "/unused").tolist() == [3, 4, 7, 11, 18, 29]
    relative = Descriptor("u", "ab^-aqEH.-t@S}K{vb[*k^", 4, 40, 6)
    assert relative.file_path("/t") == (
        "/t/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"
    )


def test_bitmap_round_trip_all_containers_and_buckets():
    rows = (
        [0, 5, 65_535]  # array container
        + list(range(70_000, 75_000))  # run container
        + list(range(140_000, 200_000, 7))  # bitset container (more than 4096)
        + [2**32 + 1, 2**32 + 9, 3 * 2**32]  # buckets past the first 32 bits
    )
    assert decode_bitmap(F.roaring_array(rows)).tolist() == sorted(rows)
    assert decode_bitmap(F.roaring_array([])).tolist() == []


def test_damaged_vectors_are_refused(tmp_path):
    path = str(tmp_path / "dv.bin")
    (descriptor,) = F.absolute_dv(path, [[1, 2, 3]])
    good = Descriptor.of(descriptor)
    assert positions(good, str(tmp_path)).tolist() == [1, 2, 3]
    data = bytearray(open(path, "rb").read())
    data[-5] ^= 0xFF  # one byte of the bitmap
    open(path, "wb").write(bytes(data))
    with pytest.raises(DeletionVectorError, match="checksum"):
        positions(good, str(tmp_path))
    wrong_count = Descriptor.of({**F.inline_dv([1, 2]), "cardinality": 3})
    with pytest.raises(DeletionVectorError, match="holds 2 row positions"):
        positions(wrong_count, str(tmp_path))
    with pytest.raises(DeletionVectorError, match="magic"):
        decode_bitmap(struct.pack("<iq", 12345, 0))
    with pytest.raises(LakehouseError, match="missing"):
        positions(
            Descriptor.of(F.absolute_dv(path, [[1]])[0] | {"pathOrInlineDv": path + "x"}),
            str(tmp_path),
        )


def test_table_operations_and_writes_refuse_an_unknown_feature_by_name(tmp_path):
    """The table's figures, history and writes say which feature they cannot handle,
    never delta-rs's raw error, and leave the table as it is."""
    lh = Lakehouse(tmp_path / "w")
    path = tmp_path / "w" / "bronze" / "future"
    path.parent.mkdir(parents=True)
    F.identity_table(str(path))
    F.unknown_feature_commit(str(path), 2, "futureFeature")
    calls = {
        "version": lambda: lh.table("bronze.future").version,
        "history": lambda: lh.table("bronze.future").history(),
        "write": lambda: lh.write("bronze.future", [{"id": 9}]),
    }
    for what, call in calls.items():
        with pytest.raises(UnsupportedFeatureError, match="futureFeature"):
            call()
        newest = max(p.name for p in (path / "_delta_log").glob("*.json"))
        assert newest == f"{2:020d}.json", what
