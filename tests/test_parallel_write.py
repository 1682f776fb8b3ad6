"""Large writes of unpartitioned local tables go through several parquet files written at
once; their log entries must carry the statistics delta-rs itself would record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from lakehouse.tables import parallel
from lakehouse.tables.encoding import ROW_GROUP_ROWS, writer_properties
from lakehouse.tables.parallel import MIN_ROWS


def big_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(3)
    start = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
    ts = start + np.sort(rng.integers(0, 86_400 * 10**6, rows))
    amount = rng.random(rows)
    amount[::7] = np.nan
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "at": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "local": pa.array(ts, pa.timestamp("us")),
            "day": pa.array(ts, pa.timestamp("us")).cast(pa.date32()),
            "kind": pa.array(rng.choice(["a", "b", "c"], rows)),
            "amount": pa.array(amount, mask=np.arange(rows) % 11 == 0),
            "flag": pa.array(np.arange(rows) % 2 == 0),
            "price": pa.array(np.arange(rows) % 100_000)
            .cast(pa.decimal128(21, 2))
            .cast(pa.decimal128(15, 2)),
        }
    )


def physical_types(uris: list[str]) -> set[tuple[str, str]]:
    out = set()
    for uri in uris:
        schema = pq.ParquetFile(uri.removeprefix("file://")).metadata.schema
        out |= {(schema.column(i).path, schema.column(i).physical_type) for i in range(len(schema))}
    return out


def log_stats(path: Path) -> list[dict]:
    out = []
    for log in sorted((path / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            add = json.loads(line).get("add")
            if add and add.get("stats"):
                out.append(json.loads(add["stats"]))
    return out


def combined(stats: list[dict]) -> dict:
    out: dict = {"numRecords": sum(s["numRecords"] for s in stats)}
    for key, fold in (("minValues", min), ("maxValues", max), ("nullCount", sum)):
        columns = set().union(*(s[key] for s in stats))
        out[key] = {c: fold(s[key][c] for s in stats if c in s[key]) for c in columns}
    return out


def test_large_write_is_one_file_until_the_target_size(lh):
    """DuckDB plans a one-file table with its statistics: a write under the target file
    size is one file, its row groups sized for a parallel scan."""
    table = big_table(MIN_ROWS * 2 + 123)
    assert table.nbytes < parallel.TARGET_FILE_BYTES
    lh.write("silver.big", table)
    files = DeltaTable(lh.table("silver.big").location).file_uris()
    assert len(files) == 1
    meta = pq.ParquetFile(files[0].removeprefix("file://")).metadata
    assert meta.num_rows == table.num_rows
    assert meta.num_row_groups == -(-table.num_rows // ROW_GROUP_ROWS)
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    dictionary = {n: meta.row_group(0).column(i).has_dictionary_page for i, n in enumerate(names)}
    assert not dictionary["id"] and dictionary["kind"]  # distinct values go plain


def test_parallel_write_records_delta_rs_statistics(lh, tmp_path, monkeypatch):
    table = big_table(MIN_ROWS * 2 + 123)
    # Data over the target file size is written as one file per core, at once.
    monkeypatch.setattr(parallel, "TARGET_FILE_BYTES", table.nbytes // 2)
    result = lh.write("silver.big", table)
    location = Path(lh.table("silver.big").location)
    assert result.version == 1
    files = DeltaTable(str(location)).file_uris()
    assert len(files) >= 2, "a table this large is written as several files"
    write_deltalake(str(tmp_path / "reference"), table, writer_properties=writer_properties())
    # Encoded as delta-rs encodes: the same physical types (decimals as integers), row
    # groups of at most ROW_GROUP_ROWS rows for parallel scans.
    reference = DeltaTable(str(tmp_path / "reference")).file_uris()
    assert physical_types(files) == physical_types(reference)
    for uri in files:
        meta = pq.ParquetFile(uri.removeprefix("file://")).metadata
        groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(groups) <= ROW_GROUP_ROWS and len(groups) > 1, groups
    ours = combined(log_stats(location))
    theirs = combined(log_stats(tmp_path / "reference"))
    assert ours["numRecords"] == theirs["numRecords"] == table.num_rows
    assert ours["nullCount"] == theirs["nullCount"]
    for key in ("minValues", "maxValues"):
        for column in ("id", "day", "kind", "amount", "flag", "price"):
            assert ours[key][column] == theirs[key][column], (key, column)
    # Timestamps are recorded in milliseconds: the lower bound rounds down, the upper up.
    assert ours["minValues"]["at"] == theirs["minValues"]["at"]
    assert ours["maxValues"]["at"] >= theirs["maxValues"]["at"]
    assert ours["maxValues"]["local"] >= theirs["maxValues"]["local"]
    # Every reader sees the same rows, and delta-rs's file skipping stays right.
    assert lh.sql("SELECT count(*), sum(id) FROM silver.big").rows() == [
        (table.num_rows, table.num_rows * (table.num_rows - 1) // 2)
    ]
    assert DeltaTable(str(location)).to_pyarrow_table().num_rows == table.num_rows
    late = DeltaTable(str(location)).to_pyarrow_table(filters=[("id", ">=", MIN_ROWS * 2)])
    assert late.num_rows == 123
    cutoff = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    expected = int(
        np.sum(table.column("at").to_numpy() >= np.datetime64(cutoff.replace(tzinfo=None)))
    )
    got = DeltaTable(str(location)).to_pyarrow_table(filters=[("at", ">=", cutoff)])
    assert got.num_rows == expected


def test_parallel_overwrite_replaces_and_appends_add(lh):
    table = big_table(MIN_ROWS + 10)
    lh.write("silver.big", table)
    lh.write("silver.big", table.slice(0, MIN_ROWS + 5), mode="overwrite")
    assert lh.sql("SELECT count(*) FROM silver.big").scalar() == MIN_ROWS + 5
    result = lh.write("silver.big", table, txn=("loader", 5))
    assert result.version == 3
    assert lh.table("silver.big").transaction_version("loader") == 5
    assert lh.write("silver.big", table, txn=("loader", 5)).skipped
    assert lh.sql("SELECT count(*) FROM silver.big").scalar() == 2 * MIN_ROWS + 15
    assert lh.table("silver.big").info.row_count == 2 * MIN_ROWS + 15
    history = [h["operation"] for h in lh.table("silver.big").history()]
    assert len(history) == 4
