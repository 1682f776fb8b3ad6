"""What SQL returns for a table version equals what the table itself holds at that
version, read by its format's own reader (deltalake's and Polars' for Delta, pyiceberg's
for Iceberg), for partitioned, evolved, merged, deleted-from, optimized and restored
tables, in each table format."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse import Lakehouse
from lakehouse.settings.model import Settings
from lakehouse.tables.convert import normalize_schema
from tests.helpers.iceberg import iceberg_rows, iceberg_versions


def canonical(table: pa.Table) -> list[tuple]:
    table = table.cast(normalize_schema(table.schema))
    names = sorted(table.column_names)
    rows = [tuple(r[n] for n in names) for r in table.select(names).to_pylist()]
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def warehouse(path, table_format: str) -> Lakehouse:
    return Lakehouse(path, settings=Settings(format=table_format))


def assert_every_version_conforms(lh: Lakehouse, name: str) -> int:
    if lh.table(name).format.name == "iceberg":
        return _iceberg_conforms(lh, name)
    path = lh.table(name).location
    latest = DeltaTable(path).version()
    for version in range(latest + 1):
        ours = lh.sql(f"SELECT * FROM {name} VERSION AS OF {version}").to_arrow()
        theirs = DeltaTable(path, version=version).to_pyarrow_table()
        assert sorted(ours.column_names) == sorted(theirs.column_names), version
        assert canonical(ours) == canonical(theirs), f"version {version} differs"
        polars = pl.read_delta(path, version=version).to_arrow()
        assert canonical(ours) == canonical(polars), f"version {version} differs from Polars"
    current = lh.sql(f"SELECT * FROM {name}").to_arrow()
    assert canonical(current) == canonical(DeltaTable(path).to_pyarrow_table())
    return latest


def _iceberg_conforms(lh: Lakehouse, name: str) -> int:
    versions = iceberg_versions(lh, name)
    for version in versions:
        ours = lh.sql(f"SELECT * FROM {name} VERSION AS OF {version}").to_arrow()
        theirs = iceberg_rows(lh, name, version)
        assert sorted(ours.column_names) == sorted(theirs.column_names), version
        assert canonical(ours) == canonical(theirs), f"version {version} differs"
    current = lh.sql(f"SELECT * FROM {name}").to_arrow()
    assert canonical(current) == canonical(iceberg_rows(lh, name, None))
    return max(versions)


def batch(rng: random.Random, start: int, n: int, with_extra: bool = False) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        row = {
            "id": i,
            "p": rng.choice(["a", "b", "c d", "é/x", None]),
            "day": dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(5)),
            "v": rng.random() if rng.random() > 0.1 else None,
            "s": rng.choice(["x", "y", "z'q"]),
        }
        if with_extra:
            row["extra"] = rng.randrange(100)
        rows.append(row)
    return rows


def test_scripted_history_conforms(tmp_path, table_format):
    rng = random.Random(1)
    lh = warehouse(tmp_path / "w", table_format)
    name = "silver.events"
    lh.write(name, batch(rng, 0, 50), partition_by=["p", "day"])  # v0 create, v1 rows
    lh.write(name, batch(rng, 50, 30))  # v2 append
    lh.write(name, batch(rng, 80, 20, with_extra=True), evolve=True)  # v3 new column
    lh.write(
        name,
        [{**r, "p": "a"} for r in batch(rng, 100, 10)],
        mode="overwrite",
        predicate="p = 'a'",
    )  # v4 replace one partition
    upserts = batch(rng, 40, 30, with_extra=True)
    lh.write(name, upserts, mode="merge", keys=["id"])  # v5 merge: updates and inserts
    lh.table(name).delete("v < 0.3")  # v6 delete
    lh.table(name).optimize()  # v7
    lh.table(name).restore(3)  # v8
    lh.write(name, pa.table({"id": pa.array([999], pa.int64())}))  # v9 mostly nulls
    assert assert_every_version_conforms(lh, name) == 9


def test_widened_table_conforms(tmp_path, table_format):
    lh = warehouse(tmp_path / "w", table_format)
    lh.write(
        "gold.t", pa.table({"k": pa.array([1, 2], pa.int32()), "g": ["x", "y"]}), partition_by=["g"]
    )
    lh.write("gold.t", pa.table({"k": pa.array([2**35], pa.int64()), "g": ["x"]}), evolve=True)
    # Delta widens by rewriting the table (a version of its own); Iceberg in place.
    widening = 1 if table_format == "delta" else 0
    assert assert_every_version_conforms(lh, "gold.t") == 2 + widening


operation = st.sampled_from(["append", "overwrite_p", "merge", "delete", "evolve", "optimize"])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=6), seed=st.integers(0, 10_000))
def test_random_histories_conform(tmp_path_factory, table_format, ops, seed):
    rng = random.Random(seed)
    lh = warehouse(tmp_path_factory.mktemp("w"), table_format)
    name = "silver.random"
    next_id = 0
    lh.write(name, batch(rng, 0, 20), partition_by=["p"])
    next_id = 20
    evolved = False
    for op in ops:
        n = rng.randrange(1, 25)
        if op == "append":
            lh.write(name, batch(rng, next_id, n, evolved))
        elif op == "overwrite_p":
            part = rng.choice(["a", "b"])
            rows = [{**r, "p": part} for r in batch(rng, next_id, n, evolved)]
            lh.write(name, rows, mode="overwrite", predicate=f"p = '{part}'")
        elif op == "merge":
            lh.write(name, batch(rng, max(0, next_id - n), n, evolved), mode="merge", keys=["id"])
        elif op == "delete":
            lh.table(name).delete(f"id % {rng.randrange(2, 6)} = 0")
        elif op == "evolve":
            lh.write(name, batch(rng, next_id, n, True), evolve=True)
            evolved = True
        elif op == "optimize":
            lh.table(name).optimize()
        next_id += n
    assert_every_version_conforms(lh, name)
