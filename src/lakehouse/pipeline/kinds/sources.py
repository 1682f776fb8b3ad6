"""Api and database datasets: a REST API's records or a database table, into bronze
exactly once by ``lakehouse.ingest.rest`` and ``lakehouse.ingest.database`` (the marks
they commit with the rows say what was read; see docs/SOURCES.md). Variables
(``${name}``) in the source's settings are expanded."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from lakehouse.pipeline.kinds.base import Kind
from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.records import DatasetRun


def _expanded(ctx: RunContext, value: Any) -> Any:
    if isinstance(value, str):
        return ctx.pipeline.expand(value, ctx.lh.root)
    if isinstance(value, dict):
        return {k: _expanded(ctx, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expanded(ctx, v) for v in value]
    return value


class _Source(Kind):
    lineage = False

    def run(self, ctx: RunContext, ds: Dataset, item: DatasetRun) -> None:
        before = ctx.existing(ds.name)
        item.version_before = ctx.version(ds.name) if before is not None else None
        ctx.remember(ds.name, before, [])
        ctx.remember(ds.quarantine, ctx.existing(ds.quarantine), [])
        self.load(ctx, ds, item, ds.source_system or f"pipeline:{ctx.pipeline.name}")
        ctx.forget(ds.name)
        ctx.forget(ds.quarantine)
        item.version = ctx.version(ds.name) if ctx.existing(ds.name) is not None else None
        item.status = "ok"

    @abstractmethod
    def load(self, ctx: RunContext, ds: Dataset, item: DatasetRun, system: str) -> None:
        """Land the source's new rows in ``ds.name`` (its bad records in quarantine)."""


class Api(_Source):
    def load(self, ctx: RunContext, ds: Dataset, item: DatasetRun, system: str) -> None:
        from lakehouse.ingest.rest import ingest_api
        from lakehouse.ingest.rest_config import RestSource

        settings = _expanded(ctx, ds.api or {})
        source = RestSource.model_validate({"source_system": system, **settings, "into": ds.name})
        done = ingest_api(ctx.lh, source)
        item.rows_read = done.records
        item.rows_written = done.rows
        item.rows_quarantined = done.quarantined
        item.rows_deduplicated = done.already_held
        item.strategy += f" ({done.pages} page(s), mark {done.mark})"


class Database(_Source):
    def load(self, ctx: RunContext, ds: Dataset, item: DatasetRun, system: str) -> None:
        from lakehouse.ingest.database import ingest_table

        settings = _expanded(ctx, ds.database or {})
        done = ingest_table(
            ctx.lh,
            settings["url"],
            settings["table"],
            ds.name,
            incremental_column=settings.get("incremental_column"),
            source_system=system,
            parallel=settings.get("parallel"),
        )
        item.rows_read = done.read
        item.rows_written = done.rows
        item.rows_deduplicated = done.already_held
        item.strategy += f" (mark {done.mark})" if done.mode == "incremental" else ""
