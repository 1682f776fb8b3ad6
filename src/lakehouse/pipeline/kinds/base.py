"""What every kind of dataset does in a run: bring its table up to date with its inputs.

A stored kind reads the marks its table carries; when no input moved and its definition
is the same, the table is left as it is, else the kind refreshes it (``refresh``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.kinds.marks import Marks, pending_quarantine, read_marks
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.records import DatasetRun


class Kind(ABC):
    """One kind of dataset (``Dataset.kind``)."""

    # whether its table's lineage comes from its definition (its query and inputs)
    lineage: ClassVar[bool] = True
    # whether its table is rebuilt from all rows when its definition changes
    rebuilt_when_redefined: ClassVar[bool] = False

    @abstractmethod
    def run(self, ctx: RunContext, ds: Dataset, item: DatasetRun) -> None:
        """Bring the dataset's table up to date, its figures in ``item``."""


class StoredKind(Kind):
    """A kind whose table carries the marks of what it read: left as it is when no input
    moved and its definition is the same, else refreshed."""

    def run(self, ctx: RunContext, ds: Dataset, item: DatasetRun) -> None:
        marks = read_marks(ctx, ds)
        item.inputs = dict(marks.current)
        item.version_before = marks.version_before
        if marks.redefined and self.rebuilt_when_redefined:
            ctx.rebuild.add(ds.name)
        elif marks.exists and not marks.moved and not ctx.full_refresh:
            item.status, item.version = "unchanged", item.version_before
            return
        self.refresh(ctx, ds, item, marks)
        item.status = "ok"

    @abstractmethod
    def refresh(self, ctx: RunContext, ds: Dataset, item: DatasetRun, marks: Marks) -> None:
        """Compute the rows the table needs and write them."""


class StreamKind(StoredKind):
    """A kind that reads the rows its streaming inputs gained since its last write."""

    def refresh(self, ctx: RunContext, ds: Dataset, item: DatasetRun, marks: Marks) -> None:
        recorded = marks.recorded
        pending = pending_quarantine(ctx, ds, recorded, marks.current)
        if pending is not None and not ctx.full(ds) and marks.exists:
            # A run stopped between this dataset's quarantine and its table: first the exact
            # range the quarantine holds (not quarantined twice), then the rest.
            ctx.skip_quarantine = True
            try:
                self.step(ctx, ds, item, pending, recorded, True)
            finally:
                ctx.skip_quarantine = False
            recorded = {**recorded, **pending}
        self.step(ctx, ds, item, marks.current, recorded, marks.exists)
        if marks.redefined and not ctx.full_refresh:
            item.strategy += " (definition changed: it applies to new rows; --full-refresh"
            item.strategy += " recomputes the rows written before)"

    @abstractmethod
    def step(
        self,
        ctx: RunContext,
        ds: Dataset,
        item: DatasetRun,
        current: dict[str, int | None],
        recorded: dict[str, int | None],
        exists: bool,
    ) -> None:
        """Process the input rows from the ``recorded`` versions to the ``current`` ones."""
