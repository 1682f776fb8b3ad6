"""Lineage of pipeline datasets: which tables and columns each dataset is computed from.

* :mod:`lakehouse.lineage.columns` reads it from a dataset's SQL;
* the catalog stores it (``Catalog.record_lineage`` / ``Catalog.lineage_edges``);
* :mod:`lakehouse.lineage.graph` walks it up and down and works out the impact of a change;
* :mod:`lakehouse.lineage.tags` works out the ``pii`` a column inherits through it;
* :mod:`lakehouse.lineage.openlineage` exports it as OpenLineage run events.

The names below are imported on first use: the SQL parser and the OpenLineage client take
a while to load, and the access checks need only ``tags``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "ColumnEdge": "columns",
    "column_lineage": "columns",
    "definition_edges": "columns",
    "table_inputs": "columns",
    "LineageGraph": "graph",
    "downstream": "graph",
    "impact": "graph",
    "lineage_json": "graph",
    "lineage_report": "graph",
    "render_tree": "graph",
    "upstream": "graph",
    "openlineage_events": "openlineage",
    "write_openlineage": "openlineage",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
