"""The Dashboards page in a real browser (Debian's Chromium, driven by Playwright) against
a real `lakehouse serve` over the demo warehouse, serving the repository's dashboards/
folder. The figures on the page are checked against the same figures computed with plain
SQL. Every step leaves a screenshot in tests/artifacts/ui/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from lakehouse import Lakehouse
from tests.helpers.browser import chromium, new_page, shot
from tests.helpers.server import Server, start_server

ROOT = Path(__file__).resolve().parents[1]
GREEN, ORANGE, RED = "rgb(0, 128, 0)", "rgb(255, 165, 0)", "rgb(255, 0, 0)"

expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def server(demo_warehouse: Path) -> Iterator[Server]:
    srv = start_server(
        demo_warehouse,
        args=["--workers", "1", "--dashboards", str(ROOT / "dashboards")],
        cwd=ROOT,
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def login(server: Server, browser: Browser) -> Iterator[Callable[..., Page]]:
    """Pages logged in through the login URL the server printed; with ``clock``, the
    page's timers are Playwright's (they run on their own until moved on)."""
    opened: list[tuple[Page, list[str]]] = []

    def open_page(clock: bool = False) -> Page:
        errors: list[str] = []
        page = new_page(browser, errors)
        if clock:
            page.clock.install()
        page.goto(server.login_url)
        expect(page.locator("#whoami")).to_contain_text("admin")
        opened.append((page, errors))
        return page

    yield open_page
    for page, errors in opened:
        page.context.close()
        assert not errors, errors


def sql_value(warehouse: Path, sql: str) -> Any:
    return Lakehouse(warehouse).sql(sql).scalar()


def as_number(n: int | float) -> str:
    """The page's number format: grouped thousands, at most two decimals."""
    return f"{n:,}" if float(n).is_integer() else f"{round(n, 2):,}"


def as_percent(share: float) -> str:
    """The page's percent of a 0-1 share: one decimal, rounded half away from zero from
    the shortest decimal that is the number (as the browser's Intl does)."""
    figure = Decimal(repr(share * 100)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{figure:,} %"


def panel(page: Page, panel_id: str):
    return page.locator(f'.panel[data-panel="{panel_id}"]')


def chart_option(page: Page, panel_id: str) -> dict[str, Any]:
    return page.evaluate(
        "(id) => { const el = document.querySelector(`.panel[data-panel='${id}'] .panel-chart`);"
        " const o = echarts.getInstanceByDom(el).getOption();"
        " return {series: o.series.map(s => ({name: s.name, type: s.type, n: s.data.length})),"
        " x: (o.xAxis || [])[0] || null}; }",
        panel_id,
    )


def definition(page: Page, server: Server) -> dict[str, Any]:
    answer = page.request.get(f"{server.base}/dashboards/platform")
    assert answer.ok, answer.text()
    return answer.json()


def test_the_list_shows_the_platform_dashboard(server, login):
    page = login()
    page.click('a[data-nav="dashboards"]')
    expect(page.locator('a[data-nav="dashboards"]')).to_have_attribute("aria-current", "page")
    row = page.locator("#dashboard-list tbody tr", has_text="Platform overview")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text("platform.yaml")
    expect(cells.nth(2)).to_have_text("8")
    expect(cells.nth(3)).to_have_text("every 10 s")
    expect(cells.nth(4).locator(".badge.good")).to_have_text("ok")
    shot(page, "dashboards_01_list")
    row.get_by_role("link", name="Platform overview").click()
    expect(page.locator("#dash-title")).to_have_text("Platform overview")
    assert page.url.endswith("#/dashboards/platform")


def test_every_gold_panel_shows_its_figure_and_a_missing_table_only_its_own_error(
    server, login, demo_warehouse
):
    page = login()
    page.goto(f"{server.base}/#/dashboards/platform")
    expect(page.locator("#dash-title")).to_have_text("Platform overview")
    # The dashboard's own time range until another is chosen.
    expect(page.get_by_label("Time range", exact=True)).to_have_value("30d")
    expect(page.get_by_label("Page", exact=True)).to_have_value("all")
    spec = definition(page, server)
    gold = [p for p in spec["panels"] if "gold." in p["sql"]]
    live = [p for p in spec["panels"] if "realtime." in p["sql"]]
    assert len(gold) == 6 and len(live) == 2
    for p in gold:
        box = panel(page, p["id"])
        expect(box).to_have_attribute("data-state", "ok")
        expect(box.locator(".panel-title")).to_have_text(p["title"])
        expect(box.locator(".badge.engine")).to_have_text(re.compile(r"^(serving|lakehouse)$"))
        expect(box.locator(".elapsed")).to_have_text(re.compile(r"^[\d,]+ ms$"))
        expect(box.locator(".error-box")).to_have_count(0)
    # The stream has not run: its views do not exist, and each such panel says so inside
    # its own box, with the hint.
    for p in live:
        box = panel(page, p["id"])
        expect(box).to_have_attribute("data-state", "error")
        error = box.locator(".error-box")
        expect(error).to_contain_text("does not exist")
        expect(error.locator(".error-hint")).to_contain_text("lakehouse demo --stream")
    shot(page, "dashboards_02_platform")

    # All time: the figures are those of the whole tables, up to today.
    page.get_by_label("Time range", exact=True).select_option(label="All time")
    expect(page).to_have_url(re.compile(r"#/dashboards/platform\?range=all&page=all$"))
    wh = demo_warehouse
    today = "day <= current_date"

    def latest(table: str, column: str) -> Any:  # the column on the latest day
        return sql_value(
            wh, f"SELECT {column} FROM {table} WHERE {today} ORDER BY day DESC LIMIT 1"
        )

    def total(table: str, column: str) -> Any:
        return sql_value(wh, f"SELECT coalesce(sum({column}), 0) FROM {table} WHERE {today}")

    users = latest("gold.daily_active_users", "active_users")
    rate = latest("gold.conversion_rate_daily", "conversion_rate")
    purchases = total("gold.purchases_per_page_daily", "purchases")
    events = total("gold.daily_summary", "events")
    assert users > 0 and purchases > 0 and events > 0
    expect(panel(page, "daily-active-users").locator(".stat-value")).to_have_text(
        f"{as_number(users)} users"
    )
    figure = panel(page, "conversion-rate").locator(".stat-value")
    expect(figure).to_have_text(as_percent(rate))
    # Coloured by the highest threshold at or below it.
    expect(figure).to_have_css("color", GREEN if rate >= 0.1 else ORANGE if rate >= 0.05 else RED)
    expect(panel(page, "purchases").locator(".stat-value")).to_have_text(as_number(purchases))
    expect(panel(page, "events").locator(".stat-value")).to_have_text(as_number(events))

    # The charts: drawn, with the rows of their tables.
    pages = sql_value(
        wh, f"SELECT count(DISTINCT page) FROM gold.purchases_per_page_daily WHERE {today}"
    )
    days = sql_value(wh, f"SELECT count(*) FROM gold.daily_active_users WHERE {today}")
    top = panel(page, "top-pages")
    expect(top.locator(".panel-chart canvas")).to_have_count(1)
    option = chart_option(page, "top-pages")
    assert option["series"] == [{"name": "purchases", "type": "bar", "n": min(pages, 10)}]
    assert option["x"]["type"] == "category"
    option = chart_option(page, "active-users-per-day")
    assert option["series"] == [{"name": "active_users", "type": "line", "n": days}]
    assert option["x"]["type"] == "time"  # a date column: a time axis
    for p in gold:
        if p["kind"] != "stat":
            box = panel(page, p["id"]).locator(".panel-chart canvas").first.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 200, (p["id"], box)
    shot(page, "dashboards_03_all_time")


def test_a_variable_changes_the_address_and_the_panels(server, login, demo_warehouse):
    page = login()
    page.goto(f"{server.base}/#/dashboards/platform?range=all")
    expect(panel(page, "purchases")).to_have_attribute("data-state", "ok")
    first = sql_value(
        demo_warehouse, "SELECT min(page) FROM gold.purchases_per_page_daily WHERE page IS NOT NULL"
    )
    on_page = sql_value(
        demo_warehouse,
        "SELECT coalesce(sum(purchases), 0) FROM gold.purchases_per_page_daily"
        f" WHERE day <= current_date AND page = '{first}'",
    )
    with page.expect_response(
        lambda r: "/panels/purchases?" in r.url and "page=" + first.replace("/", "%2F") in r.url
    ):
        page.get_by_label("Page", exact=True).select_option(first)
    expect(page).to_have_url(
        re.compile(r"\?range=all&page=" + re.escape(first.replace("/", "%2F")))
    )
    expect(panel(page, "purchases").locator(".stat-value")).to_have_text(as_number(on_page))
    expect(panel(page, "top-pages")).to_have_attribute("data-state", "ok")
    page.wait_for_function(
        "(p) => { const el = document.querySelector(\"[data-panel='top-pages'] .panel-chart\");"
        " const x = echarts.getInstanceByDom(el).getOption().xAxis[0];"
        " return x.data.length === 1 && x.data[0] === p; }",
        arg=first,
    )
    shot(page, "dashboards_04_variable")

    # The address is the view: opened elsewhere, it shows the same.
    shared = page.url
    other = login()
    other.goto(shared)
    expect(other.get_by_label("Page", exact=True)).to_have_value(first)
    expect(other.get_by_label("Time range", exact=True)).to_have_value("all")
    expect(panel(other, "purchases").locator(".stat-value")).to_have_text(as_number(on_page))

    # A value the dashboard does not allow: each panel says so inside its box (the value
    # as text), and choosing an allowed one mends them.
    other.goto(f"{server.base}/#/dashboards/platform?range=all&page=%3Cb%3Enowhere")
    box = panel(other, "purchases")
    expect(box).to_have_attribute("data-state", "error")
    expect(box.locator(".error-box")).to_contain_text("'<b>nowhere' is not one of its options")
    expect(other.locator(".panel .error-box b")).to_have_count(0)
    expect(other.get_by_label("Page", exact=True)).to_have_value("<b>nowhere")
    shot(other, "dashboards_05_bad_value")
    other.get_by_label("Page", exact=True).select_option("all")
    expect(box).to_have_attribute("data-state", "ok")


def test_auto_refresh_updates_in_place_pauses_and_stops_with_the_page(server, login):
    page = login(clock=True)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if "/panels/" in r.url else None)
    page.goto(f"{server.base}/#/dashboards/platform?range=all")
    updated = page.locator("#dash-updated-at")
    expect(updated).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(page.locator(".panel.is-loading")).to_have_count(0)
    chart_id = (
        "() => echarts.getInstanceByDom("
        "document.querySelector(\"[data-panel='top-pages'] .panel-chart\")).id"
    )
    before = page.evaluate(chart_id)
    first = updated.get_attribute("datetime")
    count = len(requested)
    assert count == 8

    # The file says every 10 s: the panels are fetched again, the chart is the same one.
    with page.expect_response(lambda r: "/panels/" in r.url):
        page.clock.fast_forward(11_000)
    expect(updated).not_to_have_attribute("datetime", first or "")
    expect(page.locator(".panel.is-loading")).to_have_count(0)
    assert len(requested) == 2 * count
    assert page.evaluate(chart_id) == before
    expect(panel(page, "top-pages")).to_have_attribute("data-state", "ok")

    # Paused: time passes, nothing is fetched (a call made after it answers first).
    page.get_by_role("button", name="Pause").focus()
    page.keyboard.press("Enter")
    resume = page.get_by_role("button", name="Resume")
    expect(resume).to_have_attribute("aria-pressed", "true")
    page.clock.fast_forward(60_000)
    page.evaluate("() => fetch('/health').then(r => r.status)")
    assert len(requested) == 2 * count
    shot(page, "dashboards_06_paused")
    resume.click()
    with page.expect_response(lambda r: "/panels/" in r.url):
        page.clock.fast_forward(11_000)
    expect(page.locator(".panel.is-loading")).to_have_count(0)
    assert len(requested) == 3 * count

    # Another page: the dashboard's timer is gone with it.
    page.click('a[data-nav="tables"]')
    expect(page.locator("#table-list")).to_be_visible()
    page.clock.fast_forward(60_000)
    page.evaluate("() => fetch('/health').then(r => r.status)")
    assert len(requested) == 3 * count
