"""Views: the query kept in the catalog, run when read; nothing is stored."""

from __future__ import annotations

from lakehouse.pipeline.kinds.base import Kind
from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.records import DatasetRun


class View(Kind):
    def run(self, ctx: RunContext, ds: Dataset, item: DatasetRun) -> None:
        assert ds.sql is not None
        ctx.lh.create_view(ds.name, ds.sql, description=ds.options.get("description"))
        item.status = "ok"
