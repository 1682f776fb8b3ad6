"""The Health page's report and alerts in a real browser (Debian's Chromium, driven by
Playwright) against a real `lakehouse serve` over a warehouse with real runs: a failed
pipeline, a failing check, alerts evaluated and delivered to a loopback receiver."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from lakehouse.ops import alerts
from tests.helpers.browser import chromium, new_page, shot
from tests.helpers.health_site import Site, build_site
from tests.helpers.server import start_server

expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    built = build_site(tmp_path_factory.mktemp("ui-health"))
    try:
        yield built
    finally:
        built.receiver.stop()


def test_the_health_page_shows_states_reasons_and_alerts(site):
    evaluated = alerts.evaluate(site.lakehouse())
    assert {(e["rule"], e["subject"]) for e in evaluated.fired} == {
        ("quality", "silver.orders"),
        ("failed", "pipeline:broken"),
    }
    server = start_server(
        site.warehouse, args=["--workers", "1"], env={"LAKEHOUSE_CONFIG": str(site.config)}
    )
    try:
        with chromium() as browser:
            errors: list[str] = []
            page = new_page(browser, errors)
            page.goto(server.login_url)
            expect(page.locator("#whoami")).to_contain_text("admin")
            page.goto(f"{server.base}/#/health")
            expect(page.locator("#health-status")).to_have_text("ok")  # the server is up
            expect(page.locator("#report-state .badge")).to_have_text("unhealthy")
            expect(page.locator("#report-reasons")).to_contain_text(
                "pipeline broken: its latest run"
            )
            silver = page.locator('.health-layer[data-layer="silver"]')
            expect(silver.locator("h3 .badge").nth(1)).to_have_text("degraded")
            row = silver.locator("tbody tr", has_text="silver.orders")
            expect(row.locator(".badge.warn").first).to_have_text("degraded")
            expect(row.locator(".reasons li")).to_have_text("100 % of its checks failed")
            gold = page.locator('.health-layer[data-layer="gold"]')
            expect(gold.locator("h3 .badge").nth(1)).to_have_text("healthy")
            broken = page.locator("#health-pipelines tbody tr", has_text="broken")
            expect(broken.locator(".badge").first).to_have_text("unhealthy")
            firing = page.locator("#alerts-firing tbody tr")
            expect(firing).to_have_count(2)
            expect(firing.filter(has_text="pipeline:broken").locator(".badge.bad")).to_have_text(
                "critical"
            )
            history = page.locator("#alerts-history tbody tr")
            expect(history).to_have_count(2)
            expect(
                history.first.locator(".badge", has_text=re.compile("^delivered$"))
            ).to_be_visible()
            shot(page, "health_report")
            page.context.close()
            assert not errors, errors
    finally:
        server.stop()
