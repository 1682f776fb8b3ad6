"""Privacy on the demo warehouse through a real `lakehouse serve`: an analyst cannot recover
raw user ids, emails or names by the ways that once worked (pseudonyms computed over
range(), a filter on a computed pseudonym, failing-row samples, quarantine tables, columns
computed from PII columns, lineage, "did you mean"), and joins on masked keys still work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lakehouse import Lakehouse
from lakehouse.sql.masking import warehouse_key
from tests.helpers.server import Server, start_server

# (table, column) the demo's analysts must see masked: declared, inherited, quarantined.
MASKED = [
    ("silver.app_events", "user_id"),
    ("silver.user_events", "user_id"),
    ("silver.clickstream_sessions", "user_id"),
    ("silver.users", "user_id"),
    ("gold.user_segments", "user_id"),
    ("silver.customers", "email"),
    ("silver.customers", "name"),
    ("silver.customers_history", "email"),
    ("silver.customers_history", "name"),
]


def cli(warehouse: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
             "COLUMNS": "250"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def site(demo_warehouse: Path):
    tokens = {}
    for role in ("analyst", "viewer"):
        out = cli(demo_warehouse, "token", "create", "--name", f"privacy-{role}", "--role", role)
        tokens[role] = next(w for w in out.split() if w.startswith("lh_"))
    server = start_server(demo_warehouse)
    tokens["admin"] = server.login_token
    try:
        yield server, tokens
    finally:
        server.stop()


def call(site: Any, role: str, method: str, path: str, **kwargs: Any) -> Any:
    server: Server = site[0]
    with server.client(site[1][role]) as c:
        return c.request(method, path, **kwargs)


def rows(site: Any, role: str, sql: str) -> list[dict[str, Any]]:
    answer = call(site, role, "POST", "/query", json={"sql": sql, "limit": 100_000})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return [dict(zip(body["columns"], r, strict=True)) for r in body["rows"]]


def test_ids_emails_and_names_are_masked_wherever_they_flow(site, demo_warehouse):
    for table, column in MASKED:
        sql = f"SELECT DISTINCT {column} AS v FROM {table} WHERE {column} IS NOT NULL"
        raw = {r["v"] for r in rows(site, "admin", sql)}
        shown = {r["v"] for r in rows(site, "analyst", sql)}
        assert raw, (table, column)
        assert all(str(v).startswith("pii:") for v in shown), (table, column)
        assert not shown & {str(v) for v in raw}, (table, column)
        assert len(shown) == len(raw), (table, column)  # equal values, equal pseudonyms
        details = call(site, "analyst", "GET", f"/tables/{table}").json()
        described = next(c for c in details["columns"] if c["name"] == column)
        assert described["masked"] is True, (table, column)
    app_events = call(site, "analyst", "GET", "/tables/silver.app_events").json()
    user_id = next(c for c in app_events["columns"] if c["name"] == "user_id")
    assert user_id["tags"] == [] and user_id["inherited_tags"] == ["pii"]
    assert user_id["inherited_from"] == "bronze.app_events.user_id"
    # companion tables take their table's tags, whether or not they hold rows yet
    for table, column in (
        ("silver.customers_quarantine", "email"),
        ("silver.app_events_quarantine", "user_id"),
        ("bronze.app_events_quarantine", "raw_payload"),
    ):
        lh = Lakehouse(demo_warehouse)
        assert lh.catalog.get(table) is not None, table
        details = call(site, "admin", "GET", f"/tables/{table}").json()
        described = next(c for c in details["columns"] if c["name"] == column)
        assert described["inherited_tags"] == ["pii"], table
    quarantined = rows(
        site, "analyst", "SELECT user_id FROM silver.app_events_quarantine WHERE user_id > ''"
    )
    assert all(str(r["user_id"]).startswith("pii:") for r in quarantined)
    # aggregates of a pii column do not inherit it
    dau = call(site, "analyst", "GET", "/tables/gold.daily_active_users").json()
    assert not any(c["masked"] for c in dau["columns"])
    described = cli(demo_warehouse, "describe", "silver.clickstream_sessions")
    assert "inherited" in described
    as_json = json.loads(
        cli(demo_warehouse, "describe", "silver.clickstream_sessions", "--format", "json")
    )
    record = as_json[0] if isinstance(as_json, list) else as_json
    assert record["inherited_tags"] == {"user_id": {"pii": "bronze.clickstream.user_id"}}


def test_pseudonyms_cannot_be_computed_or_looked_up(site, demo_warehouse):
    raw_ids = [r["user_id"] for r in rows(site, "admin", "SELECT user_id FROM silver.users")]
    most = max(int(v) for v in raw_ids)
    attacks = [
        f"SELECT count(*) AS n FROM range({most + 1}) r JOIN silver.users u "
        "ON 'pii:' || left(sha256(CAST(r.range AS VARCHAR)), 12) = u.user_id",
        f"SELECT count(*) AS n FROM range({most + 1}) r JOIN gold.user_segments u "
        "ON 'pii:' || left(sha256(CAST(r.range AS VARCHAR)), 12) = u.user_id",
        "SELECT count(*) AS n FROM silver.users "
        f"WHERE user_id = 'pii:' || left(sha256('{raw_ids[0]}'), 12)",
    ]
    for sql in attacks:
        assert rows(site, "analyst", sql) == [{"n": 0}], sql
    key = warehouse_key(Lakehouse(demo_warehouse).catalog).hex()
    for sql in (
        'SELECT * FROM memory."__lh_secret".pseudonym_key',
        "SELECT * FROM __lh_secret.pseudonym_key",
        "SELECT sql FROM duckdb_views()",
    ):
        refused = call(site, "analyst", "POST", "/query", json={"sql": sql})
        assert refused.status_code == 400, sql
    answers = [
        call(site, "analyst", "POST", "/query", json={"sql": f"EXPLAIN {sql}"}).text
        for sql in ("SELECT * FROM silver.users", "SELECT user_id FROM gold.user_segments")
    ]
    for path in ("/tables", "/catalog", "/me", "/quality", "/tables/silver.users"):
        answers.append(call(site, "admin", "GET", path).text)
    assert all(key not in text and key[:16] not in text for text in answers)


def test_joins_on_masked_keys_still_work(site):
    for sql in (
        "SELECT count(*) AS n FROM silver.app_events e JOIN silver.users u USING (user_id)",
        "SELECT count(*) AS n FROM silver.users u JOIN gold.user_segments g USING (user_id)",
        "SELECT count(*) AS n FROM silver.clickstream_sessions s "
        "JOIN silver.users u ON s.user_id = u.user_id",
        "SELECT count(*) AS n FROM silver.customers c "
        "JOIN silver.customers_history h USING (email)",
    ):
        admin, analyst = rows(site, "admin", sql), rows(site, "analyst", sql)
        assert admin == analyst and admin[0]["n"] > 0, sql
    per_user = (
        "SELECT u.user_id, count(*) AS events FROM silver.app_events e "
        "JOIN silver.users u USING (user_id) WHERE e.is_valid "
        "GROUP BY ALL ORDER BY events DESC, 1 LIMIT 1"
    )
    top = rows(site, "analyst", per_user)[0]
    segment = rows(
        site, "analyst", f"SELECT events FROM gold.user_segments WHERE user_id = '{top['user_id']}'"
    )
    assert segment == [{"events": top["events"]}]


def test_failing_row_samples_are_masked_for_the_caller(site, demo_warehouse):
    def samples(role: str, path: str) -> list[dict[str, Any]]:
        report = call(site, role, "GET", path).json()
        found = [json.loads(r["sample"]) for r in report["results"] if r["sample"]]
        return [row for sample in found for row in sample]

    raw = samples("admin", "/tables/silver.app_events/quality")
    assert raw and all(isinstance(r["user_id"], int) for r in raw if r["user_id"] is not None)
    for path in ("/tables/silver.app_events/quality", "/quality?table=silver.app_events"):
        shown = samples("analyst", path)
        assert [r["event_id"] for r in shown] == [r["event_id"] for r in raw]
        for row in shown:
            if row["user_id"] is None:
                continue
            assert str(row["user_id"]).startswith("pii:")
            same = rows(
                site,
                "analyst",
                f"SELECT user_id FROM silver.app_events WHERE event_id = '{row['event_id']}'",
            )
            assert same == [{"user_id": row["user_id"]}]  # the pseudonym a query gives
    # Read as a table (with a grant on the system layer), the samples are masked whole.
    cli(demo_warehouse, "grant", "read", "system", "--to", "privacy-analyst")
    try:
        sql = "SELECT sample FROM system.quality_results WHERE sample LIKE '%user_id%'"
        deadline = time.monotonic() + 30
        while True:
            answer = call(site, "analyst", "POST", "/query", json={"sql": sql})
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the grant reaches each server process at its next reload
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == []  # no sample shows its text, user_id included
        whole = rows(site, "analyst", "SELECT sample FROM system.quality_results")
        assert all(r["sample"] is None or r["sample"].startswith("pii:") for r in whole)
    finally:
        cli(demo_warehouse, "revoke", "read", "system", "--to", "privacy-analyst")


def test_lineage_and_hints_show_only_readable_tables(site):
    graph = call(site, "analyst", "GET", "/catalog/lineage/silver.users?columns=true").json()
    names = {n["name"] for n in graph["nodes"]}
    assert "silver.app_events" in names and not any(n.startswith("bronze.") for n in names)
    assert not any(e["source"].startswith("bronze.") for e in graph["edges"])
    full = call(site, "admin", "GET", "/catalog/lineage/silver.users?columns=true").json()
    assert any(n["name"].startswith("bronze.") for n in full["nodes"])

    hidden = call(site, "analyst", "GET", "/tables/bronze.app_events")
    missing = call(site, "analyst", "GET", "/tables/bronze.no_such_table")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"] == "table bronze.app_events does not exist"
    assert missing.json()["error"]["message"] == "table bronze.no_such_table does not exist"
    assert "bronze" not in hidden.json()["error"]["hint"]  # readable tables only
    assert set(hidden.json()["error"]) == set(missing.json()["error"])
    near = call(site, "analyst", "POST", "/query", json={"sql": "SELECT * FROM bronze.app_event"})
    assert near.status_code == 404 and "bronze" not in str(near.json()["error"]["hint"])
    helped = call(site, "admin", "POST", "/query", json={"sql": "SELECT * FROM bronze.app_event"})
    assert "bronze.app_events" in helped.json()["error"]["hint"]
    viewer = call(site, "viewer", "GET", "/tables/silver.userz")
    assert viewer.status_code == 404 and "silver." not in str(viewer.json()["error"]["hint"])
