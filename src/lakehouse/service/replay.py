"""Replaying a dataset's quarantined rows through its (fixed) checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name
from lakehouse.pipeline.definition import load_pipeline
from lakehouse.pipeline.records import pipeline_folder
from lakehouse.pipeline.replay import replay_quarantine

if TYPE_CHECKING:
    from pathlib import Path

    from lakehouse.warehouse import Lakehouse


def replay(
    lh: Lakehouse,
    table: str,
    folder: str | Path | None = None,
    variables: dict[str, str] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Replay ``table``'s quarantined rows with the pipeline in ``folder`` (by default the
    one whose latest run wrote the table). Returns the figures: ``replayed`` rows read,
    ``written``, ``still_failing``, ``dropped`` and ``dropped_by`` expectation,
    ``deduplicated``, and the replay's ``run_id`` (None if there was no quarantine)."""
    if folder is None:
        folder = pipeline_folder(lh, str(parse_table_name(table)))
        if folder is None:
            raise LakehouseError(
                f"no recorded run of a pipeline wrote {table}",
                f"name the pipeline's folder: lakehouse replay {table} -p FOLDER",
            )
    pipeline = load_pipeline(folder, variables)
    return replay_quarantine(lh, pipeline, table, run_id)
