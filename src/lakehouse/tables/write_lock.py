"""The write lock of a local table: every writer (the write path, deletes, restores,
compaction, vacuum) holds it shared while it opens the table and commits, so writers
still run side by side; a format conversion holds it alone, so no writer commits to the
old format while its rows are copied, and a writer that comes meanwhile waits and then
writes the converted table. The kernel releases a lock whose process died. Object
stores get no lock (a conversion needs a local warehouse)."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakehouse.errors import TableBusyError
from lakehouse.names import TableName
from lakehouse.storage import Locations
from lakehouse.tables.snapshot import is_local, local_path


def lock_path(where: Locations, name: TableName) -> Path | None:
    uri = where.table_uri(name)
    if not is_local(uri):
        return None
    return Path(local_path(uri)).parent / f".{name.name}.write.lock"


@contextmanager
def writing(where: Locations, name: TableName) -> Iterator[None]:
    """Held by a writer for one attempt at a commit (waits while the table is converted)."""
    path = lock_path(where, name)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def alone(where: Locations, name: TableName, wait: float = 0.0) -> Iterator[None]:
    """Held by a conversion: no writer at work. Waits up to ``wait`` seconds for the
    writers at work to finish, then raises ``TableBusyError``."""
    path = lock_path(where, name)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TableBusyError(
                        f"{name} is being written (a pipeline run, a stream or another "
                        "writer holds it)",
                        "convert it when the writers are done, or give --wait SECONDS",
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
