"""The health report and the alerts over a real warehouse: pipeline runs recorded, the
report written after each run, states and reasons, growth from size samples, alerts that
fire once and resolve, a webhook that times out and the next evaluation that recovers,
the CLI's exit codes and the API's view for a caller who may read only gold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.ops import alerts
from lakehouse.ops.health import build_report
from lakehouse.ops.sizes import SCHEMA as SIZES_SCHEMA
from lakehouse.ops.sizes import SIZES
from tests.helpers.health_site import Site, build_site
from tests.helpers.server import start_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    built = build_site(tmp_path_factory.mktemp("health"))
    try:
        yield built
    finally:
        built.receiver.stop()


def cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env.update(NO_COLOR="1", COLUMNS="200", LAKEHOUSE_CONFIG=str(site.config))
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def by_table(report: dict) -> dict[str, dict]:
    return {t["table"]: t for t in report["tables"]}


def test_the_report_is_written_after_each_run_with_states_and_reasons(site):
    written = json.loads((site.warehouse / "_health" / "report.json").read_text())
    assert written["state"] == "unhealthy"
    assert any("pipeline broken" in r and "failed" in r for r in written["reasons"])

    lh = site.lakehouse()
    orders = lh.table("silver.orders")
    committed = datetime.fromisoformat(orders.history()[0]["timestamp"])
    report = build_report(lh, committed + timedelta(minutes=3))
    tables = by_table(report)
    silver = tables["silver.orders"]
    assert silver["last_run"]["status"] == "ok"
    assert silver["last_run"]["pipeline"] == "shop"
    assert silver["quality_pass_rate"] == 0.0  # its one check failed
    assert silver["quality_failed_share"] == 0.25  # one row in four
    assert silver["sla_seconds"] == 60 and silver["fresh"] is False
    assert silver["state"] == "unhealthy"  # older than twice its SLA
    assert any("data is 3 min old" in r for r in silver["reasons"])
    assert silver["rows"] == 4 and silver["files"] >= 1 and silver["small_files"] >= 1
    assert silver["versions_since_compaction"] == silver["version"] + 1
    gold = tables["gold.revenue"]
    assert gold["state"] == "healthy" and gold["fresh"] is None  # no SLA for gold here
    assert report["layers"]["silver"]["state"] == "unhealthy"
    assert report["layers"]["gold"]["state"] == "healthy"
    shop = next(p for p in report["pipelines"] if p["pipeline"] == "shop")
    assert shop["state"] == "healthy" and shop["lag_seconds"] < 5 * 60  # a run due lately
    hour = build_report(lh, committed + timedelta(hours=1))
    shop = next(p for p in hour["pipelines"] if p["pipeline"] == "shop")
    assert shop["state"] == "degraded" and shop["lag_seconds"] >= 55 * 60
    assert any("behind its schedule" in r for r in shop["reasons"])
    assert report["state"] == "unhealthy"
    assert report["counts"]["unhealthy"] >= 1


def test_growth_per_day_comes_from_size_samples(site):
    lh = site.lakehouse()
    now = datetime.fromisoformat(build_report(lh)["generated_at"])
    size = lh.catalog.get("bronze.orders").size_bytes
    lh.write(
        SIZES,
        pa.Table.from_pylist(
            [
                {
                    "table_name": "bronze.orders",
                    "size_bytes": size - 1000,
                    "sampled_at": now - timedelta(hours=2),
                }
            ],
            schema=SIZES_SCHEMA,
        ),
    )
    grown = by_table(build_report(lh, now))["bronze.orders"]["growth_bytes_per_day"]
    assert grown == pytest.approx(12_000, rel=0.01)  # 1000 bytes in 2 hours


def test_alerts_fire_once_survive_a_dead_webhook_and_resolve(site):
    lh = site.lakehouse()
    receiver = site.receiver
    later = datetime.fromisoformat(lh.table("silver.orders").history()[0]["timestamp"])
    later += timedelta(hours=1)

    # The webhook holds every request: the events are recorded, pending, with the error.
    receiver.holding.set()
    first = alerts.evaluate(lh, now=later)
    fired = {(e["rule"], e["subject"]) for e in first.fired}
    assert fired == {
        ("stale", "silver.orders"),
        ("quality", "silver.orders"),
        ("behind", "pipeline:shop"),
        ("failed", "pipeline:broken"),
    }
    assert first.errors and "no answer within 0.5 s" in first.errors[0]
    assert "secret-path" not in first.errors[0]  # the address is a secret
    pending = [e for e in alerts.history(lh) if e["delivery"] == "pending"]
    assert len(pending) == 4 and all(e["error"] for e in pending)

    # Still holding: no new event (no storm), the pending ones tried again.
    again = alerts.evaluate(lh, now=later)
    assert again.fired == [] and again.resolved == [] and again.firing == 4
    assert all(e["attempts"] == 2 for e in alerts.history(lh) if e["delivery"] == "pending")

    # The receiver is back; the CLI's evaluation (now: the data is fresh again and the
    # pipeline on time) resolves two alerts and delivers all six events, once each.
    receiver.holding.clear()
    done = cli(site, "alerts", "evaluate", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    resolved = {(e["rule"], e["subject"]) for e in result["resolved"]}
    assert resolved == {("stale", "silver.orders"), ("behind", "pipeline:shop")}
    assert result["firing"] == 2 and result["errors"] == []
    ids = [e["event_id"] for e in receiver.events]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert {e["status"] for e in receiver.events} == {"firing", "resolved"}
    assert all(h.get("X-Token") == "s3cret" for h in receiver.headers)
    assert all(e["delivery"] == "delivered" for e in alerts.history(lh))

    # Nothing changed: nothing new is sent.
    assert alerts.evaluate(lh).fired == []
    assert len(receiver.events) == 6, [
        (e["alert"], e["subject"], e["event"]) for e in receiver.events
    ]
    firing = {(a["rule"], a["subject"]) for a in alerts.firing(lh)}
    assert firing == {("quality", "silver.orders"), ("failed", "pipeline:broken")}
    listed = cli(site, "alerts", "list")
    assert listed.returncode == 0 and "pipeline:broken" in listed.stdout


def test_a_failed_delivery_fails_the_cli_evaluation(site, tmp_path):
    lh = site.lakehouse()
    # A table that grows fast: the growth rule fires, and the webhook does not answer.
    size = lh.catalog.get("bronze.orders").size_bytes
    now = datetime.fromisoformat(build_report(lh)["generated_at"])
    lh.write(
        SIZES,
        pa.Table.from_pylist(
            [
                {
                    "table_name": "bronze.orders",
                    "size_bytes": size - 10**9,
                    "sampled_at": now - timedelta(hours=3),
                }
            ],
            schema=SIZES_SCHEMA,
        ),
    )
    site.receiver.holding.set()
    try:
        done = cli(site, "alerts", "evaluate")
    finally:
        site.receiver.holding.clear()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fired growth" in done.stdout
    assert "did not take the alert event" in done.stderr
    assert "sent again at the next evaluation" in done.stderr
    recovered = alerts.evaluate(lh)
    assert recovered.errors == [] and recovered.delivered == 1
    assert site.receiver.events[-1]["alert"] == "growth"


def test_the_cli_exit_code_follows_the_state(site, tmp_path):
    done = cli(site, "health", "--format", "json")
    assert done.returncode == 1, done.stderr  # unhealthy: the broken pipeline failed
    assert json.loads(done.stdout)["state"] == "unhealthy"
    shown = cli(site, "health")
    assert shown.returncode == 1 and "overall: unhealthy" in shown.stdout
    clean = tmp_path / "clean"
    Lakehouse(clean).write("gold.t", pa.table({"a": [1]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    ok = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(clean), "health"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "overall: healthy" in ok.stdout


def test_the_api_shows_a_caller_only_what_it_may_read(site):
    created = cli(site, "token", "create", "--name", "v", "--role", "viewer")
    assert created.returncode == 0, created.stderr
    viewer = next(w for w in created.stdout.split() if w.startswith("lh_"))
    server = start_server(
        site.warehouse, args=["--workers", "1"], env={"LAKEHOUSE_CONFIG": str(site.config)}
    )
    try:
        with server.client(server.login_token) as admin:
            full = admin.get("/health/report").json()
            assert full["state"] == "unhealthy"
            assert "silver.orders" in by_table(full)
            assert {p["pipeline"] for p in full["pipelines"]} == {"broken", "shop"}
            listed = admin.get("/alerts").json()
            assert any(a["subject"] == "pipeline:broken" for a in listed["firing"])
        with server.client(viewer) as client:
            mine = client.get("/health/report")
            assert mine.status_code == 200, mine.text
            body = mine.json()
            assert set(by_table(body)) == {"gold.revenue"}
            assert body["pipelines"] == [] and body["state"] == "healthy"
            assert "silver" not in json.dumps(body) and "broken" not in json.dumps(body)
            seen = client.get("/alerts").json()
            assert seen == {"firing": [], "history": []}
        with server.client() as nobody:
            assert nobody.get("/health/report").status_code == 401
            assert nobody.get("/health").json()["status"] == "ok"  # still open
    finally:
        server.stop()


def test_a_webhook_that_hangs_does_not_hold_up_another(tmp_path):
    from lakehouse.settings.model import AlertRule, AlertSettings, Settings, Webhook
    from tests.helpers.health_site import Receiver

    slow, fast = Receiver(), Receiver()
    try:
        slow.holding.set()
        hooks = [Webhook(url=r.url, timeout=0.3, retries=0) for r in (slow, fast)]
        rule = AlertRule(name="old", when="stale", tables=["gold.*"], after=0)
        settings = Settings(alerts=AlertSettings(rules=[rule], webhooks=hooks))
        lh = Lakehouse(tmp_path / "w", settings=settings)
        lh.write("gold.t", pa.table({"a": [1]}))
        first = alerts.evaluate(lh)
        assert len(first.fired) == 1 and first.delivered == 1 and len(first.errors) == 1
        assert [e["subject"] for e in fast.events] == ["gold.t"]
        [event] = alerts.history(lh)
        assert event["delivery"] == "pending" and event["delivered_to"] == [1]
        slow.holding.clear()
        second = alerts.evaluate(lh)
        assert second.fired == [] and second.delivered == 1 and second.errors == []
        assert [e["event_id"] for e in slow.events] == [event["event_id"]]
        assert len(fast.events) == 1  # not sent twice to the one that took it
        [event] = alerts.history(lh)
        assert event["delivery"] == "delivered" and event["delivered_to"] == [0, 1]
    finally:
        slow.stop()
        fast.stop()


def test_a_report_that_cannot_be_written_does_not_fail_the_run(tmp_path, caplog):
    from lakehouse.pipeline.definition import load_pipeline
    from lakehouse.service.runs import start_run
    from tests.helpers.health_site import SHOP, write_files

    write_files(tmp_path / "shop", SHOP)
    lh = Lakehouse(tmp_path / "w")
    lh.write("bronze.orders", pa.table({"id": [1], "amount": [1.0]}))
    (tmp_path / "w" / "_health").write_text("a file where the folder would be")
    done = start_run(lh, load_pipeline(tmp_path / "shop"))
    assert done.status == "succeeded"
    assert lh.table("gold.revenue").count() == 1
    assert "the health report was not written after the run" in caplog.text
