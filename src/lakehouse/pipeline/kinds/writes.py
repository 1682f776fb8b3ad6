"""A run's writes of a dataset's table and of its quarantine: each remembered for a
rollback, each carrying the marks of the input versions its rows come from."""

from __future__ import annotations

import pyarrow as pa

from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.kinds.marks import write_marks
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.quality import Split
from lakehouse.pipeline.records import DatasetRun
from lakehouse.tables.staged import StagedFiles
from lakehouse.tables.writer import WriteMode


def write(
    ctx: RunContext,
    ds: Dataset,
    item: DatasetRun,
    rows: pa.Table | StagedFiles | None,
    current: dict[str, int | None],
    *,
    mode: WriteMode,
    predicate: str | None = None,
    keys: list[str] | None = None,
    merge_delete: str | None = None,
) -> None:
    """Write ``rows`` (None: nothing new, only the input versions seen; files another
    engine wrote into the table's folder: committed as they are) to the dataset's table
    with the marks of the ``current`` input versions."""
    target = ctx.existing(ds.name)
    ctx.remember(ds.name, target, [*current, ds.quarantine])
    if rows is None:
        rows = ctx.lh.engine.query(f"SELECT * FROM {ds.name} LIMIT 0").to_arrow()
    options = {k: v for k, v in ds.options.items() if k != "keys"}
    marks = write_marks(ctx, ds, current)
    result = ctx.lh.write(
        ds.name,
        rows,
        mode=mode,
        keys=keys or ds.keys or None,
        predicate=predicate,
        evolve=True,
        input_versions=marks,
        merge_delete=merge_delete,
        **options,
    )
    item.rows_written += result.rows if mode != "merge" else result.inserted + result.updated
    item.version = result.version
    ctx.versions[ds.name] = result.version


def write_quarantine(
    ctx: RunContext, ds: Dataset, split: Split, current: dict[str, int | None], mode: WriteMode
) -> None:
    """The rows the quarantine checks moved out, to the dataset's quarantine table."""
    if split.quarantined is None or ctx.skip_quarantine:
        return
    if split.quarantined.num_rows == 0 and mode == "append":
        return
    ctx.remember(ds.quarantine, ctx.existing(ds.quarantine), list(current))
    ctx.forget(ds.quarantine)
    ctx.lh.write(
        ds.quarantine,
        split.quarantined,
        mode=mode,
        evolve=True,
        input_versions={t: v for t, v in current.items() if v is not None},
        description=f"Rows of {ds.name} that failed a quarantine expectation",
    )
