"""`lakehouse demo` end to end, its gold figures checked against plain SQL on the source
files (not against the pipeline's own tables), and a second run changing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from lakehouse import Lakehouse

ROOT = Path(__file__).resolve().parents[1]
GOLD = (
    "event_metrics user_segments daily_summary hourly_metrics daily_active_users "
    "conversion_rate_daily events_per_source_daily purchases_per_page_daily"
).split()
SILVER = (
    "app_events clickstream_sessions users customers customers_history products "
    "products_history user_events"
).split()
VALID = """
    user_id IS NOT NULL
    AND event_type IN ('app_open', 'page_view', 'click', 'scroll', 'share', 'purchase')
    AND coalesce(amount >= 0, true)
    AND NOT (event_type = 'purchase' AND amount IS NULL)
"""


def demo(warehouse: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from lakehouse.cli import main; main()", "demo", *args],
        cwd=ROOT,
        env={**os.environ, "LAKEHOUSE_WAREHOUSE": str(warehouse), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("demo") / "warehouse"
    out = demo(warehouse)
    return warehouse, out


def source_events(landing: Path) -> duckdb.DuckDBPyConnection:
    """The app events as the files hold them: unreadable lines skipped, replays once."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""
        CREATE TABLE events AS
        SELECT DISTINCT ON (event_id) event_id, user_id, event_type, amount,
               CAST(CAST(event_time AS TIMESTAMPTZ) AS DATE) AS day
        FROM read_json('{landing}/app_events/*.jsonl', format = 'newline_delimited',
                       ignore_errors = true,
                       columns = {{event_id: 'VARCHAR', user_id: 'BIGINT',
                                  event_type: 'VARCHAR', amount: 'DOUBLE',
                                  event_time: 'VARCHAR'}})
        WHERE event_id IS NOT NULL AND event_time IS NOT NULL
        """
    )
    return con


def test_demo_builds_every_table_of_the_spec(built):
    warehouse, out = built
    lh = Lakehouse(warehouse)
    names = set(lh.catalog.names())
    for table in [
        "bronze." + t for t in ("app_events", "clickstream", "cdc_changes", "user_events")
    ]:
        assert table in names and lh.table(table).count() > 0, table
    for table in ["silver." + t for t in SILVER] + ["gold." + t for t in GOLD]:
        assert table in names and lh.table(table).count() > 0, table
    assert "tables built" in out and "data quality" in out and "try next" in out
    runs = lh.sql("SELECT status FROM system.pipeline_runs").rows()
    assert runs == [("succeeded",)]


def test_gold_figures_match_plain_sql_on_the_sources(built):
    warehouse, _ = built
    lh = Lakehouse(warehouse)
    con = source_events(warehouse / "landing")
    expected_dau = con.sql(
        f"SELECT day, count(DISTINCT user_id) FROM events WHERE {VALID} GROUP BY day ORDER BY day"
    ).fetchall()
    assert len(expected_dau) >= 2
    got_dau = lh.sql("SELECT day, active_users FROM gold.daily_active_users ORDER BY day").rows()
    assert got_dau == expected_dau
    expected_conv = con.sql(
        f"""
        SELECT day, round(count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase')
                          / count(DISTINCT user_id), 4)
        FROM events WHERE {VALID} GROUP BY day ORDER BY day
        """
    ).fetchall()
    got_conv = lh.sql(
        "SELECT day, conversion_rate FROM gold.conversion_rate_daily ORDER BY day"
    ).rows()
    assert [(d, float(r)) for d, r in got_conv] == [(d, float(r)) for d, r in expected_conv]
    revenue = con.sql(
        f"SELECT round(sum(amount), 2) FROM events WHERE {VALID} AND event_type = 'purchase'"
    ).fetchall()[0][0]
    got = lh.sql("SELECT sum(revenue) FROM gold.purchases_per_page_daily").scalar()
    assert float(got) == pytest.approx(float(revenue), abs=0.05)


def test_cdc_state_matches_a_replay_of_the_change_files(built):
    warehouse, _ = built
    lh = Lakehouse(warehouse)
    con = duckdb.connect()
    latest = con.sql(
        f"""
        SELECT primary_key, json_extract_string("after", '$.tier') AS tier
        FROM read_json('{warehouse}/landing/cdc_changes/*.jsonl', format = 'newline_delimited')
        WHERE table_name = 'customers'
        QUALIFY row_number() OVER (PARTITION BY primary_key ORDER BY sequence DESC) = 1
            AND operation <> 'delete'
        ORDER BY primary_key
        """
    ).fetchall()
    got = lh.sql("SELECT customer_id, tier FROM silver.customers ORDER BY customer_id").rows()
    assert got == latest
    current = lh.sql(
        "SELECT customer_id, tier FROM silver.customers_history WHERE is_current ORDER BY 1"
    ).rows()
    assert current == latest


def test_running_the_demo_again_changes_nothing(built):
    warehouse, _ = built
    lh = Lakehouse(warehouse)
    before = {
        name: (lh.table(name).version, sorted(lh.sql(f"SELECT * FROM {name}").rows(), key=repr))
        for name in ["silver." + t for t in SILVER] + ["gold." + t for t in GOLD]
    }
    out = demo(warehouse)
    assert "0 rows written" in out
    lh = Lakehouse(warehouse)
    for name, (version, rows) in before.items():
        assert lh.table(name).version == version, name
        assert sorted(lh.sql(f"SELECT * FROM {name}").rows(), key=repr) == rows, name


def test_events_option_scales_the_demo(tmp_path):
    warehouse = tmp_path / "bigger"
    demo(warehouse, "--events", "4000")
    lh = Lakehouse(warehouse)
    assert lh.table("bronze.app_events").count() + lh.table(
        "bronze.app_events_quarantine"
    ).count() == pytest.approx(4000, rel=0.02)
    assert lh.table("bronze.user_events").count() == pytest.approx(8000, rel=0.05)
