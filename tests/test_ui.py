"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against a real
`lakehouse serve` process over a warehouse built by the demo. Every step leaves a
screenshot in tests/artifacts/ui/."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from lakehouse import Lakehouse
from tests.helpers.browser import chromium, new_page, shot
from tests.helpers.server import start_server

ROOT = Path(__file__).resolve().parents[1]
PSEUDONYM = re.compile(r"^pii:[0-9a-f]{12}$")

expect.set_options(timeout=20_000)


def _env(warehouse: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env.update(LAKEHOUSE_WAREHOUSE=str(warehouse), NO_COLOR="1", COLUMNS="200")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(warehouse: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        cwd=ROOT,
        env=_env(warehouse),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass
class UIServer:
    """The server under test, with what the UI tests need to know of it."""

    server: UIServer
    warehouse: Path
    viewer_token: str

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def login_url(self) -> str:
        return self.server.login_url


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[UIServer]:
    warehouse = tmp_path_factory.mktemp("ui") / "warehouse"
    cli(warehouse, "demo")
    # The masking check needs a gold table with a pii column: a viewer reads only gold.
    segments = Lakehouse(warehouse).table("gold.user_segments")
    tags = dict(segments.info.column_tags)
    if "pii" not in tags.get("user_id", []):
        tags["user_id"] = [*tags.get("user_id", []), "pii"]
        segments.set(column_tags=tags)
    created = cli(warehouse, "token", "create", "--name", "v", "--role", "viewer")
    token = re.search(r"\blh_[A-Za-z0-9_-]+", created)
    assert token, created
    # One server process: the UI's "cached" badge is the same process's cache.
    srv = start_server(warehouse, pipelines=ROOT / "pipelines", args=["--workers", "1"], cwd=ROOT)
    try:
        yield UIServer(srv, warehouse, token.group(0))
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def admin(server: UIServer, browser: Browser) -> Iterator[Page]:
    """A browser logged in through the login URL the server printed."""
    errors: list[str] = []
    page = new_page(browser, errors)
    page.goto(server.login_url)
    expect(page.locator("#whoami")).to_contain_text("admin")
    yield page
    page.context.close()
    assert not errors, errors


def go(page: Page, server: UIServer, route: str) -> None:
    page.goto(f"{server.base}/{route}")


def set_sql(page: Page, sql: str) -> None:
    """Replace the editor's statement, as a paste would."""
    page.click("#sql-editor")
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(sql)


def test_login_url_opens_the_tables_browser(server, admin):
    page = admin
    # The token went into a cookie and left the address bar.
    assert page.url == f"{server.base}/" or page.url.startswith(f"{server.base}/#/tables")
    assert "token" not in page.url
    expect(page.locator("#whoami")).to_contain_text("admin")
    for layer in ("bronze", "silver", "gold", "system", "realtime"):
        expect(page.locator(f'.layer-section[data-layer="{layer}"]')).to_be_visible()
    lh = Lakehouse(server.warehouse)
    row = page.locator(
        "#table-list tr", has=page.locator("a", has_text=re.compile(r"^silver\.users$"))
    )
    expect(row).to_have_count(1)
    rows = lh.catalog.get("silver.users").row_count
    expect(row.locator("td.num").first).to_have_text(f"{rows:,}")
    shot(page, "01_tables")

    page.fill("#table-search", "segments")
    expect(page.locator("#table-list a", has_text="gold.user_segments")).to_be_visible()
    expect(page.locator("#table-list a", has_text="silver.users")).to_have_count(0)
    assert "q=segments" in page.url
    shot(page, "02_tables_search")


def test_table_page_shows_schema_preview_history_and_quality(server, admin):
    page = admin
    lh = Lakehouse(server.warehouse)
    info = lh.catalog.get("silver.users")
    go(page, server, "#/tables/silver.users")
    expect(page.locator("h1")).to_contain_text("silver.users")
    schema = page.locator("#schema-table tbody tr")
    expect(schema).to_have_count(len(info.columns))
    first = schema.nth(0)
    expect(first).to_contain_text("user_id")
    expect(first).to_contain_text("long")
    expect(first.locator(".badge", has_text="pii")).to_be_visible()
    expect(first.locator(".badge.masked")).to_have_count(0)  # an admin sees PII
    shot(page, "03_table_schema")

    page.click('[data-tab="preview"]')
    header = page.locator("#tab-preview thead th")
    expect(header).to_have_count(len(info.columns))
    expect(header.first).to_have_text("user_id")
    body = page.locator("#tab-preview tbody tr")
    expect(body).to_have_count(min(100, info.row_count))
    assert not PSEUDONYM.match(body.first.locator("td").first.inner_text())
    shot(page, "04_table_preview")

    page.click('[data-tab="history"]')
    versions = page.locator("#history-table tbody tr")
    expect(versions).to_have_count(lh.table("silver.users").version + 1)
    shot(page, "05_table_history")

    page.click('[data-tab="quality"]')
    expect(page.locator("#quality-score")).to_contain_text("%")
    expect(page.locator("#quality-table")).to_contain_text("unique_user")
    shot(page, "06_table_quality")

    # A column that inherits pii from what it is computed from says so, and where from.
    go(page, server, "#/tables/silver.app_events")
    user_id = page.locator("#schema-table tbody tr", has_text="user_id").first
    inherited = user_id.locator(".badge.inherited")
    expect(inherited).to_have_text("pii (inherited)")
    expect(inherited).to_have_attribute("title", "inherited from bronze.app_events.user_id")

    # A table no expectation checks: "no results yet", not an error.
    go(page, server, "#/tables/gold.daily_active_users/quality")
    expect(page.locator("#quality-empty")).to_contain_text("No quality results yet")
    expect(page.locator(".error-box")).to_have_count(0)
    shot(page, "07_table_quality_none")


def test_quality_shows_warnings_and_what_ingestion_quarantined(server, admin):
    page = admin
    lh = Lakehouse(server.warehouse)
    # A warn check that found rows is a warning (kept rows, counted), not a failure.
    go(page, server, "#/tables/silver.app_events/quality")
    row = page.locator("#quality-table tbody tr", has_text="sane_amount")
    expect(row.locator(".badge.warn")).to_have_text("warning")
    expect(page.locator("#quality-table .badge.bad")).to_have_count(0)
    expect(page.locator(".quality-head")).to_contain_text("3 of 4 passed, 1 with warnings")
    shot(page, "08_quality_warning")

    # The bronze table: its header's description and tags, and the lines ingestion could
    # not read as the result of a check, with a sample of the reasons.
    quarantined = lh.table("bronze.app_events_quarantine").count()
    assert quarantined > 0
    go(page, server, "#/tables/bronze.app_events")
    expect(page.locator(".lead")).to_have_text("Raw app events (JSON lines) as the apps sent them")
    expect(page.locator(".facts .badge.tag", has_text="raw")).to_be_visible()
    page.click('[data-tab="quality"]')
    row = page.locator("#quality-table tbody tr", has_text="readable_record")
    expect(row.locator(".badge.bad")).to_have_text("failed")
    expect(row.locator("td.num").first).to_have_text(f"{quarantined:,}")
    row.locator(".check-sample summary").click()
    expect(row.locator(".check-sample li").first).to_contain_text("reason: line ")
    shot(page, "09_quality_ingestion")

    # The overview of every table: the worst status of each, warnings counted.
    go(page, server, "#/health")
    overview = page.locator("#quality-overview tbody tr")
    silver = overview.filter(has=page.locator("a", has_text=re.compile(r"^silver\.app_events$")))
    expect(silver.locator(".badge")).to_have_text("warning")
    bronze = overview.filter(has=page.locator("a", has_text=re.compile(r"^bronze\.app_events$")))
    expect(bronze.locator(".badge")).to_have_text("failed")
    # The API says the same.
    summary = page.request.get(f"{server.base}/quality").json()["tables"]
    by_table = {r["table"]: r for r in summary}
    assert by_table["silver.app_events"]["status"] == "warning"
    assert by_table["silver.app_events"]["warnings"] == 1
    assert by_table["bronze.app_events"]["status"] == "failed"
    detail = page.request.get(f"{server.base}/tables/silver.app_events/quality").json()
    sane = next(r for r in detail["results"] if r["expectation"] == "sane_amount")
    assert (sane["status"], sane["passed"]) == ("warning", False) and sane["failed_rows"] > 0
    shot(page, "10_quality_overview")


def test_sql_editor_shows_the_result_as_a_table_and_a_chart(server, admin):
    page = admin
    sql = (
        "SELECT segment, count(*) AS users, round(avg(engagement_score), 1) AS score "
        "FROM gold.user_segments GROUP BY segment ORDER BY segment"
    )
    expected = Lakehouse(server.warehouse).sql(sql).to_dicts()
    go(page, server, "#/sql")
    set_sql(page, sql)
    page.press("#sql-editor", "Control+Enter")
    expect(page.locator("#row-count")).to_have_text(f"{len(expected)} rows")
    cells = page.locator("#result-table tbody tr")
    expect(cells).to_have_count(len(expected))
    for i, row in enumerate(expected):
        tds = cells.nth(i).locator("td")
        expect(tds.nth(0)).to_have_text(row["segment"])
        expect(tds.nth(1)).to_have_text(f"{row['users']:,}")
        assert "num" in (tds.nth(1).get_attribute("class") or "")  # numbers right-aligned
    expect(page.locator("#result-meta")).to_contain_text("ms")
    expect(page.locator("#result-meta .badge", has_text="cached")).to_have_count(0)
    shot(page, "08_sql_result")
    # The same statement again comes from the result cache, and says so.
    page.press("#sql-editor", "Control+Enter")
    expect(page.locator("#result-meta .badge", has_text="cached")).to_be_visible()

    page.click('[data-view="chart"]')
    canvas = page.locator("#chart-canvas canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100, box
    option = page.evaluate(
        "() => { const o = echarts.getInstanceByDom(document.getElementById('chart-canvas'))"
        ".getOption(); return {x: o.xAxis[0].data, series: o.series.map(s => "
        "({name: s.name, type: s.type, data: s.data}))}; }"
    )
    assert option["x"] == [r["segment"] for r in expected]
    assert [s["name"] for s in option["series"]] == ["users", "score"]
    assert option["series"][0]["type"] == "bar"
    assert option["series"][0]["data"] == [r["users"] for r in expected]
    shot(page, "09_sql_chart_bar")
    page.select_option("#chart-type", "line")
    kinds = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('chart-canvas'))"
        ".getOption().series.map(s => s.type)"
    )
    assert kinds == ["line", "line"]
    shot(page, "10_sql_chart_line")

    with page.expect_download() as download:
        page.click('[data-format="csv"]')
    assert download.value.suggested_filename == "result.csv"
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["segment"], int(r["users"])) for r in rows] == [
        (r["segment"], r["users"]) for r in expected
    ]
    for fmt, suffix in (("parquet", "parquet"), ("arrow", "arrow")):
        with page.expect_download() as download:
            page.click(f'[data-format="{fmt}"]')
        assert download.value.suggested_filename.endswith(suffix)
        assert Path(download.value.path()).stat().st_size > 0

    # More rows than the limit: the first ones, marked truncated.
    page.select_option("#sql-limit", "100")
    set_sql(page, "SELECT * FROM silver.users")
    page.click("#run-sql")
    expect(page.locator("#row-count")).to_have_text("100 rows")
    expect(page.locator("#result-meta .badge", has_text="truncated")).to_be_visible()

    # A refused statement: the API's message and hint, no stack trace.
    set_sql(page, "DELETE FROM gold.user_segments")
    page.click("#run-sql")
    error = page.locator("#sql-output .error-box")
    expect(error).to_be_visible()
    expect(error).to_contain_text("400")
    assert "Traceback" not in error.inner_text()
    shot(page, "11_sql_error")
    assert Lakehouse(server.warehouse).table("gold.user_segments").count() > 0


def test_query_this_table_opens_the_editor(server, admin):
    page = admin
    go(page, server, "#/tables/silver.users")
    page.click("#query-table")
    expect(page).to_have_url(re.compile(r"#/sql\?sql="))
    expect(page.locator("#sql-editor")).to_have_text("SELECT * FROM silver.users LIMIT 100")
    rows = min(100, Lakehouse(server.warehouse).catalog.get("silver.users").row_count)
    expect(page.locator("#row-count")).to_have_text(f"{rows} rows")
    shot(page, "12_query_this_table")


def test_lineage_graph_shows_upstream_and_opens_a_table(server, admin):
    page = admin
    go(page, server, "#/lineage/gold.user_segments")
    canvas = page.locator("#lineage-graph canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100, box
    upstream = page.locator("#upstream-list")
    for name in ("silver.users", "silver.app_events", "bronze.app_events"):
        expect(upstream.locator(f'[data-node="{name}"]')).to_be_visible()
    nodes = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('lineage-graph')).getOption()"
        ".series.find(s => s.type === 'graph').data.map(n => ({name: n.name, x: n.value[0], "
        "color: n.itemStyle.color}))"
    )
    by_name = {n["name"]: n for n in nodes}
    assert {"gold.user_segments", "silver.users", "bronze.app_events"} <= set(by_name)
    # Left to right: bronze, then silver, then the table itself.
    assert by_name["bronze.app_events"]["x"] < by_name["silver.users"]["x"]
    assert by_name["silver.users"]["x"] < by_name["gold.user_segments"]["x"]
    # The selected table is filled with its layer's colour, the others are tints.
    assert by_name["gold.user_segments"]["color"] != by_name["silver.users"]["color"]
    shot(page, "13_lineage")

    # Clicking a node opens that table.
    x, y = page.evaluate(
        "() => { const el = document.getElementById('lineage-graph');"
        " const c = echarts.getInstanceByDom(el);"
        " const n = c.getOption().series.find(s => s.type === 'graph').data"
        ".find(d => d.name === 'silver.users');"
        " return c.convertToPixel({gridIndex: 0}, n.value); }"
    )
    origin = canvas.bounding_box()
    page.mouse.click(origin["x"] + x, origin["y"] + y)
    expect(page).to_have_url(re.compile(r"#/tables/silver\.users$"))
    expect(page.locator("h1")).to_contain_text("silver.users")


def test_runs_page_lists_the_demo_run_and_its_datasets(server, admin):
    page = admin
    lh = Lakehouse(server.warehouse)
    run = lh.sql("SELECT * FROM system.pipeline_runs ORDER BY started_at LIMIT 1").to_dicts()[0]
    figures = lh.sql(
        f"SELECT * FROM system.dataset_runs WHERE run_id = '{run['run_id']}' "
        "AND dataset = 'silver.users'"
    ).to_dicts()[0]
    go(page, server, "#/runs")
    pipelines = page.locator("#pipelines-table")
    expect(pipelines).to_contain_text("demo")
    expect(pipelines.locator('button.run-pipeline[data-pipeline="demo"]')).to_be_visible()
    link = page.locator("#runs-table a", has_text=run["run_id"])
    expect(link).to_be_visible()
    row = page.locator("#runs-table tr", has=page.locator("a", has_text=run["run_id"]))
    expect(row).to_contain_text("succeeded")
    shot(page, "14_runs")

    link.click()
    expect(page).to_have_url(re.compile(re.escape(f"#/runs/{run['run_id']}") + "$"))
    row = page.locator("#datasets-table tr", has=page.locator("a", has_text="silver.users"))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(4)).to_have_text(f"{figures['rows_written']:,}")
    # Rows left out by key are shown: the demo's replayed app events.
    app_events = lh.sql(
        f"SELECT rows_deduplicated FROM system.dataset_runs WHERE run_id = '{run['run_id']}' "
        "AND dataset = 'silver.app_events'"
    ).scalar()
    assert app_events > 0
    row = page.locator("#datasets-table tr", has=page.locator("a", has_text="silver.app_events"))
    expect(page.locator("#datasets-table th").nth(7)).to_have_text("Deduplicated")
    expect(row.locator("td").nth(7)).to_have_text(f"{app_events:,}")
    expect(page.locator("#datasets-table tbody tr")).to_have_count(run["datasets"] + 1)
    shot(page, "15_run")


def test_health_page(server, admin):
    page = admin
    go(page, server, "#/health")
    expect(page.locator("#health-status")).to_have_text("ok")
    layers = page.locator("#layers-table tbody tr")
    expect(layers.first).to_be_visible()
    expect(page.locator("#layers-table")).to_contain_text("gold")
    box = page.locator("#layer-chart canvas").first.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    shot(page, "16_health")


def test_without_a_valid_token_the_page_asks_to_log_in(server, browser):
    errors: list[str] = []
    page = new_page(browser, errors)
    page.goto(f"{server.base}/")
    login = page.locator("#login-needed")
    expect(login).to_contain_text("lakehouse serve")
    expect(page.locator("#whoami")).to_be_empty()
    shot(page, "17_login_needed")

    page.goto(f"{server.base}/?token=lh_not_a_token")
    expect(login).to_contain_text("not accepted")
    expect(login).to_contain_text("lakehouse serve")
    assert "not_a_token" not in page.url
    shot(page, "18_login_wrong_token")
    page.context.close()
    assert not errors, errors


def test_a_viewer_sees_pii_as_pseudonyms(server, browser):
    errors: list[str] = []
    page = new_page(browser, errors)
    page.goto(f"{server.base}/?token={server.viewer_token}")
    expect(page.locator("#whoami")).to_contain_text("viewer")
    expect(page.locator("#whoami .principal")).to_have_text("v")
    # A viewer reads gold and realtime only.
    expect(page.locator("#table-list a", has_text="gold.user_segments")).to_be_visible()
    expect(page.locator("#table-list a", has_text="silver.users")).to_have_count(0)

    go(page, server, "#/tables/gold.user_segments")
    user_id = page.locator("#schema-table tbody tr", has_text="user_id").first
    expect(user_id.locator(".badge.masked")).to_be_visible()
    shot(page, "19_viewer_schema")

    page.click('[data-tab="preview"]')
    header = page.locator("#tab-preview thead th")
    expect(header.first).to_have_text("user_id")
    cells = page.locator("#tab-preview tbody tr td:first-child")
    expect(cells.first).to_have_text(PSEUDONYM)
    values = cells.all_inner_texts()
    assert values and all(PSEUDONYM.match(v) for v in values), values[:5]
    assert len(set(values)) == len(values)  # a key stays a key: one pseudonym per user
    shot(page, "20_viewer_preview_masked")

    # Pipelines and runs are operations data (the system layer): not for viewers.
    go(page, server, "#/runs")
    expect(page.get_by_text("may not see pipelines and their runs").first).to_be_visible()
    expect(page.locator("button.run-pipeline")).to_have_count(0)
    page.context.close()
    assert not errors, errors


def test_run_button_starts_a_run_and_follows_it(server, admin):
    page = admin
    go(page, server, "#/runs")
    page.click('button.run-pipeline[data-pipeline="demo"]')
    expect(page).to_have_url(re.compile(r"#/runs/[^/]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=180_000)
    expect(page.locator("#datasets-table")).to_contain_text("gold.user_segments")
    shot(page, "21_run_started")
    go(page, server, "#/runs")
    expect(page.locator("#runs-table a", has_text=run_id)).to_be_visible()


def test_values_are_shown_as_text_never_as_markup(server, admin):
    page = admin
    markup = '<img src=x onerror="document.body.dataset.hacked=1">'
    go(page, server, "#/sql")
    set_sql(
        page,
        f"SELECT '{markup}' AS \"<u>label</u>\", 1 AS n UNION ALL SELECT 'b', 2 ORDER BY n",
    )
    page.click("#run-sql")
    expect(page.locator("#result-table tbody tr")).to_have_count(2)
    expect(page.locator("#result-table thead th .col-name").first).to_have_text("<u>label</u>")
    expect(page.locator("#result-table tbody td").first).to_have_text(markup)
    page.click('[data-view="chart"]')
    canvas = page.locator("#chart-canvas canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    tooltip = page.locator("#chart-canvas div", has_text="n:").last
    expect(tooltip).to_contain_text(markup)
    shot(page, "22_markup_as_text")
    assert page.locator("#app img, #app u").count() == 0
    assert page.evaluate("() => document.body.dataset.hacked") is None
