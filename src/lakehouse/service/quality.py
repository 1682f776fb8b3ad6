"""Expectation results: one table's latest runs with its quality score, and an overview
of every table's latest run. Samples of failing rows come back raw unless the caller
names the columns to mask in them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lakehouse.pipeline.quality_report import quality_overview as overview
from lakehouse.pipeline.quality_report import quality_report

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def table_quality(
    lh: Lakehouse, table: str, runs: int = 1, masked: Iterable[str] = ()
) -> dict[str, Any]:
    """The results of the last ``runs`` runs that checked ``table``, newest first, with
    its ``score``, ``status`` and how many rows its quarantine holds (``quarantined``);
    the ``masked`` columns are pseudonyms in the samples of failing rows. Raises
    ``LakehouseError`` if nothing checked the table yet."""
    return quality_report(lh, table, runs, masked)


def quality_overview(lh: Lakehouse) -> list[dict[str, Any]]:
    """Per table, its latest run's checks: how many passed, warned and failed, the rows
    they found, and the worst status (an empty list before any run checked anything)."""
    return overview(lh)


def quality_over_time(lh: Lakehouse, table: str, runs: int = 30) -> list[dict[str, Any]]:
    """The table's quality score at each of its last ``runs`` checking runs, oldest first
    (an empty list before any run checked it)."""
    from lakehouse.pipeline.quality_report import quality_scores

    return quality_scores(lh, table, runs)
