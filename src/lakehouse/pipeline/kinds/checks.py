"""A dataset's expectations applied to a run's rows: row checks split them into kept,
quarantined and dropped rows; table checks look at the table as the write will leave it.
Outcomes are added to the dataset's figures; a failing check of action ``fail`` stops it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.quality import Split, table_checks
from lakehouse.pipeline.records import DatasetRun
from lakehouse.quoting import ident
from lakehouse.scratch import scratch

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

ROWS = "__lh_rows"
OLD = "__lh_old"


class ExpectationFailed(LakehouseError):
    pass


def count_split(ds: Dataset, item: DatasetRun, split: Split) -> Split:
    """Add the row checks' outcome to the figures; raise if a ``fail`` check failed."""
    item.checks += split.results
    item.rows_dropped += split.dropped
    for name, count in split.dropped_by.items():
        item.dropped_by[name] = item.dropped_by.get(name, 0) + count
    if split.quarantined is not None:
        item.rows_quarantined += split.quarantined.num_rows
    if split.failed:
        raise ExpectationFailed(
            f"{ds.name}: expectation(s) {', '.join(split.failed)} failed "
            f"(action fail); nothing of this run was kept",
            "see lakehouse quality " + ds.name + " for the failing rows",
        )
    return split


def check_table(
    lh: Lakehouse, ds: Dataset, item: DatasetRun, rows: pa.Table | None, existing: str | None
) -> None:
    """The table checks over ``rows`` (and the rows of table ``existing``, when they are
    added to it)."""
    checks = [e for e in ds.expectations if not e.row_level]
    if not checks or rows is None:
        return
    con = scratch()
    try:
        con.register(ROWS, rows)
        relation = ident(ROWS)
        if existing is not None:
            old = lh.engine.read(existing)
            con.register(OLD, old)
            relation = f"(SELECT * FROM {ident(OLD)} UNION ALL BY NAME SELECT * FROM {relation})"
        results = table_checks(con, relation, checks)
    finally:
        con.close()
    item.checks += results
    failed = [r.expectation for r in results if not r.passed and r.action == "fail"]
    if failed:
        raise ExpectationFailed(
            f"{ds.name}: expectation(s) {', '.join(failed)} failed (action fail): "
            + "; ".join(r.detail for r in results if r.expectation in failed),
            "nothing of this run was kept; see lakehouse quality " + ds.name,
        )
