from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lakehouse import SQLError, TableNotFoundError, VersionNotFoundError


@pytest.fixture
def shop(lh):
    lh.write(
        "silver.users",
        [
            {"user_id": 1, "name": "ada", "country": "fr"},
            {"user_id": 2, "name": "bob", "country": "uk"},
            {"user_id": 3, "name": "cy", "country": "fr"},
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
    return lh


def test_join_across_layers(shop):
    got = shop.sql(
        """
        SELECT u.name, sum(o.amount) AS total
        FROM silver.users u JOIN gold.orders o ON o.user_id = u.user_id
        GROUP BY u.name ORDER BY total DESC
        """
    ).rows()
    assert got == [("ada", 12.0), ("cy", 4.0), ("bob", 1.0)]


def test_analytical_dialect(shop):
    got = shop.sql(
        """
        WITH best AS (
            SELECT u.country, o.order_id,
                   sum(amount) OVER (PARTITION BY u.country) AS country_total
            FROM gold.orders o JOIN silver.users u USING (user_id)
            QUALIFY row_number() OVER (PARTITION BY u.country ORDER BY amount DESC) = 1
        )
        SELECT * FROM best ORDER BY country
        """
    ).rows()
    assert got == [("fr", 11, 16.0), ("uk", 12, 1.0)]


def test_result_formats(shop):
    result = shop.sql("SELECT user_id, name FROM silver.users ORDER BY user_id")
    assert isinstance(result.to_arrow(), pa.Table)
    assert isinstance(result.to_pandas(), pd.DataFrame)
    assert isinstance(result.to_polars(), pl.DataFrame)
    assert result.rows()[0] == (1, "ada")
    assert result.to_dicts()[1] == {"user_id": 2, "name": "bob"}
    assert result.columns == ["user_id", "name"] and len(result) == 3
    assert shop.sql("SELECT count(*) FROM silver.users").scalar() == 3


def test_time_travel_syntax(shop):
    time.sleep(0.05)
    between = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    time.sleep(0.05)
    shop.write("silver.users", [{"user_id": 4, "name": "dee", "country": "de"}])
    shop.table("silver.users").delete("user_id = 1")
    q = "SELECT count(*) FROM silver.users"
    assert shop.sql(q).scalar() == 3
    assert shop.sql(q + " VERSION AS OF 0").scalar() == 0
    assert shop.sql(q + " VERSION AS OF 1").scalar() == 3
    assert shop.sql(q + " VERSION AS OF 2").scalar() == 4
    assert shop.sql(f"{q} TIMESTAMP AS OF '{between}'").scalar() == 3
    assert shop.sql(f"{q} TIMESTAMP AS OF TIMESTAMP '{between}'").scalar() == 3
    # Two versions of one table in one query: what changed between them.
    changed = shop.sql(
        """
        SELECT name FROM silver.users VERSION AS OF 2
        EXCEPT SELECT name FROM silver.users version as of 3
        """
    ).rows()
    assert changed == [("ada",)]
    # Literals and comments that look like time travel are left alone.
    assert shop.sql("SELECT 'silver.users VERSION AS OF 9' AS s -- gold.x").scalar() == (
        "silver.users VERSION AS OF 9"
    )
    with pytest.raises(VersionNotFoundError, match="no version 9"):
        shop.sql(q + " VERSION AS OF 9")
    with pytest.raises(VersionNotFoundError):
        shop.sql(q + " TIMESTAMP AS OF '1999-01-01'")
    with pytest.raises(SQLError, match="quoted timestamp"):
        shop.sql(q + " TIMESTAMP AS OF 5")
    with pytest.raises(SQLError, match="cannot read"):
        shop.sql(q + " TIMESTAMP AS OF 'yesterday'")


def test_sees_new_versions_without_reopening(shop):
    assert shop.sql("SELECT count(*) FROM gold.orders").scalar() == 4
    shop.write("gold.orders", [{"order_id": 14, "user_id": 2, "amount": 2.0}])
    assert shop.sql("SELECT count(*) FROM gold.orders").scalar() == 5
    # ...and writes made by another Lakehouse object (another process, in real life).
    from lakehouse import Lakehouse

    other = Lakehouse(shop.root)
    other.write("gold.orders", [{"order_id": 15, "user_id": 2, "amount": 2.0}])
    assert shop.sql("SELECT count(*) FROM gold.orders").scalar() == 6


def test_explain(shop):
    plan = shop.sql("EXPLAIN SELECT * FROM silver.users WHERE user_id = 1").to_dicts()
    text = "\n".join(str(v) for row in plan for v in row.values())
    assert "READ_PARQUET" in text.upper() or "PARQUET_SCAN" in text.upper()


def test_invalid_sql_has_position(shop):
    with pytest.raises(SQLError) as err:
        shop.sql("SELECT * FORM silver.users")
    assert "syntax error" in str(err.value)
    assert "LINE 1" in str(err.value) and "^" in str(err.value)
    with pytest.raises(SQLError) as err:
        shop.sql("SELECT nope FROM silver.users")
    assert "nope" in str(err.value)
    with pytest.raises(SQLError, match="empty"):
        shop.sql("   ")


def test_unknown_table_suggests(shop):
    with pytest.raises(TableNotFoundError) as err:
        shop.sql("SELECT * FROM silver.user")
    assert err.value.name == "silver.user"
    assert "silver.users" in err.value.suggestions
    with pytest.raises(TableNotFoundError) as err:
        shop.sql("SELECT * FROM gold.users VERSION AS OF 1")
    assert "silver.users" in err.value.suggestions
    with pytest.raises(SQLError, match="did you mean silver.users"):
        shop.sql("SELECT * FROM users")


def test_alias_named_like_a_layer_is_not_a_table(shop):
    got = shop.sql("SELECT gold.amount FROM gold.orders AS gold ORDER BY 1 LIMIT 1").rows()
    assert got == [(1.0,)]


def test_empty_table_and_columns_added_later(lh):
    lh.write("silver.t", pa.table({"a": pa.array([], pa.int64())}))
    assert lh.sql("SELECT count(*) FROM silver.t").scalar() == 0
    lh.write("silver.t", [{"a": 1}])
    lh.write("silver.t", [{"a": 2, "b": "x"}], evolve=True)
    assert lh.sql("SELECT a, b FROM silver.t ORDER BY a").rows() == [(1, None), (2, "x")]


def test_unchanged_table_costs_no_log_listing_and_replacement_is_seen(shop, monkeypatch):
    """A query on a table nobody wrote to since looks at two file names in its log
    instead of having delta-rs list and read the log; a new commit, or the table dropped
    and written again under the same name by another process, is still seen."""
    from deltalake import DeltaTable

    from lakehouse import Lakehouse

    refreshes = []
    update = DeltaTable.update_incremental
    monkeypatch.setattr(
        DeltaTable, "update_incremental", lambda dt: refreshes.append(1) or update(dt)
    )
    assert shop.sql("SELECT count(*) FROM gold.orders").scalar() == 4
    for _ in range(3):
        assert shop.sql("SELECT count(*) FROM gold.orders").scalar() == 4
    assert refreshes == []
    other = Lakehouse(shop.root)
    other.write("gold.orders", [{"order_id": 14, "user_id": 2, "amount": 2.0}])
    assert shop.sql("SELECT count(*) FROM gold.orders").scalar() == 5
    assert shop.sql("SELECT max(order_id) FROM gold.orders VERSION AS OF 2").scalar() == 14
    # Dropped and made again elsewhere, up to the same version number: new rows, new files.
    other.drop("gold.orders")
    other.write("gold.orders", [{"order_id": 1, "user_id": 1, "amount": 1.0}])
    other.write("gold.orders", [{"order_id": 2, "user_id": 1, "amount": 1.0}])
    assert shop.sql("SELECT sum(order_id) FROM gold.orders").scalar() == 3
    assert shop.sql("SELECT max(order_id) FROM gold.orders VERSION AS OF 2").scalar() == 2


def test_every_cursor_reads_in_utc_with_cached_footers(shop):
    """Queries run on per-thread cursors: the engine's settings must reach them, in a
    process whose machine time zone is not UTC too."""
    import os
    import subprocess
    import sys

    script = (
        "import sys; from lakehouse import Lakehouse; lh = Lakehouse(sys.argv[1]); "
        "print(lh.sql(\"SELECT current_setting('TimeZone'), "
        "current_setting('parquet_metadata_cache'), "
        "CAST(TIMESTAMPTZ '2026-01-01 00:00:00+00' AS VARCHAR), count(*) "
        'FROM gold.orders").rows())'
    )
    env = {**os.environ, "TZ": "America/New_York"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(shop.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "[('UTC', True, '2026-01-01 00:00:00+00', 4)]"
