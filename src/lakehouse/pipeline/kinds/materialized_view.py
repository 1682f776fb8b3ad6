"""Materialized views: the query's rows, recomputed when an input moved. A view that the
plan found a refresh key for (``pipeline/incremental.py``) recomputes only the groups the
new rows of its input fall in, when they are few enough."""

from __future__ import annotations

from lakehouse.pipeline.incremental import RefreshKey
from lakehouse.pipeline.kinds.base import StoredKind
from lakehouse.pipeline.kinds.checks import check_table
from lakehouse.pipeline.kinds.compute import compute, staged
from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.kinds.marks import Marks
from lakehouse.pipeline.kinds.predicates import delta_literal, in_predicate
from lakehouse.pipeline.kinds.relations import registered
from lakehouse.pipeline.kinds.writes import write, write_quarantine
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.records import DatasetRun
from lakehouse.quoting import ident, typed_literal
from lakehouse.tables.format import NotAppendOnly

MAX_REFRESH_KEYS = 2000  # groups replaced by key at most; more: recomputed whole
COMPUTED = "__lh_computed"  # the recomputed groups' rows


class MaterializedView(StoredKind):
    rebuilt_when_redefined = True

    def refresh(self, ctx: RunContext, ds: Dataset, item: DatasetRun, marks: Marks) -> None:
        current = marks.current
        key = ctx.plan.refresh_keys.get(ds.name)
        if key is not None and marks.exists and not ctx.full(ds):
            since = marks.recorded.get(key.source)
            until = current[key.source]
            if since is not None and until is not None:
                try:
                    changes = ctx.lh.engine.changes_view(key.source, since, until)
                except NotAppendOnly:
                    changes = None
                if changes is not None and refresh_groups(ctx, ds, item, current, key, changes):
                    return
        item.strategy = "computed" if not marks.exists else ctx.recomputed(ds)
        files = staged(ctx, ds, ctx.pins(current), item)
        if files is not None:  # written by Spark's executors, committed here
            item.strategy += " (files written by Spark's executors)"
            write(ctx, ds, item, files, current, mode="overwrite")
            return
        split = compute(ctx, ds, ctx.pins(current), item)
        check_table(ctx.lh, ds, item, split.kept, None)
        write_quarantine(ctx, ds, split, current, "overwrite")
        write(ctx, ds, item, split.kept, current, mode="overwrite")


def refresh_groups(
    ctx: RunContext,
    ds: Dataset,
    item: DatasetRun,
    current: dict[str, int | None],
    key: RefreshKey,
    changes: str,
) -> bool:
    """Recompute the groups the new rows fall in. Groups the view lacks are appended;
    groups it has are replaced (by key, so only when they are few: else False)."""
    con = ctx.lh.engine.cursor()
    tag = abs(hash((ds.name, current[key.source])))
    groups = ident(f"__lh_groups_{tag}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {groups} AS "
        f"SELECT DISTINCT {key.expression} AS k FROM {changes}"
    )
    target = ctx.lh.engine.version_view(ds.name, ctx.version(ds.name) or 0)
    column = ident(key.column)
    existing = con.sql(
        f"SELECT DISTINCT {column} FROM {target} WHERE {column} IN (SELECT k FROM {groups})"
    ).to_arrow_table()
    count = con.sql(f"SELECT count(*) FROM {groups}").fetchall()[0][0]
    if existing.num_rows > MAX_REFRESH_KEYS:
        return False
    item.strategy = f"incremental: {count} {key.column} group(s), {existing.num_rows} replaced"
    if count == 0:
        write(ctx, ds, item, None, current, mode="append")
        return True
    source = ctx.lh.engine.version_view(key.source, current[key.source] or 0)
    view = ident(f"__lh_rows_{tag}")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source} "
        f"WHERE ({key.expression}) IN (SELECT k FROM {groups})"
    )
    pins = ctx.pins(current)
    pins[key.source] = view
    split = compute(ctx, ds, pins, item)
    check_table(ctx.lh, ds, item, split.kept, None)
    write_quarantine(ctx, ds, split, current, "append")
    if existing.num_rows == 0:
        write(ctx, ds, item, split.kept, current, mode="append")
        return True
    values = existing.column(0).to_pylist()
    known = in_predicate(column, values, typed_literal)
    with registered(con, COMPUTED, split.kept) as computed:
        replacing = con.sql(f"SELECT * FROM {computed} WHERE {known}").to_arrow_table()
        adding = con.sql(
            f"SELECT * FROM {computed} WHERE NOT coalesce({known}, false)"
        ).to_arrow_table()
    predicate = in_predicate(column, values, delta_literal)
    # Two commits when groups are both replaced and added; the input versions go with the
    # second, so a crash in between only repeats the work.
    if adding.num_rows:
        write(ctx, ds, item, replacing, {}, mode="overwrite", predicate=predicate)
        write(ctx, ds, item, adding, current, mode="append")
    else:
        write(ctx, ds, item, replacing, current, mode="overwrite", predicate=predicate)
    return True
