"""The read-only SQL sandbox of the API (``SQLEngine.safe_query``, ``lock_down``) against a
real warehouse: escape attempts are refused and named, masking, grants, limits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import (
    QueryRefusedError,
    QueryTimeoutError,
    SQLError,
    TableNotFoundError,
)
from lakehouse.sql.masking import pseudonym, warehouse_key
from tests import test_object_store

PII = {"silver.users": ["email"]}
s3_endpoint = test_object_store.s3_endpoint  # the fixture: a moto server on loopback


def masked(name: str) -> list[str]:
    return PII.get(name, [])


def pii(lh: Lakehouse, value: object) -> str | None:
    """The pseudonym the warehouse gives ``value``, with its key."""
    return pseudonym(value, warehouse_key(lh.catalog))


@pytest.fixture
def shop(tmp_path) -> Lakehouse:
    lh = Lakehouse(tmp_path / "warehouse")
    lh.write(
        "silver.users",
        [
            {"user_id": 1, "email": "ada@example.com", "country": "fr"},
            {"user_id": 2, "email": None, "country": "uk"},
            {"user_id": 3, "email": "ada@example.com", "country": "fr"},
        ],
    )
    lh.write(
        "gold.orders",
        [
            {"order_id": 10, "user_id": 1, "amount": 5.0},
            {"order_id": 11, "user_id": 1, "amount": 7.0},
            {"order_id": 12, "user_id": 2, "amount": 1.0},
            {"order_id": 13, "user_id": 3, "amount": 4.0},
        ],
    )
    lh.write("bronze.secrets", [{"k": "root", "v": "hunter2"}])
    lh.engine.lock_down()
    return lh


def data_file(lh: Lakehouse, name: str) -> str:
    layer, table = name.split(".")
    return str(next((Path(lh.root) / layer / table).glob("*.parquet")))


PASSWD = "read_csv('/etc/passwd')"

# (statement, words the refusal must name)
ESCAPES = [
    ("COPY (SELECT * FROM silver.users) TO '/tmp/users.csv'", "COPY"),
    ("COPY gold.orders FROM '/etc/passwd'", "COPY"),
    ("ATTACH ':memory:' AS other", "ATTACH"),
    ("DETACH memory", "DETACH"),
    ("USE system", "USE"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("SET threads = 1", "SET"),
    ("RESET threads", "RESET"),
    ("SET VARIABLE secret = 1", "SET VARIABLE"),
    ("PRAGMA version", "PRAGMA"),
    ("CALL duckdb_settings()", "CALL"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("VACUUM", "VACUUM"),
    ("BEGIN TRANSACTION", "BEGIN"),
    ("PREPARE p AS SELECT 1", "PREPARE"),
    ("EXECUTE p", "EXECUTE"),
    ("CREATE TABLE t AS SELECT 1 AS x", "CREATE TABLE"),
    ("CREATE OR REPLACE VIEW v AS SELECT 1 AS x", "CREATE VIEW"),
    ("CREATE MACRO m(a) AS a", "CREATE MACRO"),
    ("CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE SECRET"),
    ("CREATE TEMP TABLE t (x INT)", "CREATE TABLE"),
    ("DROP VIEW silver.users", "DROP VIEW"),
    ("INSERT INTO gold.orders VALUES (1, 1, 1.0)", "INSERT"),
    ("UPDATE gold.orders SET amount = 0", "UPDATE"),
    ("DELETE FROM gold.orders", "DELETE"),
    ("ALTER TABLE gold.orders ADD COLUMN x INT", "ALTER TABLE"),
    ("EXPORT DATABASE '/tmp/everything'", "EXPORT DATABASE"),
    ("IMPORT DATABASE '/tmp/everything'", "IMPORT DATABASE"),
    ("PIVOT gold.orders ON user_id USING sum(amount)", "PIVOT"),
    ("SELECT 1; SELECT 2", "more than one statement"),
    ("SELECT * FROM gold.orders; -- done\n DROP VIEW silver.users", "more than one statement"),
    (f"SELECT * FROM {PASSWD}", "read_csv"),
    ("SELECT * FROM read_text('/etc/passwd')", "read_text"),
    ("SELECT * FROM read_blob('/etc/passwd')", "read_blob"),
    ("SELECT * FROM read_json_auto('/etc/passwd')", "read_json_auto"),
    ("FROM '/etc/passwd'", "/etc/passwd"),
    ("SELECT * FROM 'http://127.0.0.1:1/x.csv'", "http://127.0.0.1:1/x.csv"),
    ("SELECT * FROM 'users.parquet'", "users.parquet"),
    ("SELECT * FROM glob('*')", "glob"),
    ("SELECT * FROM query('SELECT 1')", "query"),
    ("SELECT * FROM query_table('silver.users')", "query_table"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
    ("SELECT * FROM duckdb_views()", "duckdb_views"),
    ("FROM duckdb_settings", "duckdb_settings"),
    ("SELECT * FROM system.main.duckdb_settings()", "duckdb_settings"),
    ("SELECT current_setting('allowed_directories')", "current_setting"),
    ("SELECT system.main.current_setting('allowed_directories')", "current_setting"),
    ("SELECT getvariable('secret')", "getvariable"),
    ("SELECT getenv('HOME')", "getenv"),
    ("SELECT current_query()", "current_query"),
    ("SELECT pg_get_viewdef(1)", "pg_get_viewdef"),
    ("SELECT pg_sleep(100)", "pg_sleep"),
    ("SELECT * FROM json_execute_serialized_sql('{}')", "json_execute_serialized_sql"),
    ("SELECT * FROM information_schema.tables", "information_schema.tables"),
    ("SELECT * FROM pg_catalog.pg_tables", "pg_catalog.pg_tables"),
    ("SELECT * FROM sqlite_master", "sqlite_master"),
    ("SELECT * FROM memory.main.duckdb_settings", "memory.main.duckdb_settings"),
    ("SELECT * FROM temp.main.anything", "temp.main.anything"),
    ("SHOW TABLES", "SHOW"),
    ("SHOW ALL TABLES", "SHOW"),
    ("SELECT * FROM secrets", "secrets"),
    # hidden inside a CTE, a subquery, a join, a set operation, a lateral, an EXPLAIN
    ("WITH s AS (SELECT * FROM duckdb_settings()) SELECT * FROM s", "duckdb_settings"),
    ("WITH a AS (SELECT 1), b AS (SELECT * FROM a, glob('*')) SELECT * FROM b", "glob"),
    (
        "WITH duckdb_settings AS (SELECT * FROM duckdb_settings) SELECT * FROM duckdb_settings",
        "duckdb_settings",
    ),
    (f"SELECT * FROM gold.orders WHERE user_id IN (SELECT 1 FROM {PASSWD})", "read_csv"),
    (f"SELECT (SELECT count(*) FROM {PASSWD}) AS n", "read_csv"),
    ("SELECT * FROM gold.orders o JOIN read_text('/etc/passwd') t ON true", "read_text"),
    ("SELECT 'a' AS v UNION ALL SELECT value FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT 1 EXCEPT SELECT 1 FROM information_schema.columns", "information_schema.columns"),
    (f"SELECT * FROM gold.orders o, LATERAL (SELECT * FROM {PASSWD}) x", "read_csv"),
    (f"EXPLAIN SELECT * FROM {PASSWD}", "read_csv"),
    (f"EXPLAIN ANALYZE SELECT * FROM {PASSWD}", "read_csv"),
    ("EXPLAIN COPY gold.orders TO '/tmp/x.csv'", "EXPLAIN COPY"),
    ("SELECT * FROM gold.orders WHERE current_setting('threads') IS NOT NULL", "current_setting"),
    ("SELECT list_transform([1], x -> getvariable('v')) AS l", "getvariable"),
    # quoted, upper-case and commented variants
    ("SELECT * FROM \"read_csv\"('/etc/passwd')", "read_csv"),
    ("SELECT * FROM READ_CSV('/etc/passwd')", "read_csv"),
    ("select * from Duckdb_Settings()", "duckdb_settings"),
    ('SELECT * FROM "information_schema"."tables"', "information_schema.tables"),
    ("/* report */ COPY -- the file\n (SELECT 1) TO '/tmp/x.csv'", "COPY"),
    ("  -- a comment\n  Attach ':memory:' AS x", "ATTACH"),
    ("SELECT /* x */ * FROM /* y */ read_text( '/etc/passwd' )", "read_text"),
]


@pytest.mark.parametrize(("sql", "named"), ESCAPES, ids=[s[:60] for s, _ in ESCAPES])
def test_escape_is_refused_and_named(shop, sql, named):
    with pytest.raises(QueryRefusedError) as refused:
        shop.engine.safe_query(sql, masked=masked)
    assert named.lower() in refused.value.message.lower(), refused.value.message
    assert refused.value.hint


def test_enough_distinct_escapes():
    assert len({sql for sql, _ in ESCAPES}) >= 35


def test_reading_a_warehouse_data_file_directly_is_refused(shop):
    """read_parquet of the table's own file would skip masking and grants."""
    path = data_file(shop, "silver.users")
    for sql in (
        f"SELECT email FROM read_parquet('{path}')",
        f"SELECT email FROM '{path}'",
        f"SELECT * FROM parquet_metadata('{path}')",
        f"SELECT * FROM silver.users u JOIN read_parquet('{path}') f USING (user_id)",
    ):
        with pytest.raises(QueryRefusedError) as refused:
            shop.engine.safe_query(sql, masked=masked)
        assert "parquet" in refused.value.message or path in refused.value.message


def test_the_unmasked_view_behind_a_masked_table_is_refused(shop):
    for sql in (
        "SELECT u.email FROM memory.silver.users u, silver.users",
        "SELECT email FROM memory.silver.users",
        'SELECT email FROM "silver"."users@v1"',
    ):
        with pytest.raises((QueryRefusedError, TableNotFoundError)) as refused:
            shop.engine.safe_query(sql, masked=masked)
        assert "silver." in refused.value.message or "silver" in str(refused.value)


def test_a_grant_is_needed_for_every_table_named(shop):
    def can_read(name: str) -> bool:
        return not name.startswith("bronze.")

    for sql in (
        "SELECT * FROM bronze.secrets",
        "SELECT o.* FROM gold.orders o JOIN bronze.secrets s ON true",
        "WITH s AS (SELECT * FROM bronze.secrets) SELECT * FROM s",
        "SELECT * FROM gold.orders WHERE EXISTS (SELECT 1 FROM bronze.secrets)",
        "SELECT * FROM bronze.secrets VERSION AS OF 1",
        "EXPLAIN SELECT * FROM bronze.secrets",
    ):
        # answered as a table that does not exist: the same error as for a missing one
        with pytest.raises(TableNotFoundError) as denied:
            shop.engine.safe_query(sql, can_read=can_read)
        assert denied.value.message == "table bronze.secrets does not exist"
        assert "bronze" not in str(denied.value.hint)
        with pytest.raises(TableNotFoundError) as missing:
            shop.engine.safe_query(sql.replace("bronze.secrets", "bronze.nothing"))
        assert type(missing.value) is type(denied.value)
    ok = shop.engine.safe_query("SELECT count(*) AS n FROM gold.orders", can_read=can_read)
    assert ok.table.to_pylist() == [{"n": 4}] and ok.tables == ["gold.orders"]


def test_did_you_mean_names_only_readable_tables(shop):
    def can_read(name: str) -> bool:
        return not name.startswith("bronze.")

    for sql in (
        "SELECT * FROM bronze.secret",
        "SELECT * FROM bronze.secret VERSION AS OF 1",
        "SELECT * FROM gold.orders o JOIN bronze.secret s ON true",
    ):
        with pytest.raises(TableNotFoundError) as hidden:
            shop.engine.safe_query(sql, can_read=can_read)
        assert "secrets" not in str(hidden.value), sql
        with pytest.raises(TableNotFoundError) as shown:  # whoever may read it is helped
            shop.engine.safe_query(sql)
        assert "bronze.secrets" in str(shown.value.hint), sql
    with pytest.raises(SQLError) as bare:
        shop.engine.safe_query("SELECT * FROM secrets", can_read=can_read)
    assert "bronze" not in str(bare.value)
    with pytest.raises(TableNotFoundError) as near:
        shop.engine.safe_query("SELECT * FROM gold.order", can_read=can_read)
    assert near.value.suggestions == ["gold.orders"]


def test_a_legitimate_analytical_query_runs(shop):
    time.sleep(0.02)
    between = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    shop.write("gold.orders", [{"order_id": 14, "user_id": 2, "amount": 9.0}])
    result = shop.engine.safe_query(
        f"""
        WITH totals AS (
            SELECT u.country, o.order_id, o.amount,
                   sum(o.amount) OVER (PARTITION BY u.country) AS country_total
            FROM gold.orders o JOIN silver.users u USING (user_id)
            QUALIFY row_number() OVER (PARTITION BY u.country ORDER BY o.amount DESC) = 1
        ),
        before AS (SELECT count(*) AS n FROM gold.orders TIMESTAMP AS OF '{between}'),
        first AS (SELECT count(*) AS n FROM gold.orders VERSION AS OF 1)
        SELECT t.country, t.order_id, t.country_total, b.n AS before, f.n AS first
        FROM totals t, before b, first f
        UNION ALL SELECT 'none', NULL, NULL, NULL, NULL
        ORDER BY 1
        """,
        masked=masked,
    )
    assert result.table.to_pylist() == [
        {"country": "fr", "order_id": 11, "country_total": 16.0, "before": 4, "first": 4},
        {"country": "none", "order_id": None, "country_total": None, "before": None, "first": None},
        {"country": "uk", "order_id": 14, "country_total": 10.0, "before": 4, "first": 4},
    ]
    assert sorted(result.tables) == ["gold.orders", "silver.users"]
    assert not result.truncated and not result.cached
    for sql in (
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT * FROM range(3) r, LATERAL (SELECT r.range * 2 AS twice) t",
        "SELECT unnest([1, 2, 3]) AS x INTERSECT SELECT * FROM generate_series(2, 5)",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
        "SELECT sum(i) FROM n",
        "DESCRIBE SELECT * FROM silver.users",
        'SELECT "silver"."users".country FROM silver.users WHERE users.user_id = 1',
    ):
        assert shop.engine.safe_query(sql, masked=masked).table.num_rows > 0, sql
    plan = shop.engine.safe_query("EXPLAIN SELECT * FROM gold.orders WHERE amount > 2")
    assert plan.table.column_names == ["explain_key", "explain_value"]


def test_masked_columns_are_stable_pseudonyms(shop):
    engine = shop.engine
    rows = engine.safe_query(
        "SELECT user_id, email, country FROM silver.users ORDER BY user_id", masked=masked
    ).table.to_pylist()
    ada = pii(shop, "ada@example.com")
    assert ada is not None and ada.startswith("pii:") and len(ada) == 16
    assert [r["email"] for r in rows] == [ada, None, ada]
    assert [r["country"] for r in rows] == ["fr", "uk", "fr"]  # other columns untouched

    star = engine.safe_query("SELECT * FROM silver.users ORDER BY user_id", masked=masked)
    assert star.table.column_names == ["user_id", "email", "country"]
    assert star.table.column("email").to_pylist() == [ada, None, ada]

    joined = engine.safe_query(
        "SELECT a.user_id AS a, b.user_id AS b FROM silver.users a "
        "JOIN silver.users b ON a.email = b.email AND a.user_id < b.user_id",
        masked=masked,
    )
    assert joined.table.to_pylist() == [{"a": 1, "b": 3}]
    grouped = engine.safe_query(
        "SELECT email, count(*) AS n, sum(o.amount) AS spent FROM silver.users u "
        "JOIN gold.orders o USING (user_id) GROUP BY email ORDER BY n DESC",
        masked=masked,
    )
    assert grouped.table.to_pylist() == [
        {"email": ada, "n": 3, "spent": 16.0},
        {"email": None, "n": 1, "spent": 1.0},
    ]
    travelled = engine.safe_query(
        "SELECT users.email FROM silver.users VERSION AS OF 1 WHERE user_id = 1", masked=masked
    )
    assert travelled.table.to_pylist() == [{"email": ada}]
    qualified = engine.safe_query(
        "SELECT users.email, silver.users.email AS again FROM silver.users WHERE user_id = 3",
        masked=masked,
    )
    assert qualified.table.to_pylist() == [{"email": ada, "again": ada}]
    no_value = engine.safe_query(
        "SELECT count(*) AS n FROM silver.users WHERE email LIKE '%example%'", masked=masked
    )
    assert no_value.table.to_pylist() == [{"n": 0}]
    # Without masks the same statements show the values.
    plain = engine.safe_query("SELECT email FROM silver.users WHERE user_id = 1")
    assert plain.table.to_pylist() == [{"email": "ada@example.com"}]


def test_masking_follows_new_versions_and_new_columns(shop):
    engine = shop.engine
    engine.safe_query("SELECT * FROM silver.users", masked=masked)
    shop.write(
        "silver.users",
        [{"user_id": 4, "email": "bo@example.com", "country": "de", "phone": "555"}],
        evolve=True,
    )
    both = {"silver.users": ["email", "phone"]}
    rows = engine.safe_query(
        "SELECT * FROM silver.users WHERE user_id = 4", masked=lambda t: both.get(t, [])
    ).table.to_pylist()
    assert rows == [
        {
            "user_id": 4,
            "email": pii(shop, "bo@example.com"),
            "country": "de",
            "phone": pii(shop, "555"),
        }
    ]
    old = engine.safe_query(
        "SELECT * FROM silver.users VERSION AS OF 1 ORDER BY user_id",
        masked=lambda t: both.get(t, []),  # phone is not in version 1: masked where present
    )
    assert old.table.column_names == ["user_id", "email", "country"]
    assert old.table.column("email").to_pylist()[0] == pii(shop, "ada@example.com")


def test_tables_read_through_a_view_are_masked(shop):
    shop.create_view(
        "gold.customer_spend",
        "SELECT u.user_id, u.email, sum(o.amount) AS spent FROM silver.users u "
        "JOIN gold.orders o USING (user_id) GROUP BY ALL",
    )
    result = shop.engine.safe_query(
        "SELECT * FROM gold.customer_spend ORDER BY user_id",
        masked=masked,
        can_read=lambda name: name.startswith("gold."),  # the view is what the caller names
    )
    assert result.table.column("email").to_pylist() == [
        pii(shop, "ada@example.com"),
        None,
        pii(shop, "ada@example.com"),
    ]
    assert result.tables == ["gold.customer_spend"]
    assert shop.sql("SELECT email FROM gold.customer_spend WHERE user_id = 1").scalar() == (
        "ada@example.com"
    )  # the notebook path is unchanged


def test_row_limit_truncates_and_says_so(shop):
    engine = shop.engine
    result = engine.safe_query("SELECT * FROM range(100000) ORDER BY 1", limit=10)
    assert result.table.num_rows == 10 and result.truncated
    assert result.table.column(0).to_pylist() == list(range(10))
    exact = engine.safe_query("SELECT * FROM gold.orders", limit=4)
    assert exact.table.num_rows == 4 and not exact.truncated
    none = engine.safe_query("SELECT * FROM gold.orders", limit=0)
    assert none.table.num_rows == 0 and none.truncated
    assert none.table.column_names == ["order_id", "user_id", "amount"]
    # A huge result is not materialised: the first rows come back at once.
    started = time.perf_counter()
    big = engine.safe_query("SELECT a.range AS x FROM range(1000000000) a", limit=5, timeout=20)
    assert big.truncated and big.table.num_rows == 5
    assert time.perf_counter() - started < 5


def test_a_long_statement_stops_at_its_time_limit(shop):
    engine = shop.engine
    started = time.perf_counter()
    with pytest.raises(QueryTimeoutError) as stopped:
        engine.safe_query("SELECT count(*) FROM range(1000000) a, range(1000000) b", timeout=0.3)
    assert time.perf_counter() - started < 10
    assert "0.3 s" in stopped.value.message and "LIMIT" in stopped.value.hint
    assert isinstance(stopped.value, SQLError)
    again = engine.safe_query("SELECT count(*) AS n FROM gold.orders", timeout=5)
    assert again.table.to_pylist() == [{"n": 4}]


def test_a_time_limit_interrupts_only_its_own_statement(shop):
    engine = shop.engine
    outcome: dict[str, object] = {}

    def long_but_allowed() -> None:
        try:
            outcome["rows"] = engine.safe_query(
                "SELECT count(*) AS n FROM range(3000) a, range(3000) b, range(30) c",
                timeout=60,
            ).table.to_pylist()
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    other = threading.Thread(target=long_but_allowed, daemon=True)
    other.start()
    for _ in range(3):
        with pytest.raises(QueryTimeoutError):
            engine.safe_query(
                "SELECT count(*) FROM range(1000000) a, range(1000000) b", timeout=0.1
            )
    other.join(120)
    assert "error" not in outcome, outcome
    assert outcome["rows"] == [{"n": 270_000_000}]


def test_lock_down_keeps_the_engine_inside_the_warehouse(shop, tmp_path):
    engine = shop.engine
    engine.lock_down()  # again: idempotent
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b\n1,2\n")
    raw = engine.cursor()
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv('{outside}')",
        "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')",
    ):
        with pytest.raises(duckdb.PermissionException):
            raw.sql(sql).fetchall()
    for sql in (
        "SET threads = 1",
        "SET enable_external_access = true",
        "RESET allowed_directories",
    ):
        with pytest.raises(duckdb.Error, match="locked"):
            raw.execute(sql)
    with pytest.raises(duckdb.Error):
        raw.execute("LOAD httpfs")
    # Tables still read, new versions (new views, new types) included.
    assert shop.sql("SELECT count(*) FROM gold.orders").scalar() == 4
    shop.write(
        "gold.orders", [{"order_id": 20, "user_id": 3, "amount": 2.5, "note": "x"}], evolve=True
    )
    assert shop.sql("SELECT count(*), count(note) FROM gold.orders").rows() == [(5, 1)]
    assert shop.sql("SELECT count(*) FROM gold.orders VERSION AS OF 1").scalar() == 4
    shop.write("silver.events", [{"id": 1, "at": datetime(2026, 1, 1, tzinfo=UTC)}])
    assert shop.table("silver.events").to_arrow().num_rows == 1
    safe = engine.safe_query("SELECT count(*) AS n FROM gold.orders", masked=masked)
    assert safe.table.to_pylist() == [{"n": 5}]


def test_bad_input_says_what_to_do(shop):
    engine = shop.engine
    for sql in ("", "   ", "-- only a comment"):
        with pytest.raises(SQLError) as bad:
            engine.safe_query(sql)
        assert bad.value.hint
    with pytest.raises(SQLError) as syntax:
        engine.safe_query("SELEC 1")
    assert "syntax" in syntax.value.message.lower()
    with pytest.raises(TableNotFoundError) as missing:
        engine.safe_query("SELECT * FROM silver.user")
    assert "silver.users" in missing.value.suggestions
    with pytest.raises(QueryRefusedError) as bare:
        engine.safe_query("SELECT * FROM users")
    assert "silver.users" in bare.value.hint


def test_lock_down_leaves_object_store_tables_readable(s3_endpoint, tmp_path):
    lh = test_object_store.s3_warehouse(s3_endpoint, tmp_path)
    lh.write("silver.users", [{"user_id": 1, "email": "ada@example.com"}])
    lh.engine.lock_down()
    with pytest.raises(duckdb.PermissionException):
        lh.engine.cursor().sql("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    assert lh.sql("SELECT count(*) FROM silver.users").scalar() == 1
    query = "SELECT user_id, email FROM silver.users ORDER BY user_id"
    first = lh.engine.safe_query(query, masked=masked)
    assert first.table.to_pylist() == [{"user_id": 1, "email": pii(lh, "ada@example.com")}]
    assert lh.engine.safe_query(query, masked=masked).cached
    lh.write("silver.users", [{"user_id": 2, "email": None}])
    moved = lh.engine.safe_query(query, masked=masked)
    assert not moved.cached and moved.table.column("email").to_pylist() == [
        pii(lh, "ada@example.com"),
        None,
    ]
    travelled = lh.engine.safe_query("SELECT count(*) AS n FROM silver.users VERSION AS OF 1")
    assert travelled.table.to_pylist() == [{"n": 1}]


def test_pseudonyms_cannot_be_computed_by_a_caller(shop):
    """The old pseudonym (an unsalted SHA-256 prefix) let one query over range() recover every
    raw value, and a filter on a computed pseudonym tell whether a value exists; it is now an
    HMAC keyed with the warehouse's secret, which no statement reads."""
    engine = shop.engine
    users = "SELECT user_id, email FROM silver.users WHERE email IS NOT NULL ORDER BY user_id"
    shown = engine.safe_query(users, masked=masked).table.column("email").to_pylist()
    assert shown == [pii(shop, "ada@example.com")] * 2
    ids = {"silver.users": ["email"], "gold.orders": ["user_id"]}
    for sql in (
        # the reported attacks: a dictionary from range(), a computed pseudonym in a filter
        "SELECT count(*) AS n FROM range(100) r JOIN gold.orders o "
        "ON 'pii:' || left(sha256(CAST(r.range AS VARCHAR)), 12) = o.user_id",
        "SELECT count(*) AS n FROM (VALUES ('ada@example.com'), ('bo@example.com')) v(e) "
        "JOIN silver.users u ON 'pii:' || left(sha256(v.e), 12) = u.email",
        "SELECT count(*) AS n FROM silver.users "
        "WHERE email = 'pii:' || left(sha256('ada@example.com'), 12)",
    ):
        found = engine.safe_query(sql, masked=lambda t: ids.get(t, []))
        assert found.table.to_pylist() == [{"n": 0}], sql
    # The key: not in the catalog's answers, not readable as a table, not in a plan.
    key_hex = warehouse_key(shop.catalog).hex()
    for sql in (
        'SELECT * FROM memory."__lh_secret"."pseudonym_key"',
        'SELECT * FROM "__lh_secret".pseudonym_key',
        "SELECT * FROM pseudonym_key",
        "SELECT u.email FROM silver.users u, __lh_secret.pseudonym_key k",
        "SELECT * FROM duckdb_tables()",
        "SELECT * FROM duckdb_views()",
        "SELECT sql FROM duckdb_views() WHERE view_name = 'users'",
        "SUMMARIZE SELECT * FROM __lh_secret.pseudonym_key",
        "WITH k AS (SELECT * FROM __lh_secret.pseudonym_key) SELECT * FROM k",
        "SELECT (SELECT ipad FROM __lh_secret.pseudonym_key) AS k",
        "SELECT * FROM silver.users, LATERAL (SELECT opad FROM __lh_secret.pseudonym_key)",
        "SELECT * FROM query_table('__lh_secret.pseudonym_key')",
        "PIVOT __lh_secret.pseudonym_key ON ipad USING count(*)",
    ):
        with pytest.raises(QueryRefusedError):
            engine.safe_query(sql, masked=masked)
    plans = [
        engine.safe_query(f"EXPLAIN {users}", masked=masked),
        engine.safe_query(f"EXPLAIN ANALYZE {users}", masked=masked),
    ]
    for plan in plans:
        text = " ".join(str(v) for row in plan.table.to_pylist() for v in row.values())
        assert "pii:" in text or "sha256" in text or "Projection" in text
        assert key_hex not in text.lower() and key_hex[:16] not in text.lower()
    # Stable within the warehouse, different in another one.
    again = Lakehouse(shop.root)
    assert pii(again, "ada@example.com") == shown[0]
    assert again.engine.safe_query(users, masked=masked).table.column("email")[0].as_py() == (
        shown[0]
    )
    other = Lakehouse(Path(shop.root).parent / "other")
    other.write("silver.users", [{"user_id": 1, "email": "ada@example.com"}])
    elsewhere = other.engine.safe_query("SELECT email FROM silver.users", masked=masked)
    assert elsewhere.table.column("email")[0].as_py() != shown[0]
