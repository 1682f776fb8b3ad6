"""Replaying quarantined rows after a fix.

The rows of ``<table>_quarantine`` go through the dataset's expectations as they are now:
rows that pass are written to the table (once: the write carries the quarantine version it
replays as a transaction id), the quarantine keeps only the rows that still fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.definition import Pipeline
from lakehouse.pipeline.graph import resolve
from lakehouse.pipeline.quality import split_rows, with_flags

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def replay_quarantine(lh: Lakehouse, pipeline: Pipeline, table: str) -> dict[str, Any]:
    from lakehouse.pipeline.plan import validate
    from lakehouse.pipeline.run import Runner, pipeline_lock

    name = resolve(pipeline, table)
    ds = pipeline.datasets[name]
    if ds.kind != "append":
        raise LakehouseError(
            f"{name} is a {ds.kind}: only append datasets keep quarantined rows to replay",
            "materialized views and CDC tables are recomputed: fix the check and run again",
        )
    if lh.catalog.get(ds.quarantine) is None:
        return {"replayed": 0, "kept": 0, "still_failing": 0}
    with pipeline_lock(lh, pipeline.name):
        quarantine = lh.table(ds.quarantine)
        version = quarantine.version
        rows = lh.engine.read(ds.quarantine)
        if "_failed_expectations" in rows.column_names:
            rows = rows.drop_columns(["_failed_expectations"])
        if rows.num_rows == 0:
            return {"replayed": 0, "kept": 0, "still_failing": 0}
        con = lh.engine.cursor()
        con.register("__lh_replay", rows)
        try:
            flagged = lh.engine.query(
                with_flags("SELECT * FROM __lh_replay", ds.expectations)
            ).to_arrow()
        finally:
            con.unregister("__lh_replay")
        split = split_rows(flagged, ds.expectations)
        if split.failed:
            raise LakehouseError(
                f"{name}: replayed rows fail {', '.join(split.failed)} (action fail)",
                "nothing was replayed",
            )
        runner = Runner(lh, validate(pipeline, lh, bind=False))
        kept = split.kept
        if ds.keys:
            kept, _ = runner._new_keys(ds, kept, lh.catalog.get(name) is not None)
        lh.write(name, kept, evolve=True, txn=(f"lakehouse.replay:{ds.quarantine}", version))
        still = split.quarantined
        if still is None:
            still = rows.slice(0, 0)
        lh.write(ds.quarantine, still, mode="overwrite", evolve=True)
    return {
        "replayed": rows.num_rows,
        "kept": kept.num_rows,
        "still_failing": still.num_rows,
    }
