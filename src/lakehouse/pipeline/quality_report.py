"""A table's expectation results, read back from ``system.quality_results``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def quality_report(lh: Lakehouse, table: str, runs: int = 1) -> dict[str, Any]:
    """The results of the last ``runs`` runs that checked ``table``, newest first; the score
    is the share of checked rows that passed, averaged over the latest run's checks."""
    name = str(parse_table_name(table))
    if lh.catalog.get("system.quality_results") is None:
        raise LakehouseError("no expectation results yet", "run a pipeline with expectations")
    quoted = "'" + name.replace("'", "''") + "'"
    results = lh.sql(
        f"""
        WITH recent AS (
            SELECT run_id, max(checked_at) AS last_checked FROM system.quality_results
            WHERE dataset = {quoted} GROUP BY run_id ORDER BY last_checked DESC LIMIT {int(runs)}
        )
        SELECT q.run_id, q.expectation, q.check_type, q.action, q.passed, q.failed_rows,
               q.total_rows, q.detail, q.sample
        FROM system.quality_results q JOIN recent USING (run_id)
        WHERE q.dataset = {quoted}
        ORDER BY recent.last_checked DESC, q.expectation
        """
    ).to_dicts()
    if not results:
        raise LakehouseError(
            f"no expectation results for {name}",
            "it has no expectations, or no run has checked it yet",
        )
    latest = [r for r in results if r["run_id"] == results[0]["run_id"]]
    shares = [
        1 - r["failed_rows"] / r["total_rows"] if r["total_rows"] else float(r["passed"])
        for r in latest
    ]
    score = round(100 * sum(shares) / len(shares), 1) if shares else 100.0
    quarantined = 0
    if lh.catalog.get(f"{name}_quarantine") is not None:
        quarantined = lh.table(f"{name}_quarantine").count()
    return {"table": name, "score": score, "results": results, "quarantined": quarantined}
