"""A table's expectation results, read back from ``system.quality_results``.

The stored samples of failing rows are raw (they are the engineer's tool); whoever reads
them through the API gets them masked by the same policy as the table itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def quality_report(
    lh: Lakehouse, table: str, runs: int = 1, masked: Iterable[str] = ()
) -> dict[str, Any]:
    """The results of the last ``runs`` runs that checked ``table``, newest first; the score
    is the share of checked rows that passed, averaged over the latest run's checks. The
    ``masked`` columns of the table are pseudonyms in the samples of failing rows."""
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
    return {"table": name, "score": score, "results": results, "quarantined": quarantined}


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
