"""A table's options as the catalog and the table's first commit record them."""

from __future__ import annotations

import json
from typing import Any

from lakehouse.config import TableOptions


def options_dict(o: TableOptions) -> dict[str, Any]:
    return {
        "partition_by": list(o.partition_by) if o.partition_by is not None else None,
        "date_column": o.date_column,
        "granularity": o.granularity,
        "compression": o.compression,
        "retention_days": o.retention_days,
        "metadata_columns": o.metadata_columns,
        "keys": list(o.keys),
        "owner": o.owner,
        "description": o.description,
        "tags": list(o.tags),
        "column_tags": {k: list(v) for k, v in o.column_tags.items()},
        "format": o.format,
    }


def options_from_catalog(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    for k in ("partition_by", "keys", "tags"):
        if out.get(k) is not None:
            out[k] = tuple(out[k])
    out["keys"] = out.get("keys") or ()
    out["tags"] = out.get("tags") or ()
    out["column_tags"] = {k: tuple(v) for k, v in (out.get("column_tags") or {}).items()}
    return out


def options_at_creation(history: list[dict[str, Any]]) -> TableOptions | None:
    """The options a table was created with (see ``delta_write.create``), if its first
    commit in ``history`` (newest first) records them."""
    if not history:
        return None
    first = history[-1]
    text = first.get("lakehouse.options") if first.get("version", 0) == 0 else None
    if not text:
        return None
    try:
        return TableOptions(**options_from_catalog(json.loads(text)))
    except (TypeError, ValueError):
        return None
