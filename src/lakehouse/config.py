"""Per-layer table defaults, overridable per table (SPEC section 1)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_WAREHOUSE = "lakehouse_data"


def default_warehouse() -> str:
    """The warehouse a user gets when naming none: ``LAKEHOUSE_WAREHOUSE`` or ./lakehouse_data."""
    return os.environ.get("LAKEHOUSE_WAREHOUSE") or str(Path(DEFAULT_WAREHOUSE))


@dataclass(frozen=True)
class TableOptions:
    """How a table is stored and described. Unset fields fall back to the layer's defaults.

    ``date_column`` names the business date a silver or gold table is partitioned by; the
    layer's granularity (day, month or year) turns it into a partition column named
    ``<date_column>_<granularity>``. ``partition_by`` names partition columns explicitly and
    wins over ``date_column``.
    """

    partition_by: tuple[str, ...] | None = None
    date_column: str | None = None
    granularity: str | None = None  # day | month | year
    compression: str | None = None  # snappy | zstd | ...
    retention_days: int | None = None
    metadata_columns: bool | None = None  # bronze lineage columns (_ingested_at, ...)
    keys: tuple[str, ...] = ()
    owner: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    column_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    format: str | None = None  # delta | iceberg: the table format of a table to be made

    def merged_over(self, base: TableOptions) -> TableOptions:
        """These options with every unset field taken from ``base``."""
        values = {}
        for name in self.__dataclass_fields__:
            mine = getattr(self, name)
            values[name] = mine if mine not in (None, (), {}) else getattr(base, name)
        return replace(base, **values)


LAYER_DEFAULTS: dict[str, TableOptions] = {
    "bronze": TableOptions(
        partition_by=("_ingest_date",),
        granularity="day",
        compression="snappy",
        retention_days=90,
        metadata_columns=True,
    ),
    "silver": TableOptions(
        granularity="day", compression="zstd", retention_days=730, metadata_columns=False
    ),
    "gold": TableOptions(
        granularity="month", compression="zstd", retention_days=2555, metadata_columns=False
    ),
    "system": TableOptions(compression="zstd", retention_days=365, metadata_columns=False),
    "realtime": TableOptions(compression="zstd", retention_days=30, metadata_columns=False),
}


def layer_defaults(overrides: dict[str, dict[str, object]] | None) -> dict[str, TableOptions]:
    """The layers' defaults with the given fields (from the settings' ``layers``) over
    the built-in ones."""
    out = dict(LAYER_DEFAULTS)
    for layer, fields in (overrides or {}).items():
        known = TableOptions.__dataclass_fields__
        given = {k: v for k, v in fields.items() if v is not None and k in known}
        if "partition_by" in given:
            given["partition_by"] = tuple(given["partition_by"])  # type: ignore[arg-type]
        out[layer] = replace(out[layer], **given)  # type: ignore[arg-type]
    return out


def options_for(
    layer: str, given: TableOptions | None, defaults: dict[str, TableOptions] | None = None
) -> TableOptions:
    base = (defaults or LAYER_DEFAULTS)[layer]
    if given is None:
        return base
    merged = given.merged_over(base)
    # A table that names its own partitioning does not inherit the layer's default one.
    if given.partition_by is not None or given.date_column is not None:
        merged = replace(merged, partition_by=given.partition_by)
    return merged
