"""The pipelines found in a folder."""

from __future__ import annotations

from pathlib import Path

from lakehouse.pipeline.definition import Pipeline, load_pipeline


def pipelines_in(folder: Path | None) -> dict[str, Pipeline]:
    """Every pipeline under ``folder``, by name: the folder itself if it holds a
    pipeline.yml, else its subfolders that do."""
    if folder is None or not folder.is_dir():
        return {}
    candidates = (
        [folder]
        if (folder / "pipeline.yml").exists()
        else sorted(p.parent for p in folder.glob("*/pipeline.yml"))
    )
    found: dict[str, Pipeline] = {}
    for path in candidates:
        pipeline = load_pipeline(path)
        found[pipeline.name] = pipeline
    return found
