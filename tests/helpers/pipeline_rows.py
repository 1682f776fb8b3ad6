"""A pipeline's tables as rows, to compare two runs (engines, formats, a killed run and
its rerun) row for row."""

from __future__ import annotations

from typing import Any

from lakehouse import Lakehouse

# Columns that say when and from which path a row was loaded, not what it holds.
LOAD_COLUMNS = ("_ingested_at", "_ingest_date", "_source")


def contents(lh: Lakehouse, pipeline: Any) -> dict[str, list]:
    """Each stored table of the pipeline (and quarantine) with its rows sorted, without
    the load columns; views are left out (they are computed from the tables)."""
    out = {}
    names = set(lh.catalog.names())
    for ds in pipeline.datasets.values():
        for table in (ds.name, ds.quarantine):
            if table not in names or lh.catalog.get(table).format == "view":
                continue
            columns = [c for c in lh.table(table).schema.names if c not in LOAD_COLUMNS]
            select = ", ".join(f'"{c}"' for c in columns)
            out[table] = sorted(lh.sql(f"SELECT {select} FROM {table}").rows(), key=repr)
    return out
