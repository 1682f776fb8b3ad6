"""Append datasets: each run adds the rows its query gives over the rows its streaming
inputs gained since the last run (all rows on a full refresh). With ``keys``, a key is
written once: the latest row by ``sequence_by``, replacing an older one of the table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.pipeline.kinds.base import StreamKind
from lakehouse.pipeline.kinds.checks import check_table
from lakehouse.pipeline.kinds.compute import compute
from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.kinds.relations import registered
from lakehouse.pipeline.kinds.writes import write, write_quarantine
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.records import DatasetRun
from lakehouse.quoting import ident
from lakehouse.tables.writer import WriteMode

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

BATCH = "__lh_batch"


class Append(StreamKind):
    def step(
        self,
        ctx: RunContext,
        ds: Dataset,
        item: DatasetRun,
        current: dict[str, int | None],
        recorded: dict[str, int | None],
        exists: bool,
    ) -> None:
        full = ctx.full(ds) or not exists
        pins = ctx.pins(current) if full else ctx.new_rows_pins(ds, current, recorded)
        item.strategy = "all input rows" if full else "new input rows"
        split = compute(ctx, ds, pins, item)
        kept = split.kept
        mode: WriteMode = "overwrite" if full else "append"
        if ds.keys:
            computed = kept.num_rows
            version = (ctx.version(ds.name) or 0) if exists and not full else None
            kept, replaced = new_keys(ctx.lh, ds, kept, version)
            item.rows_deduplicated += computed - kept.num_rows
            if replaced:
                mode = "merge"
        check_table(ctx.lh, ds, item, kept, None if full else ds.name)
        write_quarantine(ctx, ds, split, current, "overwrite" if full else "append")
        write(ctx, ds, item, kept, current, mode=mode)


def new_keys(
    lh: Lakehouse, ds: Dataset, batch: pa.Table, target_version: int | None
) -> tuple[pa.Table, bool]:
    """One row per key (the latest by ``sequence_by``), minus keys the table has, at
    ``target_version`` (None: not compared with the table), with an equal or newer sequence.
    Returns the rows and whether some replace existing ones."""
    keys = ", ".join(ident(k) for k in ds.keys)
    order = f"{ident(ds.sequence_by)} DESC" if ds.sequence_by else keys
    con = lh.engine.cursor()
    with registered(con, BATCH, batch) as rows:
        deduped = (
            f"SELECT * FROM {rows} QUALIFY row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY {order}) = 1"
        )
        if target_version is None:
            return con.sql(deduped).to_arrow_table(), False
        target = lh.engine.version_view(ds.name, target_version)
        on = " AND ".join(f"b.{ident(k)} IS NOT DISTINCT FROM t.{ident(k)}" for k in ds.keys)
        if ds.sequence_by:
            seq = ident(ds.sequence_by)
            newer = (
                f"SELECT b.* FROM ({deduped}) b LEFT JOIN {target} t ON {on} "
                f"WHERE t.{ident(ds.keys[0])} IS NULL OR b.{seq} > t.{seq}"
            )
            found = con.sql(newer).to_arrow_table()
            cols = ", ".join(f"t.{ident(k)}" for k in ds.keys)
            replaced = con.sql(
                f"SELECT count(*) FROM ({deduped}) b "
                f"JOIN (SELECT {cols}, {seq} FROM {target} t) t ON {on} WHERE b.{seq} > t.{seq}"
            ).fetchall()[0][0]
            return found, replaced > 0
        cols = ", ".join(ident(k) for k in ds.keys)
        found = con.sql(
            f"SELECT b.* FROM ({deduped}) b ANTI JOIN (SELECT {cols} FROM {target}) t ON {on}"
        ).to_arrow_table()
        return found, False
