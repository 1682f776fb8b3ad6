"""Files datasets: every data file of a folder that is not in the bronze table yet, read
into it once (ingestion keeps what could not be read in the table's quarantine)."""

from __future__ import annotations

from lakehouse.pipeline.kinds.base import Kind
from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.model import Dataset
from lakehouse.pipeline.quality import RESCUED, CheckResult
from lakehouse.pipeline.records import DatasetRun
from lakehouse.quoting import ident, string

READABLE = "readable_record"  # the quality result of a files dataset's ingestion


class Files(Kind):
    lineage = False

    def run(self, ctx: RunContext, ds: Dataset, item: DatasetRun) -> None:
        from lakehouse.ingest.files import ingest_folder

        assert ds.path is not None
        folder = ctx.pipeline.expand(ds.path, ctx.lh.root)
        before = ctx.existing(ds.name)
        quarantine = ctx.existing(ds.quarantine)
        item.version_before = ctx.version(ds.name) if before is not None else None
        ctx.remember(ds.name, before, [])
        ctx.remember(ds.quarantine, quarantine, [])
        done = ingest_folder(
            ctx.lh,
            folder,
            ds.name,
            source_system=ds.source_system or f"pipeline:{ctx.pipeline.name}",
            on_file=lambda path, rows: ctx.notify("file", ds.name, {"file": str(path)}),
            options=ds.options,
        )
        ctx.forget(ds.name)
        ctx.forget(ds.quarantine)
        item.rows_read = done.rows + done.quarantined
        item.rows_written = done.rows
        item.rows_quarantined = done.quarantined
        if done.files_ingested:  # the records read this run: readable, or quarantined
            item.checks.append(
                CheckResult(
                    READABLE,
                    "readable",
                    "quarantine",
                    done.quarantined == 0,
                    done.quarantined,
                    item.rows_read,
                    f"{done.quarantined} of {item.rows_read} record(s) in "
                    f"{len(done.files_ingested)} new file(s) could not be read; their raw text "
                    f"and reason are in {ds.quarantine}"
                    if done.quarantined
                    else "",
                    done.bad_sample,
                )
            )
        item.version = ctx.version(ds.name) if ctx.existing(ds.name) is not None else None
        item.strategy += f" ({len(done.files_ingested)} new file(s))"
        item.status = "ok"
        item.rescued = rescued(ctx, ds, item.version_before, item.version)


def rescued(ctx: RunContext, ds: Dataset, before: int | None, after: int | None) -> dict[str, int]:
    """Values rescued (kept in ``_rescued_data``, the column left NULL) per column, in the
    rows the dataset's table gained from version ``before`` to ``after``."""
    if after is None or after == before or RESCUED not in ctx.lh.table(ds.name).schema.names:
        return {}
    rows = ctx.changes(ds, ds.name, before, after)
    column = ident(RESCUED)
    found = ctx.lh.engine.cursor().sql(
        f"SELECT key, count(*) FROM (SELECT unnest(json_keys({column})) AS key FROM {rows} "
        f"WHERE {column} IS NOT NULL AND {column} NOT IN ({string('')}, {string('{}')})) "
        "GROUP BY key"
    )
    return {key: int(n) for key, n in sorted(found.fetchall())}
