"""Lineage of pipeline datasets: which tables and columns each dataset is computed from.

* :mod:`lakehouse.lineage.columns` reads it from a dataset's SQL;
* the catalog stores it (``Catalog.record_lineage`` / ``Catalog.lineage_edges``);
* :mod:`lakehouse.lineage.graph` walks it up and down and works out the impact of a change;
* :mod:`lakehouse.lineage.openlineage` exports it as OpenLineage run events (imported on
  first use: the OpenLineage client takes a while to load).
"""

from __future__ import annotations

from typing import Any

from lakehouse.lineage.columns import ColumnEdge, column_lineage, definition_edges, table_inputs
from lakehouse.lineage.graph import (
    LineageGraph,
    downstream,
    impact,
    lineage_json,
    lineage_report,
    render_tree,
    upstream,
)

_OPENLINEAGE = ("openlineage_events", "write_openlineage")

__all__ = [
    "ColumnEdge",
    "LineageGraph",
    "column_lineage",
    "definition_edges",
    "downstream",
    "impact",
    "lineage_json",
    "lineage_report",
    "openlineage_events",
    "render_tree",
    "table_inputs",
    "upstream",
    "write_openlineage",
]


def __getattr__(name: str) -> Any:
    if name in _OPENLINEAGE:
        from lakehouse.lineage import openlineage

        return getattr(openlineage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
