"""One run of a pipeline at a time."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


@contextmanager
def pipeline_lock(lh: Lakehouse, name: str) -> Iterator[None]:
    """One run of a pipeline at a time; the kernel releases the lock if the process dies."""
    if not lh.local:
        yield
        return
    path = Path(lh.root) / "_pipelines" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LakehouseError(
                f"pipeline {name} is already running in another process",
                "wait for it to finish (lakehouse runs shows it)",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
