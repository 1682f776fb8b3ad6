"""Restoring a table to an earlier version, with what a pipeline needs to recompute
what the restore took away."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


@dataclass(frozen=True)
class Restored:
    table: str
    asked: str
    """The version or timestamp asked for, as given."""
    version: int
    """The table's new version: a restore is a commit of its own."""


def restore_table(lh: Lakehouse, table: str, version: int | str | datetime) -> Restored:
    """Make ``table``'s content what it was at ``version`` (a number, a number as text,
    or a timestamp: the version then current), as a new commit.

    The input reset comes with it, in the same commit: the versions of the tables the
    catalog's lineage says this one is computed from go back to what they were at that
    version, and so do the identifiers of the files, offsets or batches a source wrote
    since; the table's quarantine (``<table>_quarantine``) goes back to the version the
    restored one was written with. The next run then recomputes what the restore took
    away, and every quarantined row is where that run expects it."""
    target = lh.table(table)
    new = target.restore(version)
    return Restored(str(target.name), str(version), new)
