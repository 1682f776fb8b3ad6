"""The platform dashboard live, end to end: a small demo warehouse, a real broker, a real
`lakehouse serve --workers 2` (its main process owning the serving store), a real
`lakehouse stream --realtime` and Debian's Chromium. The live panels appear once the
stream has run, read the serving store, and follow new events without a reload; the gold
figures equal the same figures computed with plain DuckDB over the demo's landing files.
Every step leaves a screenshot in tests/artifacts/ui/."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from lakehouse.demo.live_events import UserEvents
from tests.helpers.browser import chromium, new_page, shot
from tests.helpers.kafka import kafka, new_topic
from tests.helpers.live import (
    ROOT,
    build_demo,
    child,
    send_user_events,
    stream_command,
    wait_for,
)
from tests.helpers.server import Server, start_server

expect.set_options(timeout=30_000)


@dataclass
class Live:
    warehouse: Path
    bootstrap: str
    topic: str
    server: Server
    events: UserEvents


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The demo warehouse (300 app events), served with the repository's dashboards while
    a stream of user events lands in it; every process is stopped at the end."""
    root = tmp_path_factory.mktemp("live")
    warehouse = root / "warehouse"
    build_demo(warehouse)
    with kafka(root / "broker") as bootstrap:
        topic = new_topic(bootstrap)
        server = start_server(
            warehouse,
            args=["--workers", "2", "--dashboards", str(ROOT / "dashboards")],
            cwd=ROOT,
        )
        try:
            with child(stream_command(warehouse, bootstrap, topic), root / "stream.log"):
                yield Live(warehouse, bootstrap, topic, server, UserEvents(late_share=0.0))
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def panel(page: Page, panel_id: str):
    return page.locator(f'.panel[data-panel="{panel_id}"]')


# Per series of a chart with a time axis, the sum of its points; for a category axis,
# per category, the value of the one series. None until the panel has a chart.
CHART_FIGURES = """(id) => {
  const el = document.querySelector(`.panel[data-panel='${id}'] .panel-chart`);
  const chart = el && echarts.getInstanceByDom(el);
  if (!chart) return null;
  const option = chart.getOption();
  const x = option.xAxis[0];
  const out = {};
  if (x.type === "category") {
    x.data.forEach((label, i) => { out[label] = option.series[0].data[i]; });
  } else {
    for (const s of option.series)
      out[s.name] = s.data.reduce((total, point) => total + Number(point[1] ?? 0), 0);
  }
  return out;
}"""

SAME_FIGURES = (
    "([id, want]) => { const got = (" + CHART_FIGURES + ")(id); if (!got) return false;"
    " const keys = Object.keys(want);"
    " return Object.keys(got).length === keys.length && keys.every(k => got[k] === want[k]); }"
)

CHART_ID = (
    "(id) => echarts.getInstanceByDom("
    "document.querySelector(`.panel[data-panel='${id}'] .panel-chart`)).id"
)


def wait_for_figures(page: Page, panel_id: str, want: dict[str, int]) -> None:
    """Until the panel's chart on the page shows ``want`` (the page refreshes itself)."""
    try:
        page.wait_for_function(SAME_FIGURES, arg=[panel_id, want], timeout=45_000)
    except Exception as exc:
        got = page.evaluate(CHART_FIGURES, panel_id)
        raise AssertionError(f"{panel_id} shows {got}, not {want}") from exc


TABLES = {
    "events-per-minute": "realtime.events_per_minute",
    "logins-per-source": "realtime.logins_per_source",
}


def served(client: httpx.Client, panel_id: str) -> dict[str, Any] | None:
    """The panel's answer (GET /dashboards/platform/panels/ID) if the serving store gave
    it, else None."""
    answer = client.get(f"/dashboards/platform/panels/{panel_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body if body["engine"] == "serving" else None


def answer_figures(body: dict[str, Any]) -> dict[str, int]:
    """A live panel's answer as its chart shows it: per series (or category), the sum."""
    columns = body["columns"]
    key = columns.index("event_type" if "event_type" in columns else "source")
    value = columns.index("events" if "events" in columns else "logins")
    out: Counter[str] = Counter()
    for row in body["rows"]:
        out[row[key]] += row[value]
    return dict(out)


def live_figures(events: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """What the live panels show for these events: events per type, logins per source."""
    per_type = Counter(e["event_type"] for e in events)
    logins = Counter(e["source"] for e in events if e["event_type"] == "login")
    return dict(per_type), dict(logins)


def as_number(n: float) -> str:
    """The page's number format: grouped thousands, at most two decimals."""
    return f"{n:,}" if float(n).is_integer() else f"{round(n, 2):,}"


def as_percent(share: float) -> str:
    """The page's percent of a 0-1 share: one decimal, rounded half away from zero from
    the shortest decimal that is the number (as the browser's Intl does)."""
    figure = Decimal(repr(share * 100)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{figure:,} %"


def landing_figures(warehouse: Path) -> dict[str, Any]:
    """The gold stat figures of the last 30 days, from the demo's landing files with plain
    DuckDB: the silver rules (a row needs an event_id and an event_time, one row per
    event_id, trimmed and lower-cased values, validity: a user, a known event type, no
    negative amount, an amount on a purchase) and the gold aggregates, by UTC day."""
    files = (warehouse / "landing" / "app_events" / "*.jsonl").as_posix()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"""
            CREATE TEMP VIEW valid AS
            WITH raw AS (
                SELECT * FROM read_json('{files}', format = 'newline_delimited',
                    ignore_errors = true,
                    columns = {{event_id: 'VARCHAR', user_id: 'BIGINT', event_type: 'VARCHAR',
                               app_type: 'VARCHAR', page: 'VARCHAR', event_time: 'VARCHAR',
                               amount: 'DOUBLE'}})
            ),
            one AS (
                SELECT trim(event_id) AS event_id, user_id,
                       lower(trim(event_type)) AS event_type, amount,
                       CAST(CAST(event_time AS TIMESTAMPTZ) AS DATE) AS day
                FROM raw
                WHERE event_id IS NOT NULL AND event_time IS NOT NULL
                QUALIFY row_number() OVER (PARTITION BY trim(event_id)) = 1
            )
            SELECT * FROM one
            WHERE user_id IS NOT NULL
              AND event_type IN ('app_open', 'page_view', 'click', 'scroll', 'share',
                                 'purchase')
              AND NOT coalesce(amount < 0, false)
              AND NOT (event_type = 'purchase' AND amount IS NULL)
              AND day BETWEEN CAST(now() - INTERVAL 30 DAY AS DATE) AND CAST(now() AS DATE)
            """
        )
        latest = con.execute(
            """SELECT count(DISTINCT user_id),
                      round(count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase')
                            / count(DISTINCT user_id), 4)
               FROM valid GROUP BY day ORDER BY day DESC LIMIT 1"""
        ).fetchone()
        totals = con.execute(
            "SELECT count(*) FILTER (WHERE event_type = 'purchase'), count(*) FROM valid"
        ).fetchone()
        replays = con.execute(
            f"SELECT count(*) - count(DISTINCT event_id) FROM read_json('{files}')"
        ).fetchone()
    finally:
        con.close()
    assert latest is not None and totals is not None and replays is not None
    return {
        "users": latest[0],
        "rate": latest[1],
        "purchases": totals[0],
        "events": totals[1],
        "replays": replays[0],
    }


def test_live_panels_follow_the_stream_and_gold_equals_the_landing_files(
    live: Live, browser: Browser
) -> None:
    errors: list[str] = []
    page = new_page(browser, errors)
    try:
        server = live.server
        page.goto(server.login_url)
        expect(page.locator("#whoami")).to_contain_text("admin")
        # Refreshed every 5 s (one of the page's choices) rather than the file's 10 s.
        page.goto(f"{server.base}/#/dashboards/platform?refresh=5")
        expect(page.locator("#dash-title")).to_have_text("Platform overview")
        address = page.url
        page.evaluate("() => { window.__sameDocument = 'kept'; }")
        live_ids = ("events-per-minute", "logins-per-source")
        # Nothing streamed yet: the realtime views do not exist, each live panel says so.
        for panel_id in live_ids:
            expect(panel(page, panel_id)).to_have_attribute("data-state", "error")
            expect(panel(page, panel_id).locator(".error-box")).to_contain_text("does not exist")
        shot(page, "live_01_before_the_stream")

        # The first events: the live panels appear, drawn from the serving store.
        first = send_user_events(live.bootstrap, live.topic, live.events, 120)
        per_type, logins = live_figures(first)
        assert logins, "the events hold logins"
        for panel_id in live_ids:
            expect(panel(page, panel_id)).to_have_attribute("data-state", "ok")
        wait_for_figures(page, "events-per-minute", per_type)
        wait_for_figures(page, "logins-per-source", logins)
        with server.client(server.login_token) as client:
            # Its own answer says the serving store read it (a worker sees a new mirror
            # within a second), with the same figures.
            for panel_id, figures in zip(live_ids, (per_type, logins), strict=True):
                body = wait_for(
                    f"{panel_id} read from the serving store",
                    lambda p=panel_id: served(client, p),
                    timeout=30,
                )
                assert body["error"] is None and body["note"] is None, body
                assert body["tables"] == [TABLES[panel_id]], body
                assert answer_figures(body) == figures, body
        for panel_id in live_ids:
            expect(panel(page, panel_id).locator(".badge.engine")).to_have_text("serving")
        chart_ids = {i: page.evaluate(CHART_ID, i) for i in live_ids}
        shot(page, "live_02_first_events")

        # The gold stat figures equal those computed from the landing files.
        want = landing_figures(live.warehouse)
        assert want["users"] > 0 and want["purchases"] > 0 and want["events"] > 0
        assert want["replays"] > 0, "the demo's files replay some events: silver keeps one"
        expect(panel(page, "daily-active-users").locator(".stat-value")).to_have_text(
            f"{as_number(want['users'])} users"
        )
        rate = panel(page, "conversion-rate").locator(".stat-value")
        expect(rate).to_have_text(as_percent(want["rate"]))
        expect(rate).to_have_attribute("title", repr(want["rate"]))
        expect(panel(page, "purchases").locator(".stat-value")).to_have_text(
            as_number(want["purchases"])
        )
        expect(panel(page, "events").locator(".stat-value")).to_have_text(as_number(want["events"]))
        for panel_id, figure in (
            ("daily-active-users", "users"),
            ("purchases", "purchases"),
            ("events", "events"),
        ):
            expect(panel(page, panel_id).locator(".stat-value")).to_have_attribute(
                "title", str(want[figure])
            )

        # More events: the same page, the same charts, the new figures.
        second = send_user_events(live.bootstrap, live.topic, live.events, 180)
        per_type, logins = live_figures(first + second)
        wait_for_figures(page, "events-per-minute", per_type)
        wait_for_figures(page, "logins-per-source", logins)
        assert page.evaluate("() => window.__sameDocument") == "kept"
        assert page.url == address
        assert {i: page.evaluate(CHART_ID, i) for i in live_ids} == chart_ids
        for panel_id in live_ids:
            expect(panel(page, panel_id).locator(".badge.engine")).to_have_text("serving")
        assert re.fullmatch(r"\d\d:\d\d:\d\d", page.locator("#dash-updated-at").inner_text())
        shot(page, "live_03_more_events")
    finally:
        page.context.close()
    assert not errors, errors
