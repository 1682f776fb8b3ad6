"""A folder as a source of bronze rows: each file taken in exactly once.

A file's rows commit together with a Delta transaction identifier naming the file's
content (``identity``: its SHA-256 and size), so a file is in the table exactly when its
identifier is, whatever crashed when, and wherever the file lies: a moved or copied folder
brings nothing new, a file whose content changed is new, and identical files under two
names are one file's content, taken in once (the first name in path order). Files and
folders whose names start with ``_`` or ``.`` are not data (markers, manifests, files
still being written) and are left alone.

``take_in_each`` is the loop every folder source runs (data files: ``files``; Debezium
events: ``debezium``): it lists the folder (a local folder or a prefix of an object store:
``landing``), tells the files the table holds from the new ones, and hands each new file,
with the identifier to commit it under, to the source.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from lakehouse.ingest import identity
from lakehouse.ingest.landing import Landing, LandingPath
from lakehouse.names import TableName
from lakehouse.tables.format import TableFormat
from lakehouse.tables.formats import format_of

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

Read = TypeVar("Read")


@dataclass(frozen=True)
class FolderFile:
    """A file of the folder: the transaction identifier its rows commit with, whether the
    table holds it already, the earlier file with the same content (it then counts as
    held: one content is taken in once), and the identifiers tables written before content
    identifiers gave it."""

    path: LandingPath
    txn: tuple[str, int]
    done: bool
    same: LandingPath | None = None
    old: tuple[str, ...] = ()


def take_in_each(
    lh: Lakehouse,
    name: TableName,
    landing: Landing,
    suffixes: Collection[str],
    *,
    read: Callable[[LandingPath], Read],
    land: Callable[[FolderFile, Read], int],
    skip: Callable[[FolderFile], None],
    on_file: Callable[[LandingPath, int], None] | None = None,
    read_ahead: bool = False,
    only: Collection[LandingPath] | None = None,
) -> None:
    """Each data file of the ``landing`` folder whose suffix is one of ``suffixes`` (of
    them, with ``only``, the ones it holds), in path order: one the table
    holds goes to ``skip``; a new one is ``read``, and ``land`` writes what was read under
    the file's transaction identifier (which records it as taken in) and returns the rows
    it wrote. ``on_file(path, rows)`` follows each file (rows 0 for a skipped one). With
    ``read_ahead`` the next new file is read on another thread while this one lands
    (reading must then not depend on the table)."""
    paths = list(landing.listing(suffixes))
    if only is not None:
        paths = [p for p in paths if p in only]
    files = identify(lh, name, landing, paths)
    if not read_ahead:
        for file in files:
            _take_in(file, read, land, skip, on_file)
        return
    upcoming = iter([f.path for f in files if not f.done])
    reads: dict[LandingPath, Future[Read]] = {}
    with ThreadPoolExecutor(max_workers=1) as reader:

        def read_next() -> None:
            following = next(upcoming, None)
            if following is not None:
                reads[following] = reader.submit(read, following)

        def take_read(path: LandingPath) -> Read:
            found = reads.pop(path).result()
            read_next()
            return found

        read_next()
        for file in files:
            _take_in(file, take_read, land, skip, on_file)


def _take_in(
    file: FolderFile,
    read: Callable[[LandingPath], Read],
    land: Callable[[FolderFile, Read], int],
    skip: Callable[[FolderFile], None],
    on_file: Callable[[LandingPath, int], None] | None,
) -> None:
    rows = 0
    if file.done:
        skip(file)
    else:
        rows = land(file, read(file.path))
    if on_file is not None:
        on_file(file.path, rows)


def identify(
    lh: Lakehouse, name: TableName, landing: Landing, paths: list[LandingPath]
) -> list[FolderFile]:
    """Each file's transaction identifier, whether the table holds it, and the earlier
    file of ``paths`` with the same content. Files the table holds under the path
    identifiers of tables written before content identifiers get their content
    identifiers committed, so they stay recognised after a move."""
    # One look at the log for the whole folder. It may be stale if another loader runs at
    # the same time; the write itself re-checks the file's transaction id on the newest
    # version (and Delta refuses two commits of one id), so no file lands twice.
    fmt = format_of(lh.storage, name)
    target = fmt.open(lh.storage, name)
    ids = landing.content_ids(paths, lh.root if lh.local else None)
    names: dict[str, list[LandingPath]] = {}
    for path, content in zip(paths, ids, strict=True):
        names.setdefault(content, []).append(path)
    held: dict[str, bool] = {}
    migrated: list[tuple[str, int]] = []
    for content, where in names.items():

        def old_ids(where: list[LandingPath] = where) -> list[str]:
            return [i for p in where for i in landing.old_ids(p)]

        held[content], marks = recognise(fmt, target, old_ids, content)
        migrated += marks
    if migrated:
        lh.write(str(name), pa.table({}), evolve=True, txn=migrated)
    found = []
    for path, content in zip(paths, ids, strict=True):
        same = names[content][0]
        if same != path:
            found.append(FolderFile(path, (content, 1), True, same))
        elif held[content]:
            found.append(FolderFile(path, (content, 1), True))
        else:  # to land: its old identifiers are looked for in the quarantine too
            found.append(FolderFile(path, (content, 1), False, None, tuple(landing.old_ids(path))))
    return found


def recognise(
    fmt: TableFormat[Any, Any], target: Any, old_ids: Callable[[], list[str]], content: str
) -> tuple[bool, list[tuple[str, int]]]:
    """Whether the table (open in ``fmt``; None when there is none) holds the content, and
    the identifiers to commit when it was recognised by one of ``old_ids()``, the path
    identifiers tables written before content identifiers gave the files holding it
    (asked for only when the content identifier is not there)."""
    if target is None:
        return False, []

    def _held(target: Any, app_id: str) -> bool:
        """Whether the table holds a file's identifier (a restore resets one to -1)."""
        done = fmt.transaction_version(target, app_id)
        return done is not None and done >= 1

    if _held(target, content):
        return True, []
    marks = []
    for old in old_ids():
        mark = identity.legacy_mark(old)
        if _held(target, old) and not _held(target, mark):
            marks.append((mark, 1))
    return (True, [(content, 1), *marks]) if marks else (False, [])
