"""The result cache of ``SQLEngine.safe_query``: served until a table it read moves."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import QueryRefusedError, SQLError, TableNotFoundError
from lakehouse.sql.cache import Reads, ResultCache
from lakehouse.sql.masking import pseudonym, warehouse_key

QUERY = "SELECT user_id, email FROM silver.users ORDER BY user_id"


def mask_email(name: str) -> list[str]:
    return ["email"] if name == "silver.users" else []


@pytest.fixture
def lh(tmp_path) -> Lakehouse:
    lh = Lakehouse(tmp_path / "warehouse")
    lh.write("silver.users", [{"user_id": 1, "email": "a@x"}, {"user_id": 2, "email": "b@x"}])
    lh.write("gold.orders", [{"order_id": 1, "user_id": 1}])
    lh.write("gold.other", [{"x": 1}])
    lh.engine.lock_down()
    return lh


def test_a_repeat_is_served_from_the_cache(lh):
    # How fast (bench/api.py measures it): a repeat runs no statement at all.
    engine = lh.engine
    first = engine.safe_query(QUERY)
    assert not first.cached
    repeats = [engine.safe_query(QUERY) for _ in range(50)]
    assert all(r.cached for r in repeats)
    assert all(r.table is repeats[0].table for r in repeats)
    assert repeats[0].table.equals(first.table) and repeats[0].tables == ["silver.users"]
    hit = engine.cached_query(QUERY)
    assert hit is not None and hit.cached and hit.table is repeats[0].table
    assert engine.cached_query("SELECT 1 AS never_run") is None


def test_a_statement_over_several_tables_and_versions_is_cached(lh):
    engine = lh.engine
    sql = (
        "SELECT count(*) FROM silver.users u JOIN gold.orders o USING (user_id), gold.other, "
        "silver.users VERSION AS OF 1"
    )
    engine.safe_query(sql)
    stamps = [engine.safe_query(sql) for _ in range(50)]
    assert all(r.cached for r in stamps)
    entry = next(iter(engine.result_cache._entries.values()))
    assert {name for name, _ in entry.stamps} >= {"silver.users", "gold.orders", "gold.other"}
    assert all(engine._fresh(name, stamp) for name, stamp in entry.stamps)


def test_a_new_version_of_a_table_read_retires_the_result(lh):
    engine = lh.engine
    engine.safe_query(QUERY)
    assert engine.safe_query(QUERY).cached
    lh.write("silver.users", [{"user_id": 3, "email": "c@x"}])
    after = engine.safe_query(QUERY)
    assert not after.cached
    assert after.table.column("user_id").to_pylist() == [1, 2, 3]
    assert engine.safe_query(QUERY).cached
    lh.table("silver.users").delete("user_id = 1")
    assert engine.safe_query(QUERY).table.column("user_id").to_pylist() == [2, 3]


def test_a_write_elsewhere_keeps_the_result(lh):
    engine = lh.engine
    engine.safe_query(QUERY)
    lh.write("gold.other", [{"x": 2}])
    lh.write("gold.new_table", [{"x": 2}])
    assert engine.safe_query(QUERY).cached


def test_a_write_from_another_process_retires_the_result(lh, tmp_path):
    engine = lh.engine
    engine.safe_query(QUERY)
    other = Lakehouse(lh.root)  # another writer, unknown to this engine
    other.write("silver.users", [{"user_id": 9, "email": "z@x"}])
    result = engine.safe_query(QUERY)
    assert not result.cached and result.table.num_rows == 3


def test_masks_and_limits_are_separate_entries(lh):
    engine = lh.engine
    plain = engine.safe_query(QUERY)
    masked = engine.safe_query(QUERY, masked=mask_email)
    assert not masked.cached
    key = warehouse_key(lh.catalog)
    expected = [pseudonym("a@x", key), pseudonym("b@x", key)]
    assert masked.table.column("email").to_pylist() == expected
    assert plain.table.column("email").to_pylist() == ["a@x", "b@x"]
    again = engine.safe_query(QUERY, masked=mask_email)
    assert again.cached and again.table.equals(masked.table)
    assert engine.safe_query(QUERY).table.column("email").to_pylist() == ["a@x", "b@x"]
    assert engine.safe_query(QUERY, masked=lambda name: []).cached  # no mask = unmasked entry
    one = engine.safe_query(QUERY, limit=1)
    assert not one.cached and one.truncated and one.table.num_rows == 1
    assert engine.safe_query(QUERY, limit=1).cached
    assert len(engine.result_cache) == 3


def test_grants_are_checked_on_cached_results(lh):
    engine = lh.engine
    engine.safe_query(QUERY)
    with pytest.raises(TableNotFoundError):  # as if it did not exist
        engine.safe_query(QUERY, can_read=lambda name: name != "silver.users")
    assert engine.safe_query(QUERY, can_read=lambda name: True).cached


def test_the_byte_bound_evicts_the_least_recently_used(lh):
    engine = lh.engine
    size = engine.safe_query("SELECT * FROM range(1000)").table.get_total_buffer_size()
    engine.cache_clear()
    engine.result_cache.max_bytes = int(size * 2.5) + 1000
    for n in (1000, 1001, 1002):  # each result about `size` bytes: room for two
        engine.safe_query(f"SELECT * FROM range({n})")
    assert len(engine.result_cache) == 2
    assert engine.result_cache.bytes <= engine.result_cache.max_bytes
    assert not engine.safe_query("SELECT * FROM range(1000)").cached  # evicted first
    assert engine.safe_query("SELECT * FROM range(1002)").cached
    big = "SELECT * FROM range(100000)"  # larger than the whole cache
    assert engine.safe_query(big, limit=200_000).table.num_rows == 100_000
    assert not engine.safe_query(big, limit=200_000).cached


def test_errors_and_changing_results_are_not_cached(lh):
    engine = lh.engine
    for _ in range(2):
        with pytest.raises(SQLError):
            engine.safe_query("SELECT no_such_column FROM silver.users")
        with pytest.raises(QueryRefusedError):
            engine.safe_query("SELECT * FROM read_csv('/etc/passwd')")
    assert len(engine.result_cache) == 0
    for sql in ("SELECT random() AS r", "SELECT now() AS t", "SELECT current_date AS d"):
        engine.safe_query(sql)
        assert not engine.safe_query(sql).cached


def test_cache_clear_and_view_redefinition(lh):
    engine = lh.engine
    lh.create_view("gold.ids", "SELECT user_id FROM silver.users")
    assert engine.safe_query("SELECT * FROM gold.ids ORDER BY 1").table.num_rows == 2
    assert engine.safe_query("SELECT * FROM gold.ids ORDER BY 1").cached
    lh.create_view("gold.ids", "SELECT user_id FROM silver.users WHERE user_id > 1")
    redefined = engine.safe_query("SELECT * FROM gold.ids ORDER BY 1")
    assert not redefined.cached and redefined.table.num_rows == 1
    lh.write("silver.users", [{"user_id": 5, "email": "e@x"}])  # a table the view reads
    assert engine.safe_query("SELECT * FROM gold.ids ORDER BY 1").table.num_rows == 2
    engine.safe_query(QUERY)
    engine.cache_clear()
    assert len(engine.result_cache) == 0 and engine.result_cache.bytes == 0
    assert not engine.safe_query(QUERY).cached


def test_many_threads_reading_while_a_table_moves(lh):
    engine = lh.engine
    errors: list[BaseException] = []
    seen: dict[int, list[int]] = {i: [] for i in range(4)}
    done = threading.Event()

    def reader(n: int) -> None:
        try:
            while not done.is_set():
                result = engine.safe_query(
                    "SELECT count(*) AS n FROM silver.users", masked=mask_email
                )
                seen[n].append(result.table.column("n")[0].as_py())
                engine.safe_query(f"SELECT {n} AS x, email FROM silver.users", masked=mask_email)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for i in range(5):
        lh.write("silver.users", [{"user_id": 100 + i, "email": f"{i}@x"}])
        time.sleep(0.05)
    time.sleep(0.1)
    done.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for counts in seen.values():  # no thread sees an older version after a newer one
        assert counts and counts == sorted(counts)
    final = engine.safe_query("SELECT count(*) AS n FROM silver.users", masked=mask_email)
    assert final.table.column("n")[0].as_py() == 7


def test_the_cache_on_its_own():
    cache = ResultCache(max_bytes=10_000)
    table = pa.table({"x": list(range(100))})
    reads = Reads(("silver.a",), ("silver.a",))
    key = ("SELECT 1", 10, (), ())
    assert cache.put(key, reads, table, False, (("silver.a", 1),))
    assert cache.reads("SELECT 1") == reads
    assert cache.get(key, lambda name, stamp: stamp == 1) is not None
    assert cache.get(key, lambda name, stamp: False) is None  # stale: dropped
    assert len(cache) == 0 and cache.bytes == 0 and cache.reads("SELECT 1") is None
