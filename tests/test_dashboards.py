"""Dashboards as files: reading with lines, validation against a real warehouse, panels run
with bound parameters through the API's sandbox (access, masking, audit) by a real
``lakehouse serve``, the Grafana export, and the CLI commands with their exit codes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.dashboards.grafana import export_grafana
from lakehouse.dashboards.model import TimeRange
from lakehouse.dashboards.params import InvalidValue, parameters
from lakehouse.dashboards.reader import read_dashboard
from lakehouse.dashboards.run import Caller, run_dashboard, run_panel, values_for
from lakehouse.dashboards.validate import validate
from tests.helpers.server import Server, start_server

REPO = Path(__file__).resolve().parents[1]

SHOP = """\
title: Shop
refresh: 5
time_range: all
variables:
  - name: page
    label: Page
    kind: select
    options: [all, /home, /cart]
    default: all
  - name: q
    label: Search
    kind: text
    default: /home
panels:
  - id: by-page
    title: Visits by page
    kind: bar
    x: page
    y: visits
    grid: {x: 0, y: 0, w: 6, h: 6}
    sql: |
      SELECT page, count(*) AS visits
      FROM silver.visits
      WHERE ($page = 'all' OR page = $page)
        AND day BETWEEN CAST($from AS DATE) AND CAST($to AS DATE)
      GROUP BY page ORDER BY page
  - id: search
    title: Visits of one page
    kind: table
    sql: SELECT user_id, page FROM silver.visits WHERE page = $q ORDER BY user_id
  - id: emails
    title: Who
    kind: table
    sql: SELECT user_id, email FROM silver.visits ORDER BY user_id
  - id: broken
    title: Broken
    kind: stat
    sql: SELECT 1 / 0 AS x, CAST('nope' AS INTEGER) AS y
  - id: totals
    title: Totals
    kind: stat
    y: visits
    thresholds:
      - {value: 10, color: green}
    sql: SELECT count(*) AS visits FROM gold.page_totals
"""


def _write_tables(lh: Lakehouse) -> None:
    lh.write(
        "silver.visits",
        pa.table(
            {
                "user_id": [1, 2, 3, 4, 5],
                "email": [
                    "ann@example.com",
                    "bob@example.com",
                    "cy@example.com",
                    None,
                    "ann@example.com",
                ],
                "page": ["/home", "/cart", "/home", "/cart", "/home"],
                "day": [dt.date(2026, 1, d) for d in (1, 1, 2, 3, 3)],
            }
        ),
        column_tags={"email": ["pii"]},
    )
    lh.write("gold.page_totals", pa.table({"page": ["/home", "/cart"], "visits": [3, 2]}))


def _folder(root: Path, files: dict[str, str]) -> Path:
    folder = root / "dashboards"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd or REPO,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
            "COLUMNS": "250",
            "NO_COLOR": "1",
        },
    )


# -- reading ------------------------------------------------------------------------------
def test_problems_name_file_line_and_panel(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "bad.yaml": (
                "title: Bad\n"  # 1
                "refesh: 5\n"  # 2
                "panels:\n"  # 3
                "  - id: one\n"  # 4
                "    kind: stat\n"  # 5
                "    sql: SELECT 1 AS n\n"  # 6
                "    titel: One\n"  # 7
                "  - id: two\n"  # 8
                "    kind: gauge\n"  # 9
                "    sql: SELECT 2\n"  # 10
                "  - id: one\n"  # 11
                "    sql: SELECT 3\n"  # 12
                "  - id: four\n"  # 13
                "    kind: line\n"  # 14
                "    sql: SELECT 4 AS n\n"  # 15
                "    grid: {x: 10, y: 0, w: 4, h: 2}\n"  # 16
            )
        },
    )
    dashboard, problems = read_dashboard(folder / "bad.yaml")
    assert dashboard is not None
    shown = [str(p) for p in problems]
    assert any(
        s.startswith(f"{folder / 'bad.yaml'}:2: unknown key 'refesh'")
        and "did you mean refresh?" in s
        for s in shown
    ), shown
    assert any(
        ":7: panel one: unknown key 'titel'" in s and "did you mean title?" in s for s in shown
    ), shown
    assert any(":9: panel two: unknown kind 'gauge'" in s for s in shown), shown
    assert any(":11: panel id one is used twice" in s for s in shown), shown
    assert any(":13: panel four: a line panel names its x column" in s for s in shown), shown
    assert any(":16: panel four: grid x 10 + w 4 goes past" in s for s in shown), shown
    # A panel with a bad key is kept; one that cannot be drawn is not.
    assert [p.id for p in dashboard.panels] == ["one", "four"]


def test_a_file_that_is_not_yaml_is_one_problem_at_its_line(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "broken.yaml": "title: X\npanels:\n  - id: a\n    sql: [unclosed\n",
            "twice.yaml": "title: X\ntitle: Y\npanels: []\n",
            "list.yaml": "- a\n- b\n",
        },
    )
    dashboard, problems = read_dashboard(folder / "broken.yaml")
    assert dashboard is None and len(problems) == 1
    assert problems[0].line >= 4 and "not readable as YAML" in problems[0].message
    dashboard, problems = read_dashboard(folder / "twice.yaml")
    assert (
        dashboard is None and problems[0].line == 2 and "'title' is given twice" in str(problems[0])
    )
    dashboard, problems = read_dashboard(folder / "list.yaml")
    assert dashboard is None and "is a YAML mapping" in problems[0].message


def test_time_ranges() -> None:
    now = dt.datetime(2026, 3, 10, 12, 30, 15, 999, tzinfo=dt.UTC)
    week = TimeRange.parse("last 7 days")
    assert week is not None and week.bounds(now) == (
        dt.datetime(2026, 3, 3, 12, 30, 15, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 10, 12, 30, 15, tzinfo=dt.UTC),
    )
    assert TimeRange.parse("Last 1 hour") is not None
    everything = TimeRange.parse("all")
    assert everything is not None and everything.bounds(now)[0].year == 1970
    for bad in ("yesterday", "last 0 days", "last 3 weeks", "7 days"):
        assert TimeRange.parse(bad) is None, bad


def test_parameters_are_found_outside_strings_and_comments() -> None:
    sql = "SELECT '$no' AS a, $yes -- $nor\nFROM t WHERE x = $from AND y = $Yes /* $not */"
    assert parameters(sql) == (("yes", "from"), ())
    assert parameters("SELECT $1") == ((), ("$1",))


# -- validation ---------------------------------------------------------------------------
@pytest.fixture
def warehouse(lh: Lakehouse) -> Lakehouse:
    _write_tables(lh)
    return lh


def test_validate_passes_a_good_dashboard(warehouse: Lakehouse, tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"shop.yaml": SHOP})
    assert validate(folder, warehouse) == []


def test_validate_finds_sql_tables_fields_and_parameters(
    warehouse: Lakehouse, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        {
            "checks.yaml": (
                "title: Checks\n"  # 1
                "panels:\n"  # 2
                "  - id: syntax\n"  # 3
                "    sql: |\n"  # 4
                "      SELECT page\n"  # 5
                "      FROM silver.visits\n"  # 6
                "      WHERE (page = 'x'\n"  # 7
                "  - id: table\n"  # 8
                "    sql: |\n"  # 9
                "      SELECT 1 AS n\n"  # 10
                "      FROM silver.visitz\n"  # 11
                "  - id: field\n"  # 12
                "    kind: line\n"  # 13
                "    x: day\n"  # 14
                "    y: [visits, Page]\n"  # 15
                "    sql: SELECT day, page, count(*) AS visits FROM silver.visits GROUP BY ALL\n"
                "  - id: param\n"  # 17
                "    sql: |\n"  # 18
                "      SELECT page FROM silver.visits\n"  # 19
                "      WHERE page = $pages\n"  # 20
                "  - id: statement\n"  # 21
                "    sql: DELETE FROM silver.visits\n"  # 22
                "  - id: column\n"  # 23
                "    sql: SELECT nope FROM silver.visits\n"  # 24
                "  - id: live\n"  # 25
                "    sql: SELECT * FROM realtime.events_per_minute\n"  # 26
            )
        },
    )
    problems = validate(folder, warehouse)
    by_panel = {p.panel: p for p in problems}
    assert set(by_panel) == {"syntax", "table", "field", "param", "statement", "column", "live"}
    assert by_panel["syntax"].line == 7 and "does not parse" in by_panel["syntax"].message
    assert by_panel["table"].line == 11
    assert "silver.visitz does not exist" in by_panel["table"].message
    assert by_panel["table"].hint == "did you mean silver.visits?"
    assert by_panel["field"].line == 15 and "no column 'Page'" in by_panel["field"].message
    assert by_panel["field"].hint == "did you mean page?"
    assert by_panel["param"].line == 20 and "$pages is not defined" in by_panel["param"].message
    assert "SELECT, not DELETE" in by_panel["statement"].message
    assert by_panel["column"].line == 24 and "nope" in by_panel["column"].message
    # A real-time view the stream has not made yet is a warning, not an error.
    assert by_panel["live"].severity == "warning"
    assert "lakehouse demo --stream" in (by_panel["live"].hint or "")
    assert all(p.severity == "error" for p in problems if p.panel != "live")
    assert str(by_panel["table"]).startswith(
        f"{folder / 'checks.yaml'}:11: panel table: sql: table silver.visitz does not exist"
    )


def test_validate_checks_variables(warehouse: Lakehouse, tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "vars.yaml": (
                "title: V\n"  # 1
                "variables:\n"  # 2
                "  - name: page\n"  # 3
                "    default: /nowhere\n"  # 4
                "    options_sql: SELECT DISTINCT page FROM silver.visits ORDER BY 1\n"  # 5
                "  - name: from\n"  # 6
                "    kind: text\n"  # 7
                "panels:\n"  # 8
                "  - id: a\n"  # 9
                "    sql: SELECT count(*) AS n FROM silver.visits WHERE page = $page\n"  # 10
            )
        },
    )
    problems = validate(folder, warehouse)
    assert [(p.line, p.severity) for p in problems] == [(6, "error"), (3, "error")], problems
    assert "'from' is taken" in problems[0].message
    assert "default '/nowhere' is not among" in problems[1].message
    assert problems[1].hint == "choose one of: /cart, /home"


# -- running panels -----------------------------------------------------------------------
def _shop(tmp_path: Path) -> Any:
    dashboard, problems = read_dashboard(_folder(tmp_path, {"shop.yaml": SHOP}) / "shop.yaml")
    assert dashboard is not None and problems == []
    return dashboard


def test_variables_are_bound_as_values_never_as_sql(warehouse: Lakehouse, tmp_path: Path) -> None:
    dashboard = _shop(tmp_path)
    search = dashboard.panel("search")
    caller = Caller()
    values = values_for(warehouse, dashboard, caller, {"q": "/cart"})
    rows = run_panel(warehouse, search, values, caller).table.to_pylist()
    assert rows == [{"user_id": 2, "page": "/cart"}, {"user_id": 4, "page": "/cart"}]
    injected = "x' OR 1=1 --"
    pasted = warehouse.sql(search.sql.replace("$q", f"'{injected}'")).to_arrow()
    assert pasted.num_rows == 5  # what pasting the value into the text would have done
    values = values_for(warehouse, dashboard, caller, {"q": injected})
    result = run_panel(warehouse, search, values, caller)
    assert result.error is None and result.row_count == 0
    # A select's value is one of its options; a date is a date; unknown names are refused.
    with pytest.raises(InvalidValue, match="not one of its options"):
        values_for(warehouse, dashboard, caller, {"page": injected})
    with pytest.raises(InvalidValue, match="no variable 'pag'"):
        values_for(warehouse, dashboard, caller, {"pag": "/home"})
    with pytest.raises(InvalidValue, match="is after to"):
        values_for(warehouse, dashboard, caller, {}, "2026-02-01", "2026-01-01")


def test_the_time_range_and_variables_reach_the_sql(warehouse: Lakehouse, tmp_path: Path) -> None:
    dashboard = _shop(tmp_path)
    panel = dashboard.panel("by-page")
    caller = Caller()

    def rows(given: dict[str, str], start: str | None = None, end: str | None = None) -> Any:
        values = values_for(warehouse, dashboard, caller, given, start, end)
        return run_panel(warehouse, panel, values, caller).table.to_pylist()

    assert rows({}) == [{"page": "/cart", "visits": 2}, {"page": "/home", "visits": 3}]
    assert rows({"page": "/home"}) == [{"page": "/home", "visits": 3}]
    assert rows({}, "2026-01-02", "2026-01-02T23:00:00") == [{"page": "/home", "visits": 1}]


def test_a_broken_panel_shows_its_error_and_the_others_render(
    warehouse: Lakehouse, tmp_path: Path
) -> None:
    results = {r.panel.id: r for r in run_dashboard(warehouse, _shop(tmp_path), Caller())}
    assert results["broken"].error is not None and results["broken"].table is None
    assert "nope" in results["broken"].error.message
    for pid in ("by-page", "search", "emails", "totals"):
        assert results[pid].error is None and results[pid].row_count > 0, pid
        assert results[pid].engine == "lakehouse"


def test_bound_parameters_are_part_of_the_cache_key(warehouse: Lakehouse) -> None:
    sql = "SELECT count(*) AS n FROM silver.visits WHERE page = $p"
    engine = warehouse.engine
    home = engine.safe_query(sql, params={"p": "/home"})
    cart = engine.safe_query(sql, params={"p": "/cart"})
    assert (home.table.to_pylist(), cart.table.to_pylist()) == ([{"n": 3}], [{"n": 2}])
    again = engine.safe_query(sql, params={"p": "/cart"})
    assert again.cached and again.table.to_pylist() == [{"n": 2}]
    assert engine.cached_query(sql, params={"p": "/nowhere"}) is None
    plain = engine.safe_query("SELECT count(*) AS n FROM silver.visits")
    assert plain.table.to_pylist() == [{"n": 5}]


# -- Grafana ------------------------------------------------------------------------------
def test_grafana_export(tmp_path: Path) -> None:
    board = export_grafana(_shop(tmp_path))
    for key in (
        "title",
        "uid",
        "schemaVersion",
        "panels",
        "time",
        "refresh",
        "templating",
        "__inputs",
        "annotations",
        "version",
        "editable",
    ):
        assert key in board, key
    assert board["schemaVersion"] >= 36 and board["refresh"] == "5s"
    assert board["time"] == {"from": "1970-01-01T00:00:00.000Z", "to": "now"}
    assert board["__inputs"][0]["pluginId"] == "grafana-clickhouse-datasource"
    assert board["__inputs"][0]["type"] == "datasource"
    ds = {"type": "grafana-clickhouse-datasource", "uid": "${DS_CLICKHOUSE}"}
    panels = {p["title"]: p for p in board["panels"]}
    assert [p["type"] for p in board["panels"]] == ["barchart", "table", "table", "stat", "stat"]
    assert len({p["id"] for p in board["panels"]}) == 5
    for panel in board["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"] == ds and len(panel["targets"]) == 1
        target = panel["targets"][0]
        assert target["datasource"] == ds and target["refId"] == "A"
        assert target["editorType"] == "sql" and target["format"] in (0, 1)
        assert target["rawSql"] and "$from" not in target["rawSql"]
    assert panels["Visits by page"]["gridPos"] == {"x": 0, "y": 0, "w": 12, "h": 6}
    raw = panels["Visits by page"]["targets"][0]["rawSql"]
    assert "$__fromTime" in raw and "$__toTime" in raw and "${page:singlequote}" in raw
    steps = panels["Totals"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "green", "value": 10.0}
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["page"]["type"] == "custom" and variables["page"]["query"] == "all,/home,/cart"
    assert variables["page"]["current"]["value"] == "all"
    assert variables["q"]["type"] == "textbox" and variables["q"]["query"] == "/home"
    json.dumps(board)  # all of it is JSON


def test_grafana_export_of_the_demo_dashboard() -> None:
    dashboard, problems = read_dashboard(REPO / "dashboards" / "platform.yaml")
    assert dashboard is not None and problems == []
    board = export_grafana(dashboard)
    kinds = {p["title"]: p["type"] for p in board["panels"]}
    assert kinds["Events per minute (live)"] == "timeseries"
    assert kinds["Daily active users"] == "stat"
    live = next(p for p in board["panels"] if p["type"] == "timeseries")
    assert live["targets"][0]["format"] == 0
    area = next(p for p in board["panels"] if p["title"] == "Active users per day")
    assert area["fieldConfig"]["defaults"]["custom"]["fillOpacity"] > 0
    page = board["templating"]["list"][0]
    assert page["type"] == "query" and page["datasource"]["type"] == "grafana-clickhouse-datasource"
    assert board["time"]["from"] == "now-30d"


# -- the API ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("dashboards-api")
    warehouse = root / "warehouse"
    _write_tables(Lakehouse(warehouse))
    folder = _folder(root, {"shop.yaml": SHOP, "torn.yaml": "title: [torn\n"})
    tokens = {}
    for role in ("analyst", "viewer"):
        done = cli(
            "--warehouse", str(warehouse), "token", "create", "--name", f"d-{role}", "--role", role
        )
        assert done.returncode == 0, done.stderr
        tokens[role] = next(w for w in done.stdout.split() if w.startswith("lh_"))
    server = start_server(warehouse, args=["--dashboards", str(folder), "--workers", "1"])
    tokens["admin"] = server.login_token
    try:
        yield server, tokens
    finally:
        server.stop()


def get(site: Any, role: str, path: str, **params: str) -> Any:
    server: Server = site[0]
    with server.client(site[1][role]) as c:
        return c.get(path, params=params)


def post_query(site: Any, role: str, sql: str) -> Any:
    server: Server = site[0]
    with server.client(site[1][role]) as c:
        return c.post("/query", json={"sql": sql})


def test_api_lists_and_describes_dashboards(site: Any) -> None:
    listed = get(site, "viewer", "/dashboards").json()["dashboards"]
    by_name = {d["name"]: d for d in listed}
    assert by_name["shop"] == {
        "name": "shop",
        "title": "Shop",
        "file": "shop.yaml",
        "panels": 5,
        "refresh_seconds": 5,
        "error": None,
    }
    assert "torn.yaml:2: not readable as YAML" in by_name["torn"]["error"]
    body = get(site, "analyst", "/dashboards/shop").json()
    assert body["refresh_seconds"] == 5 and body["time_range"] == "all"
    assert body["variables"][0] == {
        "name": "page",
        "label": "Page",
        "kind": "select",
        "default": "all",
        "options": ["all", "/home", "/cart"],
        "error": None,
    }
    first = body["panels"][0]
    assert first["grid"] == {"x": 0, "y": 0, "w": 6, "h": 6} and first["y"] == ["visits"]
    assert set(first) == {
        "id",
        "title",
        "kind",
        "sql",
        "x",
        "y",
        "series",
        "unit",
        "format",
        "grid",
        "thresholds",
        "description",
    }
    assert body["problems"] == []
    missing = get(site, "analyst", "/dashboards/shopp")
    assert missing.status_code == 404 and "did you mean shop?" in missing.json()["error"]["hint"]
    assert get(site, "analyst", "/dashboards/torn").status_code == 404


def test_api_panels_bind_variables_and_keep_errors_inside(site: Any) -> None:
    answer = get(site, "analyst", "/dashboards/shop/panels/by-page", page="/cart")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rows"] == [["/cart", 2]] and body["columns"] == ["page", "visits"]
    assert body["engine"] == "lakehouse" and body["error"] is None and body["kind"] == "bar"
    assert {"id", "title", "types", "row_count", "truncated", "elapsed_ms"} <= set(body)
    dated = get(
        site,
        "analyst",
        "/dashboards/shop/panels/by-page",
        **{"from": "2026-01-03T00:00:00Z", "to": "2026-01-04T00:00:00Z"},
    ).json()
    assert dated["rows"] == [["/cart", 1], ["/home", 1]]
    injected = get(site, "analyst", "/dashboards/shop/panels/search", q="x' OR 1=1 --").json()
    assert injected["error"] is None and injected["rows"] == []
    broken = get(site, "analyst", "/dashboards/shop/panels/broken")
    assert broken.status_code == 200
    assert broken.json()["error"]["message"] and broken.json()["rows"] == []
    assert get(site, "analyst", "/dashboards/shop/panels/totals").json()["rows"] == [[2]]
    bad = get(site, "analyst", "/dashboards/shop/panels/by-page", page="x' OR 1=1 --")
    assert bad.status_code == 422 and "not one of its options" in bad.json()["error"]["message"]
    assert (
        get(site, "analyst", "/dashboards/shop/panels/by-page", **{"from": "yesterday"}).status_code
        == 422
    )
    assert get(site, "analyst", "/dashboards/shop/panels/by-page", pgae="/home").status_code == 422
    nope = get(site, "analyst", "/dashboards/shop/panels/nope")
    assert nope.status_code == 404 and "by-page" in nope.json()["error"]["hint"]


def test_api_panels_mask_and_refuse_as_post_query_does(site: Any) -> None:
    sql = "SELECT user_id, email FROM silver.visits ORDER BY user_id"
    panel = get(site, "analyst", "/dashboards/shop/panels/emails").json()
    query = post_query(site, "analyst", sql).json()
    assert panel["rows"] == query["rows"]
    emails = [r[1] for r in panel["rows"]]
    assert all(e is None or e.startswith("pii:") for e in emails)
    assert emails[0] == emails[4] and None in emails
    assert "ann@example.com" not in json.dumps(panel)
    admin = get(site, "admin", "/dashboards/shop/panels/emails").json()
    assert admin["rows"][0][1] == "ann@example.com"
    # The viewer may not read silver: the panel's error is /query's refusal, word for word.
    refused = get(site, "viewer", "/dashboards/shop/panels/emails")
    assert refused.status_code == 200
    error = post_query(site, "viewer", sql).json()["error"]
    assert refused.json()["error"] == {"message": error["message"], "hint": error["hint"]}
    assert refused.json()["rows"] == []


def test_api_panel_reads_are_audited(site: Any) -> None:
    get(site, "analyst", "/dashboards/shop/panels/totals")
    get(site, "viewer", "/dashboards/shop/panels/emails")
    sql = (
        "SELECT principal, action, target, outcome, status, detail FROM system.audit_log "
        "WHERE action = 'GET /dashboards/{name}/panels/{panel_id}'"
    )
    deadline = time.monotonic() + 20
    while True:  # each server process writes its records at least once a second
        rows = [
            dict(
                zip(
                    ["principal", "action", "target", "outcome", "status", "detail"], r, strict=True
                )
            )
            for r in post_query(site, "admin", sql).json()["rows"]
        ]
        read = [
            r
            for r in rows
            if r["principal"] == "d-analyst" and r["target"] == "dashboard shop panel totals"
        ]
        denied = [
            r
            for r in rows
            if r["principal"] == "d-viewer" and r["target"] == "dashboard shop panel emails"
        ]
        if read and denied:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
    assert read[0]["outcome"] == "ok" and read[0]["status"] == 200
    assert read[0]["detail"].startswith("1 rows")
    assert denied[0]["outcome"] == "denied" and denied[0]["status"] == 200


# -- the CLI ------------------------------------------------------------------------------
def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    _write_tables(Lakehouse(warehouse))
    good = _folder(tmp_path / "good", {"shop.yaml": SHOP})
    done = cli("--warehouse", str(warehouse), "dashboards", "validate", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 dashboard(s), 5 panel(s): 0 error(s), 0 warning(s)" in done.stdout
    bad = _folder(
        tmp_path / "bad",
        {
            "shop.yaml": SHOP.replace("FROM gold.page_totals", "FROM gold.page_total"),
            "keys.yaml": "title: K\npanels:\n  - id: a\n    sql: SELECT 1 AS n\n    colour: red\n",
        },
    )
    done = cli("--warehouse", str(warehouse), "dashboards", "validate", str(bad))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith(f"{bad / 'keys.yaml'}:5: panel a: unknown key 'colour'") for line in lines
    ), done.stdout
    assert any(
        f"{bad / 'shop.yaml'}:" in line and "gold.page_total does not exist" in line
        for line in lines
    ), done.stdout
    assert "2 error(s)" in done.stdout


def test_cli_list_show_and_export(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    _write_tables(Lakehouse(warehouse))
    folder = _folder(tmp_path, {"shop.yaml": SHOP})
    base = ("--warehouse", str(warehouse), "dashboards")
    listed = cli(*base, "list", "--dir", str(folder), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["name"] == "shop"
    shown = cli(*base, "show", "shop", "--dir", str(folder), "--var", "page=/home")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "by-page" in shown.stdout and "/home" in shown.stdout
    assert "broken" in shown.stdout and "error:" in shown.stdout  # and the rest rendered
    assert "totals" in shown.stdout and "engine lakehouse" in shown.stdout
    wrong = cli(*base, "show", "shop", "--dir", str(folder), "--var", "page=nope")
    assert wrong.returncode == 1 and "not one of its options" in wrong.stderr
    missing = cli(*base, "show", "shp", "--dir", str(folder))
    assert missing.returncode == 1 and "did you mean shop?" in missing.stderr
    out = tmp_path / "shop.json"
    exported = cli(*base, "export", "shop", "--dir", str(folder), "--grafana", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["panels"][0]["type"] == "barchart"


def test_the_demo_dashboard_validates_on_the_demo_warehouse(demo_warehouse: Path) -> None:
    done = cli("--warehouse", str(demo_warehouse), "dashboards", "validate", "dashboards")
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [line for line in done.stdout.splitlines() if ": warning: " in line]
    assert len(warnings) == 2 and all("realtime." in w for w in warnings), done.stdout
    assert "0 error(s), 2 warning(s)" in done.stdout
    shown = cli("--warehouse", str(demo_warehouse), "dashboards", "show", "platform")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "run lakehouse demo --stream" in shown.stdout
    # All but the two real-time panels; by the serving store once a server (or another
    # test) has mirrored the shared demo warehouse's gold tables, else by the lakehouse.
    answered = shown.stdout.count("engine lakehouse") + shown.stdout.count("engine serving")
    assert answered == 6
