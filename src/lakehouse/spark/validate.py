"""``lakehouse validate --engine spark``: every construct of a pipeline's queries and row
checks that Spark cannot run, with its file and line, before anything runs."""

from __future__ import annotations

from lakehouse.pipeline.errors import Problem
from lakehouse.pipeline.model import Dataset
from lakehouse.spark.translate import HINT, problems


def dataset_problems(ds: Dataset) -> list[Problem]:
    """What of the dataset's query and row checks has no Spark translation."""
    found = []
    if ds.sql is not None:
        for p in problems(ds.sql):
            line = ds.sql_line + p.line - 1
            found.append(Problem(ds.file, line, f"{ds.name} on Spark: {p.message}", HINT))
    for e in ds.expectations:
        if e.sql is None:
            continue
        for p in problems(f"SELECT ({e.sql})"):
            where = e.line or ds.line
            message = f"{ds.name} on Spark: expectation {e.name}: {p.message}"
            found.append(Problem(ds.file, where, message, HINT))
    return found
