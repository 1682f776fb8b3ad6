"""A folder watched: new files landed as they arrive, each file once.

Every ``interval`` seconds the folder (local, or a prefix of an object store: ``landing``)
is listed (the data files ``files`` takes in). A file is landed once it has settled: its
size and modification time are what they were at the look before (unchanged for one
interval), or its change time is later than its modification time (it was renamed or
moved into the folder after it was written, or its attributes were set after the last
write, as ``cp -p`` does). A file still being written is left for a later look, so it is
not landed half. An object has settled once it is listed: a PUT is atomic and a multipart
upload is listed only once completed. The settled files go through
``files.ingest_folder`` (the same landing path and file identity: a file whose content the
table holds is skipped), and a file is not looked at again while its ``stat`` stays the
same.

On an object store, a look the store fails (it does not answer, or refuses the keys) can
be told and the watch carried on: the files it did not land are looked at again at the
next look, each still landed once (by its content identifier).

``stop()`` returning true ends the watch between batches: a batch in progress is finished
first (the command's SIGINT and SIGTERM handlers set it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.ingest.files import FORMATS, IngestReport, ingest_folder
from lakehouse.ingest.landing import LandingPath, Stat, landing_of
from lakehouse.ingest.object_store import ObjectStoreError

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

TICK = 0.05  # how often a wait looks at ``stop``


def settled(now: dict[LandingPath, Stat], before: dict[LandingPath, Stat]) -> list[LandingPath]:
    """The files of ``now`` that have settled (see the module's docstring)."""
    return [p for p, s in now.items() if before.get(p) == s or s.complete]


def watch_folder(
    lh: Lakehouse,
    folder: str | Path,
    table: str,
    *,
    interval: float = 5.0,
    stop: Callable[[], bool],
    on_batch: Callable[[IngestReport, list[LandingPath]], None] | None = None,
    on_waiting: Callable[[list[LandingPath]], None] | None = None,
    on_trouble: Callable[[ObjectStoreError], None] | None = None,
    source_system: str | None = None,
    options: dict[str, Any] | None = None,
) -> int:
    """Land the folder's settled new files into the bronze ``table`` every ``interval``
    seconds until ``stop()``; returns the rows landed. ``on_batch(report, files)`` follows
    each batch of settled files; ``on_waiting(files)`` names the files seen still changing
    at a look. With ``on_trouble``, a look the object store fails (it does not answer, it
    refuses the keys) is told to it and the files it did not land are looked at again at
    the next look; without, the failure ends the watch."""
    landing = landing_of(folder, lh.storage_options)
    before: dict[LandingPath, Stat] = {}
    handled: dict[LandingPath, Stat] = {}  # files landed or skipped, as they were then
    rows = 0

    def look() -> None:
        nonlocal before, handled, rows
        now = landing.listing(FORMATS)
        handled = {p: s for p, s in handled.items() if now.get(p) == s}
        fresh = {p: s for p, s in now.items() if p not in handled}
        ready = settled(fresh, before)
        waiting = sorted(set(fresh) - set(ready))
        before = now

        def done(path: LandingPath, landed: int) -> None:  # committed: counted even if
            nonlocal rows  # a later file of the batch fails
            rows += landed
            handled[path] = now[path]

        if ready:
            report = ingest_folder(
                lh,
                folder,
                table,
                source_system=source_system,
                on_file=done,
                options=options,
                only=ready,
                landing=landing,
            )
            if on_batch is not None:
                on_batch(report, sorted(ready))
        if waiting and on_waiting is not None:
            on_waiting(waiting)

    while not stop():
        try:
            look()
        except ObjectStoreError as exc:
            if on_trouble is None:
                raise
            on_trouble(exc)
        deadline = time.monotonic() + interval
        while not stop() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(TICK, left))
    return rows
