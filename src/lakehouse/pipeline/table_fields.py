"""What a dataset's header says of its table (description, owner, tags, column tags,
retention), kept in the catalog.

A table takes its options when it is created; these descriptive ones may change later
without touching the data, so every run puts the header's values in the catalog where
they differ. Fields the header does not give are left as they are (set by
``Table.set``, say).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.pipeline.model import Dataset
    from lakehouse.warehouse import Lakehouse

DESCRIPTIVE = ("description", "owner", "tags", "column_tags", "retention_days")


def header_fields(ds: Dataset) -> dict[str, Any]:
    """The descriptive fields the dataset's header gives, as the catalog holds them."""
    out: dict[str, Any] = {}
    for key in DESCRIPTIVE:
        if key not in ds.options or ds.options[key] is None:
            continue
        value = ds.options[key]
        if key == "tags":
            value = sorted(value)
        elif key == "column_tags":
            value = {str(c): sorted(tags) for c, tags in value.items()}
        out[key] = value
    return out


def sync_catalog(lh: Lakehouse, ds: Dataset) -> dict[str, Any]:
    """Put the header's descriptive fields in the catalog entry of the dataset's table
    where they differ; returns what changed."""
    info = lh.catalog.get(ds.name)
    if info is None:
        return {}
    have = {
        "description": info.description,
        "owner": info.owner,
        "tags": sorted(info.tags),
        "column_tags": {c: sorted(t) for c, t in info.column_tags.items()},
        "retention_days": info.retention_days,
    }
    changed = {k: v for k, v in header_fields(ds).items() if have[k] != v}
    if changed:
        lh.catalog.update_info(ds.name, **changed)
    return changed
