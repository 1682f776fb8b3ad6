"""A table's expectation results, read back from ``system.quality_results``.

Each result has a status: ``passed`` (no row failed the check), ``warning`` (a ``warn``
check found rows: they were kept, and counted) or ``failed`` (rows failed a ``drop``,
``quarantine`` or ``fail`` check, or a table check with action ``fail``).

The stored samples of failing rows are raw (they are the engineer's tool); whoever reads
them through the API gets them masked by the same policy as the table itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name
from lakehouse.quoting import string

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

QUALITY = "system.quality_results"
STATUS_SQL = "CASE WHEN passed THEN 'passed' WHEN action = 'warn' THEN 'warning' ELSE 'failed' END"


def result_status(passed: bool, action: str) -> str:
    """passed, warning (a warn check that found rows) or failed."""
    if passed:
        return "passed"
    return "warning" if action == "warn" else "failed"


def overall_status(statuses: list[str]) -> str:
    """The status of several results: the worst of them."""
    for status in ("failed", "warning"):
        if status in statuses:
            return status
    return "passed"


def quality_report(
    lh: Lakehouse, table: str, runs: int = 1, masked: Iterable[str] = ()
) -> dict[str, Any]:
    """The results of the last ``runs`` runs that checked ``table``, newest first; the score
    is the share of checked rows that passed, averaged over the latest run's checks. The
    ``masked`` columns of the table are pseudonyms in the samples of failing rows."""
    name = str(parse_table_name(table))
    if lh.catalog.get(QUALITY) is None:
        raise LakehouseError("no expectation results yet", "run a pipeline with expectations")
    quoted = string(name)
    results = lh.sql(
        f"""
        WITH recent AS (
            SELECT run_id, max(checked_at) AS last_checked FROM {QUALITY}
            WHERE dataset = {quoted} GROUP BY run_id ORDER BY last_checked DESC LIMIT {int(runs)}
        )
        SELECT q.run_id, q.expectation, q.check_type, q.action, {STATUS_SQL} AS status,
               q.passed, q.failed_rows, q.total_rows, q.detail, q.sample
        FROM {QUALITY} q JOIN recent USING (run_id)
        WHERE q.dataset = {quoted}
        ORDER BY recent.last_checked DESC, q.expectation
        """
    ).to_dicts()
    if not results:
        raise LakehouseError(
            f"no expectation results for {name}",
            "it has no expectations, or no run has checked it yet",
        )
    hidden = {c.lower() for c in masked}
    if hidden:
        from lakehouse.sql.masking import warehouse_key

        key = warehouse_key(lh.catalog)
        for r in results:
            r["sample"] = mask_sample(r["sample"], hidden, key)
    latest = [r for r in results if r["run_id"] == results[0]["run_id"]]
    shares = [
        1 - r["failed_rows"] / r["total_rows"] if r["total_rows"] else float(r["passed"])
        for r in latest
    ]
    score = round(100 * sum(shares) / len(shares), 1) if shares else 100.0
    quarantined = 0
    if lh.catalog.get(f"{name}_quarantine") is not None:
        quarantined = lh.table(f"{name}_quarantine").count()
    return {
        "table": name,
        "score": score,
        "status": overall_status([r["status"] for r in latest]),
        "results": results,
        "quarantined": quarantined,
    }


def quality_overview(lh: Lakehouse) -> list[dict[str, Any]]:
    """Per table, its latest run's checks: how many passed, warned and failed, the rows
    they found, and the worst status."""
    if lh.catalog.get(QUALITY) is None:
        return []
    rows = lh.sql(
        f"""
        WITH latest AS (
            SELECT *, {STATUS_SQL} AS status FROM {QUALITY}
            QUALIFY dense_rank() OVER (PARTITION BY dataset ORDER BY checked_at DESC) = 1
        )
        SELECT dataset AS table, max(checked_at) AS checked_at, count(*) AS checks,
               count(*) FILTER (WHERE status = 'passed') AS passed,
               count(*) FILTER (WHERE status = 'warning') AS warnings,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               sum(failed_rows) AS failed_rows, max(run_id) AS run_id
        FROM latest GROUP BY dataset ORDER BY dataset
        """
    ).to_dicts()
    for row in rows:
        row["status"] = overall_status(["failed"] * row["failed"] + ["warning"] * row["warnings"])
    return rows


def mask_sample(sample: str | None, columns: set[str], key: bytes) -> str | None:
    """A stored sample (JSON: a list of rows as objects) with the values of ``columns``
    (lower-case names) replaced by their pseudonyms; a sample that cannot be read is
    withheld whole rather than shown raw."""
    from lakehouse.sql.masking import pseudonym

    if not sample:
        return sample
    try:
        rows = json.loads(sample)
    except ValueError:
        return None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    for row in rows:
        for name in row:
            if name.lower() in columns:
                row[name] = pseudonym(row[name], key)
    return json.dumps(rows)


def quality_scores(lh: Lakehouse, table: str, runs: int = 30) -> list[dict[str, Any]]:
    """The table's quality score at each of the last ``runs`` runs that checked it, oldest
    first: ``{run_id, checked_at, score, checks, failed}`` (the score as
    ``quality_report`` computes it for a run)."""
    name = str(parse_table_name(table))
    if lh.catalog.get(QUALITY) is None:
        return []
    rows = lh.sql(
        f"""
        SELECT run_id, max(checked_at) AS checked_at,
               round(100 * avg(CASE WHEN total_rows > 0
                                    THEN 1 - failed_rows / total_rows
                                    ELSE CAST(passed AS INTEGER) END), 1) AS score,
               count(*) AS checks, count(*) FILTER (WHERE NOT passed) AS failed
        FROM {QUALITY} WHERE dataset = {string(name)}
        GROUP BY run_id ORDER BY checked_at DESC LIMIT {int(runs)}
        """
    ).to_dicts()
    return [
        {**r, "checked_at": r["checked_at"].isoformat() if r["checked_at"] else None}
        for r in reversed(rows)
    ]
