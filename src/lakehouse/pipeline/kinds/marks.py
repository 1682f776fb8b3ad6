"""The marks a dataset's table carries with each write, in the same Delta commit as its
rows: the version of each input the rows come from, a number for the definition they were
computed by, and the version of the quarantine written with them. A run reads them back to
know what is new since (and what a stopped run left half done)."""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass

import sqlglot

from lakehouse.pipeline.kinds.context import RunContext
from lakehouse.pipeline.model import Dataset

# Recorded like an input's version with every write of a dataset: a number made from its
# definition, so a changed definition is seen even when no input moved.
DEFINITION = "lakehouse.definition"


@dataclass
class Marks:
    """What a dataset's table records against what the run sees."""

    current: dict[str, int | None]  # each input's version as this run reads it
    recorded: dict[str, int | None]  # each input's version the table's rows come from
    exists: bool  # whether the table does
    version_before: int | None  # the table's version before the run
    redefined: bool  # the definition changed since the table was written
    moved: list[str]  # inputs with rows the table has not seen


def read_marks(ctx: RunContext, ds: Dataset) -> Marks:
    current = {t: ctx.version(t) for t in ds.depends_on}
    target = ctx.existing(ds.name)
    before = ctx.version(ds.name) if target is not None else None
    recorded = target.input_versions([*current, DEFINITION]) if target is not None else {}
    redefined = target is not None and recorded.pop(DEFINITION, None) != definition_number(ds)
    moved = [t for t, v in current.items() if v is None or recorded.get(t) != v]
    return Marks(current, recorded, target is not None, before, redefined, moved)


def write_marks(ctx: RunContext, ds: Dataset, current: dict[str, int | None]) -> dict[str, int]:
    """The marks of a write of the dataset computed from the ``current`` input versions."""
    marks = {t: v for t, v in current.items() if v is not None}
    marks[DEFINITION] = definition_number(ds)
    if current:
        # The quarantine's version these rows go with (written just before; -1: none yet),
        # so a restore of the table takes its quarantine back to it.
        if ctx.existing(ds.quarantine) is not None:
            marks[ds.quarantine] = ctx.version(ds.quarantine) or 0
        elif any(e.action == "quarantine" for e in ds.expectations):
            marks[ds.quarantine] = -1
    return marks


def pending_quarantine(
    ctx: RunContext, ds: Dataset, recorded: dict[str, int | None], current: dict[str, int | None]
) -> dict[str, int | None] | None:
    """Input versions the quarantine has recorded beyond the table's, if any: a run stopped
    between writing the dataset's quarantine and its table."""
    quarantine = ctx.existing(ds.quarantine)
    if quarantine is None:
        return None
    ahead = quarantine.input_versions(list(current))
    streams = ds.streaming_inputs

    def beyond(table: str) -> bool:
        now, seen, until = ahead.get(table), recorded.get(table), current.get(table)
        return now is not None and seen is not None and seen < now <= (until or -1)

    if not any(beyond(t) for t in streams):
        return None
    return {t: (ahead[t] if t in streams else v) for t, v in current.items()}


def definition_number(ds: Dataset) -> int:
    """A number for what a dataset's rows depend on besides its inputs: its query (or
    function), kind, keys, change settings and row checks. Recorded with each write of the
    dataset, so a run sees an edited definition; comments and spacing do not count."""
    body: str | None = ds.sql
    if ds.function is not None:
        try:
            body = inspect.getsource(ds.function)
        except (OSError, TypeError):
            body = f"{ds.function.__module__}.{ds.function.__qualname__}"
    elif body is not None:
        try:
            body = sqlglot.transpile(body, read="duckdb", write="duckdb", comments=False)[0]
        except sqlglot.errors.SqlglotError:
            pass
    checks = [(e.name, e.check, e.action, e.sql, repr(e.params)) for e in ds.expectations]
    settings = [ds.kind, ds.keys, ds.scd, ds.sequence_by, ds.delete_when, ds.valid_time]
    text = json.dumps([body, settings, ds.except_columns, checks], default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:13], 16)
