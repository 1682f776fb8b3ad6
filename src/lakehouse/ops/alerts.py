"""Alert rules evaluated against the health report: an alert (a rule and its subject, a
table or a pipeline) fires once when its condition starts and resolves once when it ends.
Every event is appended to ``system.alerts`` (the history; an alert's state is its latest
event) before it is delivered: to the log, to each webhook (an event a webhook did not
take stays pending and is sent again at the next evaluation) and to the UI (which reads
the table)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.ops.health import FOLDER, build_report, is_quarantine
from lakehouse.ops.webhook import WebhookError, post

if TYPE_CHECKING:
    from lakehouse.settings.model import AlertRule, Webhook
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.alerts")

ALERTS = "system.alerts"
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("rule", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("subject", pa.string()),  # layer.table or pipeline:<name>
        ("event", pa.string()),  # fired | resolved
        ("message", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),  # the time the evaluation judged
        ("recorded_at", pa.timestamp("us", tz="UTC")),  # when it was written (the order)
        ("delivery", pa.string()),  # none (log only) | pending | delivered
        ("delivered_to", pa.string()),  # JSON list of the webhooks (by index) that took it
        ("attempts", pa.int64()),  # evaluations that tried to deliver it
        ("error", pa.string()),  # the last delivery error
    ]
)


@dataclass
class Condition:
    rule: AlertRule
    subject: str
    message: str


@dataclass
class Evaluation:
    """What one evaluation did."""

    fired: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    firing: int = 0  # alerts firing after it
    delivered: int = 0  # webhook deliveries made
    errors: list[str] = field(default_factory=list)  # deliveries that failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "fired": self.fired,
            "resolved": self.resolved,
            "firing": self.firing,
            "delivered": self.delivered,
            "errors": self.errors,
        }


# -- the rules --------------------------------------------------------------------------
def _matches(name: str, patterns: list[str]) -> bool:
    """Whether a table matches; system tables only for a pattern naming the system layer."""
    if name.startswith("system."):
        return any(p.startswith("system.") and fnmatch(name, p) for p in patterns)
    return any(fnmatch(name, p) for p in patterns)


def conditions(lh: Lakehouse, report: dict[str, Any]) -> list[Condition]:
    """The rules' conditions that hold now."""
    out: list[Condition] = []
    for rule in lh.settings.alerts.rules:
        if rule.when in ("stale", "quality", "storage_growth"):
            for t in report["tables"]:
                if _matches(t["table"], rule.tables):
                    message = _table_condition(rule, t)
                    if message:
                        out.append(Condition(rule, t["table"], message))
        else:
            for p in report["pipelines"]:
                if any(fnmatch(p["pipeline"], pat) for pat in rule.pipelines):
                    message = _pipeline_condition(rule, p)
                    if message:
                        out.append(Condition(rule, f"pipeline:{p['pipeline']}", message))
    return out


def _table_condition(rule: AlertRule, t: dict[str, Any]) -> str | None:
    if rule.when == "stale" and rule.after is not None and not is_quarantine(t["table"]):
        age = t.get("age_seconds")
        if age is not None and age > rule.after:
            return f"{t['table']}: data is {age / 60:.0f} min old (limit {rule.after / 60:g} min)"
    if rule.when == "quality" and rule.share is not None:
        share = t.get("quality_failed_share")
        if share is not None and share > rule.share:
            return (
                f"{t['table']}: a check failed {share * 100:.1f} % of the rows "
                f"(limit {rule.share * 100:g} %)"
            )
    if rule.when == "storage_growth" and rule.per_day is not None:
        growth = t.get("growth_bytes_per_day")
        if growth is not None and growth > rule.per_day:
            return (
                f"{t['table']}: grows {growth / 1e9:.2f} GB a day "
                f"(limit {int(rule.per_day) / 1e9:g} GB)"
            )
    return None


def _pipeline_condition(rule: AlertRule, p: dict[str, Any]) -> str | None:
    if rule.when == "schedule_lag" and rule.after is not None:
        lag = p.get("lag_seconds") or 0.0
        if p.get("schedule") and lag > rule.after:
            return (
                f"pipeline {p['pipeline']} is {lag / 60:.0f} min behind its schedule "
                f"{p['schedule']} (limit {rule.after / 60:g} min)"
            )
    if rule.when == "run_failed":
        run = p.get("last_run") or {}
        if run.get("status") == "failed":
            return f"pipeline {p['pipeline']}: run {run.get('run_id')} failed"
    return None


# -- state and history ------------------------------------------------------------------
def history(lh: Lakehouse, limit: int = 100) -> list[dict[str, Any]]:
    """The latest ``limit`` events, newest first."""
    if lh.catalog.get(ALERTS) is None:
        return []
    rows = lh.sql(
        f"SELECT * FROM {ALERTS} ORDER BY recorded_at DESC, occurred_at DESC LIMIT {int(limit)}"
    ).to_dicts()
    return [_shown(r) for r in rows]


def firing(lh: Lakehouse) -> list[dict[str, Any]]:
    """The alerts firing now: each one's event that fired it."""
    if lh.catalog.get(ALERTS) is None:
        return []
    rows = lh.sql(
        f"SELECT * FROM {ALERTS} QUALIFY row_number() OVER "
        "(PARTITION BY rule, subject ORDER BY recorded_at DESC, event DESC) = 1"
    ).to_dicts()
    return sorted(
        (_shown(r) for r in rows if r["event"] == "fired"), key=lambda r: r["occurred_at"]
    )


def _undelivered(lh: Lakehouse) -> list[dict[str, Any]]:
    if lh.catalog.get(ALERTS) is None:
        return []
    rows = lh.sql(
        f"SELECT * FROM {ALERTS} WHERE delivery = 'pending' ORDER BY recorded_at"
    ).to_dicts()
    return rows


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("occurred_at", "recorded_at"):
        if isinstance(out.get(key), datetime):
            out[key] = out[key].isoformat()
    out["delivered_to"] = json.loads(out.get("delivered_to") or "[]")
    return out


# -- one evaluation ---------------------------------------------------------------------
@contextmanager
def _one_at_a_time(lh: Lakehouse) -> Iterator[None]:
    """Evaluations of one (local) warehouse take turns, so an alert fires once."""
    if not lh.local:
        yield
        return
    import fcntl

    path = Path(lh.root) / FOLDER / "alerts.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def evaluate(
    lh: Lakehouse, report: dict[str, Any] | None = None, now: datetime | None = None
) -> Evaluation:
    """Evaluate the rules once: new events recorded, then delivered (with the pending
    ones of earlier evaluations)."""
    with _one_at_a_time(lh):
        now = now or datetime.now(UTC)
        report = report if report is not None else build_report(lh, now)
        holding = {(c.rule.name, c.subject): c for c in conditions(lh, report)}
        was = {(a["rule"], a["subject"]): a for a in firing(lh)}
        hooks = lh.settings.alerts.webhooks
        delivery = "pending" if hooks else "none"
        events = []
        for key, c in holding.items():
            if key not in was:
                events.append(
                    _event(
                        c.rule.name,
                        c.rule.when,
                        c.rule.severity,
                        c.subject,
                        "fired",
                        c.message,
                        now,
                        delivery,
                    )
                )
        for key, a in was.items():
            if key not in holding:
                message = f"resolved: {a['message']}"
                events.append(
                    _event(
                        a["rule"],
                        a["kind"],
                        a["severity"],
                        a["subject"],
                        "resolved",
                        message,
                        now,
                        delivery,
                    )
                )
        result = Evaluation(firing=len(holding))
        if events:
            lh.write(
                ALERTS,
                pa.Table.from_pylist(events, schema=SCHEMA),
                description="Alert events: fired and resolved, with their delivery",
            )
        for e in events:
            shown = _shown(e)
            (result.fired if e["event"] == "fired" else result.resolved).append(shown)
            if lh.settings.alerts.log:
                level = logging.INFO if e["event"] == "resolved" else _LEVELS[e["severity"]]
                log.log(
                    level,
                    "alert %s %s: %s",
                    e["rule"],
                    e["event"],
                    e["message"],
                    extra={"alert": e["rule"], "subject": e["subject"]},
                )
        if hooks:
            _deliver(lh, hooks, result)
        return result


_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


def _event(
    rule: str,
    kind: str,
    severity: str,
    subject: str,
    event: str,
    message: str,
    now: datetime,
    delivery: str,
) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "rule": rule,
        "kind": kind,
        "severity": severity,
        "subject": subject,
        "event": event,
        "message": message,
        "occurred_at": now,
        "recorded_at": datetime.now(UTC),
        "delivery": delivery,
        "delivered_to": "[]",
        "attempts": 0,
        "error": None,
    }


def payload(event: dict[str, Any]) -> dict[str, Any]:
    """What a webhook receives for an event."""
    at = event["occurred_at"]
    return {
        "event_id": event["event_id"],
        "alert": event["rule"],
        "kind": event["kind"],
        "severity": event["severity"],
        "subject": event["subject"],
        "status": "firing" if event["event"] == "fired" else "resolved",
        "event": event["event"],
        "message": event["message"],
        "occurred_at": at.isoformat() if isinstance(at, datetime) else at,
    }


def _deliver(lh: Lakehouse, hooks: list[Webhook], result: Evaluation) -> None:
    """Send every pending event to each webhook that has not taken it, each webhook in
    a thread of its own; a webhook that fails is left for the next evaluation (the rest of
    its events too, so a dead receiver costs one timeout sequence an evaluation)."""
    pending = _undelivered(lh)
    if not pending:
        return
    taken: dict[str, set[int]] = {
        e["event_id"]: set(json.loads(e["delivered_to"] or "[]")) for e in pending
    }
    errors: dict[str, str] = {}

    def send(index: int) -> tuple[int, list[str], str | None]:
        done: list[str] = []
        for e in pending:
            if index in taken[e["event_id"]]:
                continue
            try:
                post(hooks[index], payload(e))
            except WebhookError as exc:
                return index, done, exc.message
            done.append(e["event_id"])
        return index, done, None

    with ThreadPoolExecutor(max_workers=len(hooks)) as pool:
        for index, done, error in pool.map(send, range(len(hooks))):
            for event_id in done:
                taken[event_id].add(index)
            result.delivered += len(done)
            if error:
                result.errors.append(error)
                log.error("alert delivery: %s", error)
                for e in pending:
                    if index not in taken[e["event_id"]]:
                        errors[e["event_id"]] = error
    updated = []
    for e in pending:
        row = dict(e)
        row["delivered_to"] = json.dumps(sorted(taken[e["event_id"]]))
        row["attempts"] = int(e.get("attempts") or 0) + 1
        row["delivery"] = "delivered" if len(taken[e["event_id"]]) >= len(hooks) else "pending"
        row["error"] = errors.get(e["event_id"])
        updated.append(row)
    lh.write(ALERTS, pa.Table.from_pylist(updated, schema=SCHEMA), mode="merge", keys=["event_id"])
