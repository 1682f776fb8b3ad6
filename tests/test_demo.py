"""`lakehouse demo` end to end, its gold figures checked against plain SQL on the source
files (not against the pipeline's own tables), and a second run changing nothing."""

from __future__ import annotations

import json
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


def check_user_figures(lh: Lakehouse, landing: Path) -> None:
    """gold.daily_summary, silver.users and gold.user_segments against the source files:
    one population (the users of valid events), and 0 <= new <= daily, returning = the rest."""
    con = source_events(landing)
    con.execute(
        f"""
        CREATE TABLE valid AS SELECT * FROM events WHERE {VALID};
        CREATE TABLE first_days AS
            SELECT user_id, min(day) AS first_day FROM valid GROUP BY user_id;
        CREATE TABLE sessions AS
            SELECT session_id, CAST(min(CAST(click_time AS TIMESTAMPTZ)) AS DATE) AS day,
                   count(*) AS page_views
            FROM read_csv('{landing}/clickstream/*.csv', header = true) GROUP BY session_id
        """
    )
    expected = con.sql(
        """
        SELECT v.day, count(DISTINCT v.user_id) AS daily_users, count(*) AS events,
               (SELECT count(*) FROM first_days f WHERE f.first_day = v.day) AS new_users,
               (SELECT round(count(*) FILTER (WHERE page_views = 1) / count(*), 4)
                FROM sessions s WHERE s.day = v.day) AS bounce_rate
        FROM valid v GROUP BY v.day ORDER BY v.day
        """
    ).fetchall()
    got = lh.sql(
        "SELECT day, daily_users, events, new_users, returning_users, events_per_user, "
        "bounce_rate FROM gold.daily_summary ORDER BY day"
    ).rows()
    assert len(got) == len(expected) >= 2
    for (day, daily, events, new, bounce), row in zip(expected, got, strict=True):
        assert 0 <= new <= daily, (day, daily, new)
        assert row[:5] == (day, daily, events, new, daily - new), (row, day)
        assert float(row[5]) == round(events / daily, 2)
        assert float(row[6]) == pytest.approx(float(bounce)), day
    # Every user counted new once, on the day of their first valid event; the users of
    # silver.users and gold.user_segments are those same users, their figures valid events.
    users = con.sql(
        "SELECT user_id, count(*), count(DISTINCT event_type) FROM valid GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert sum(r[3] for r in got) == len(users)
    assert (
        lh.sql("SELECT user_id, events, distinct_event_types FROM silver.users ORDER BY 1").rows()
        == users
    )
    assert lh.sql("SELECT user_id, events FROM gold.user_segments ORDER BY 1").rows() == [
        u[:2] for u in users
    ]


def test_user_figures_are_one_population_of_the_sources(built):
    warehouse, _ = built
    check_user_figures(Lakehouse(warehouse), warehouse / "landing")
    results = (
        Lakehouse(warehouse)
        .sql(
            "SELECT expectation, action, passed FROM system.quality_results "
            "WHERE dataset = 'gold.daily_summary' ORDER BY 1"
        )
        .rows()
    )
    assert results == [
        ("new_within_daily", "fail", True),
        ("returning_is_the_rest", "fail", True),
    ]


def test_every_table_has_what_its_header_says(built):
    from lakehouse.pipeline import load_pipeline
    from lakehouse.pipeline.table_fields import header_fields

    warehouse, _ = built
    lh = Lakehouse(warehouse)
    pipeline = load_pipeline(ROOT / "pipelines" / "demo")
    checked = 0
    for name, ds in pipeline.datasets.items():
        info = lh.catalog.get(name)
        given = header_fields(ds)
        assert given.get("description") and given.get("tags"), name  # the demo gives both
        have = {
            "description": info.description,
            "owner": info.owner,
            "tags": sorted(info.tags),
            "column_tags": {c: sorted(v) for c, v in info.column_tags.items()},
            "retention_days": info.retention_days,
        }
        assert {k: have[k] for k in given} == given, name
        assert info.keys == ds.keys, name
        checked += 1
    assert checked == 20
    raw = [i.name for i in lh.tables(tag="raw")]
    sources = ("app_events", "cdc_changes", "clickstream", "user_events")
    assert raw == [f"bronze.{s}" for s in sources]


def cli_json(warehouse: Path, *args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", "from lakehouse.cli import main; main()", *args],
        cwd=ROOT,
        env={**os.environ, "LAKEHOUSE_WAREHOUSE": str(warehouse), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_quality_shows_ingestion_quarantine_and_warnings(built):
    warehouse, _ = built
    malformed = sum(
        f["malformed"]
        for f in json.loads((warehouse / "landing" / "_generated.json").read_text())["sources"][
            "app_events"
        ]["files"]
    )
    lh = Lakehouse(warehouse)
    quarantined = lh.table("bronze.app_events_quarantine").count()
    assert malformed == quarantined > 0
    [readable] = cli_json(warehouse, "quality", "bronze.app_events", "--format", "json")
    assert (readable["expectation"], readable["action"], readable["status"]) == (
        "readable_record",
        "quarantine",
        "failed",
    )
    assert readable["failed_rows"] == quarantined
    assert readable["total_rows"] == quarantined + lh.table("bronze.app_events").count()
    assert all("line" in s["reason"] for s in json.loads(readable["sample"]))
    # silver.app_events' warn check on amounts finds rows: a warning, not a failure.
    results = cli_json(warehouse, "quality", "silver.app_events", "--format", "json")
    sane = next(r for r in results if r["expectation"] == "sane_amount")
    assert (sane["action"], sane["status"], sane["passed"]) == ("warn", "warning", False)
    assert sane["failed_rows"] > 0
    assert {r["status"] for r in results if r["passed"]} == {"passed"}


def test_hourly_event_and_source_figures_match_the_sources(built):
    """The gold tables not checked above, each from its own population of the files:
    hourly health over every event, event metrics over valid ones, sources over user
    events of known types."""
    warehouse, _ = built
    lh = Lakehouse(warehouse)
    landing = warehouse / "landing"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""
        CREATE TABLE app AS
        SELECT DISTINCT ON (event_id) event_id, user_id, lower(trim(event_type)) AS event_type,
               lower(trim(app_type)) AS app_type, amount,
               date_trunc('hour', CAST(event_time AS TIMESTAMPTZ)) AS hour
        FROM read_json('{landing}/app_events/*.jsonl', format = 'newline_delimited',
                       ignore_errors = true,
                       columns = {{event_id: 'VARCHAR', user_id: 'BIGINT',
                                  event_type: 'VARCHAR', app_type: 'VARCHAR',
                                  amount: 'DOUBLE', event_time: 'VARCHAR'}})
        WHERE event_id IS NOT NULL AND event_time IS NOT NULL
        """
    )
    hourly = con.sql(
        f"""
        SELECT hour, count(DISTINCT user_id), count(*), count(*) FILTER (WHERE NOT ({VALID}))
        FROM app GROUP BY hour ORDER BY hour
        """
    ).fetchall()
    got = lh.sql(
        "SELECT hour, concurrent_users, events, errors FROM gold.hourly_metrics ORDER BY hour"
    ).rows()
    assert got == hourly and len(got) >= 24
    metrics = con.sql(
        f"""
        SELECT hour, event_type, app_type, count(*), count(DISTINCT user_id)
        FROM app WHERE {VALID} GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    got = lh.sql(
        "SELECT event_hour, event_type, app_type, events, unique_users FROM gold.event_metrics "
        "ORDER BY ALL"
    ).rows()
    assert got == metrics
    per_source = con.sql(
        f"""
        SELECT day, source, count(*), count(DISTINCT user_id) FROM (
            SELECT DISTINCT ON (event_id) user_id, lower(trim(source)) AS source,
                   CAST(CAST(event_time AS TIMESTAMPTZ) AS DATE) AS day
            FROM read_json('{landing}/user_events/*.jsonl', format = 'newline_delimited',
                           ignore_errors = true)
            WHERE event_id IS NOT NULL
              AND lower(trim(event_type)) IN ('login', 'click', 'purchase', 'logout')
        ) GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    got = lh.sql(
        "SELECT day, source, events, users FROM gold.events_per_source_daily ORDER BY ALL"
    ).rows()
    assert got == per_source


def test_the_invariant_stops_a_run_that_mixes_populations(built, tmp_path):
    """New users counted over every event but daily users over valid ones (the old
    definition): the demo's expectation fails the run, which keeps nothing."""
    import shutil

    from lakehouse.pipeline import RunFailed, load_pipeline, run_pipeline

    warehouse, _ = built
    folder = tmp_path / "demo"
    shutil.copytree(ROOT / "pipelines" / "demo", folder)
    users = folder / "silver" / "users.sql"
    users.write_text(users.read_text().replace("WHERE is_valid", "WHERE user_id IS NOT NULL"))
    summary = folder / "gold" / "daily_summary.sql"
    text = summary.read_text()
    start, end = text.index("first_days AS ("), text.index("bounces AS (")
    summary.write_text(
        text[:start]
        + "first_days AS (SELECT CAST(first_seen AS DATE) AS day, count(*) AS new_users "
        "FROM silver.users GROUP BY 1),\n" + text[end:]
    )
    lh = Lakehouse(tmp_path / "warehouse")
    with pytest.raises(RunFailed) as caught:
        run_pipeline(lh, load_pipeline(folder, {"landing": str(warehouse / "landing")}))
    assert "gold.daily_summary" in str(caught.value)
    assert "new_within_daily" in str(caught.value) or "returning_is_the_rest" in str(caught.value)
    kept = lh.exists("gold.daily_summary") and lh.table("gold.daily_summary").count()
    assert not kept  # the failed run wrote no figure


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
    demo(warehouse, "--events", "20000")
    lh = Lakehouse(warehouse)
    assert lh.table("bronze.app_events").count() + lh.table(
        "bronze.app_events_quarantine"
    ).count() == pytest.approx(20000, rel=0.02)
    assert lh.table("bronze.user_events").count() == pytest.approx(40000, rel=0.05)
    check_user_figures(lh, warehouse / "landing")


def test_every_row_of_the_demo_run_is_accounted_for(built):
    """Rows read = written + dropped + quarantined + de-duplicated for the files datasets
    and the row-wise silver.app_events; the replays of app events are the de-duplicated."""
    warehouse, _ = built
    lh = Lakehouse(warehouse)
    rows = lh.sql(
        "SELECT dataset, kind, rows_read, rows_written, rows_dropped, rows_quarantined, "
        "rows_deduplicated FROM system.dataset_runs WHERE run_id = "
        "(SELECT run_id FROM system.pipeline_runs ORDER BY started_at LIMIT 1)"
    ).to_dicts()
    checked = [r for r in rows if r["kind"] == "files" or r["dataset"] == "silver.app_events"]
    assert len(checked) == 5
    for r in checked:
        assert r["rows_read"] == (
            r["rows_written"] + r["rows_dropped"] + r["rows_quarantined"] + r["rows_deduplicated"]
        ), r
    app = next(r for r in checked if r["dataset"] == "silver.app_events")
    replays = lh.sql(
        "SELECT count(*) - count(DISTINCT event_id) FROM bronze.app_events "
        "WHERE event_id IS NOT NULL AND event_time IS NOT NULL"
    ).scalar()
    assert app["rows_deduplicated"] == replays == 14


def test_the_demo_on_iceberg_gives_the_gold_tables_of_the_delta_run(
    demo_warehouse: Path, iceberg_demo_warehouse: Path
) -> None:
    delta, iceberg = Lakehouse(demo_warehouse), Lakehouse(iceberg_demo_warehouse)

    # The system layer holds what other tests of the session did on the shared warehouse.
    def made(lh: Lakehouse) -> set[str]:
        return {n for n in lh.catalog.names() if not n.startswith("system.")}

    assert made(iceberg) == made(delta)
    formats = {i.name: i.format for i in iceberg.tables()}
    assert {f for f in formats.values() if f != "view"} == {"iceberg"}
    for name in GOLD:
        table = f"gold.{name}"
        assert formats[table] == "iceberg"
        assert iceberg.table(table).format.name == "iceberg"
        assert delta.table(table).format.name == "delta"
        query = f"SELECT * FROM {table} ORDER BY ALL"
        expected = delta.sql(query).rows()
        assert expected, table
        assert iceberg.sql(query).rows() == expected, table
