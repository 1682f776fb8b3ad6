"""CDC datasets: change rows applied to a table of each key's latest state (SCD type 1) or
its history (SCD type 2). A run recomputes only the keys with new changes, from every
change of those keys (see ``pipeline/cdc.py``); a full refresh rebuilds from all changes."""

from __future__ import annotations

import pyarrow as pa

from lakehouse.pipeline.cdc import DELETED, history, latest_state
from lakehouse.pipeline.kinds.base import StreamKind
from lakehouse.pipeline.kinds.checks import check_table
from lakehouse.pipeline.kinds.compute import compute, query_columns
from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.kinds.relations import registered, temp_table
from lakehouse.pipeline.kinds.writes import write, write_quarantine
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.quality import flag_columns, with_flags
from lakehouse.pipeline.records import DatasetRun
from lakehouse.quoting import ident

CHANGES = "__lh_changes"  # the changes computed on a rebuild
NEW = "__lh_new"  # the new changes of an incremental run
TOUCHED = "__lh_touched"  # the keys they touch
KEY_CHANGES = "__lh_key_changes"  # every change of those keys


class Cdc(StreamKind):
    rebuilt_when_redefined = True

    def step(
        self,
        ctx: RunContext,
        ds: Dataset,
        item: DatasetRun,
        current: dict[str, int | None],
        recorded: dict[str, int | None],
        exists: bool,
    ) -> None:
        if ctx.full(ds) or not exists:
            self.rebuild(ctx, ds, item, current)
        else:
            self.apply(ctx, ds, item, current, recorded)

    def rebuild(
        self, ctx: RunContext, ds: Dataset, item: DatasetRun, current: dict[str, int | None]
    ) -> None:
        """The table from all the changes."""
        pins = ctx.pins(current)
        con = ctx.lh.engine.cursor()
        item.strategy = "built from all changes" + (
            " (definition changed)" if ds.name in ctx.rebuild else ""
        )
        split = compute(ctx, ds, pins, item)
        with registered(con, CHANGES, split.kept) as changes:
            sql = latest_state(ds, changes, False) if ds.scd == 1 else history(ds, changes)
            state = con.sql(sql).to_arrow_table()
        check_table(ctx.lh, ds, item, state, None)
        write_quarantine(ctx, ds, split, current, "overwrite")
        write(ctx, ds, item, state, current, mode="overwrite")

    def apply(
        self,
        ctx: RunContext,
        ds: Dataset,
        item: DatasetRun,
        current: dict[str, int | None],
        recorded: dict[str, int | None],
    ) -> None:
        """The keys with new changes, recomputed from all their changes."""
        pins = ctx.pins(current)
        con = ctx.lh.engine.cursor()
        split = compute(ctx, ds, ctx.new_rows_pins(ds, current, recorded), item)
        keys = ", ".join(ident(k) for k in ds.keys)
        with registered(con, NEW, split.kept) as new:
            touched = con.sql(f"SELECT DISTINCT {keys} FROM {new}").to_arrow_table()
        item.strategy = f"{touched.num_rows} key(s) with new changes"
        write_quarantine(ctx, ds, split, current, "append")
        if touched.num_rows == 0:
            write(ctx, ds, item, None, current, mode="append")
            return
        state = self.key_state(ctx, ds, pins, touched)
        check_table(ctx.lh, ds, item, state, None)
        if ds.scd == 1:
            write(ctx, ds, item, state, current, mode="merge", merge_delete=DELETED)
        else:
            # A version is one change of its key: its sequence tells it apart (two changes
            # in one transaction share their valid_from time).
            seq = ds.sequence_by
            version = seq if seq and seq in state.column_names else "valid_from"
            write(ctx, ds, item, state, current, mode="merge", keys=[*ds.keys, version])

    def key_state(
        self, ctx: RunContext, ds: Dataset, pins: dict[str, str], touched: pa.Table
    ) -> pa.Table:
        """The state (SCD 1, deleted keys flagged) or history (SCD 2) of the ``touched``
        keys, from every change of them, new and old, in sequence order."""
        assert ds.sql is not None
        con = ctx.lh.engine.cursor()
        flags = flag_columns(ds.expectations)
        good = " AND ".join(c for e, c in flags if e.action in ("drop", "quarantine")) or "true"
        plain = [c for c in query_columns(ctx.lh, ds, pins) if not c.startswith("__lh_ok_")]
        keys = ", ".join(ident(k) for k in ds.keys)
        with registered(con, TOUCHED, touched) as keyed:
            flagged = with_flags(ds.sql, ds.expectations, plain)
            text, _ = ctx.lh.engine.prepare(
                f"SELECT {', '.join(ident(c) for c in plain)} FROM ({flagged}) AS __lh_all "
                f"WHERE {good} AND ({keys}) IN (SELECT {keys} FROM {keyed})",
                pins,
            )
            with temp_table(con, KEY_CHANGES, text) as changes:
                sql = latest_state(ds, changes, True) if ds.scd == 1 else history(ds, changes)
                state: pa.Table = con.sql(sql).to_arrow_table()
        return state
