"""What a landing file is: the SHA-256 of its bytes and its size, not where it lies.

A file's transaction identifier (``file:sha256:<digest>:<size>``) names its content, so the
same files reached through another path (a moved or copied folder, a variable pointing at
a copy) are the files already ingested, and a file whose content changed under the same
name is a new one.

Hashing reads every byte, so the identifiers of a warehouse's landing files are kept in
``<warehouse>/_ingest/file_ids.sqlite`` with what ``stat`` says of each file (size,
modification and change times, inode): a file whose ``stat`` is unchanged is not read
again. A file modified within the last seconds is not kept there (it may still change
within the clock's resolution), and ``ctime`` changes with every write to the file, even
one that puts its modification time back. An object of an object store is kept with its
ETag, which the store changes with every write of the object: one whose ETag is
unchanged is not read again.

Tables written before content identifiers named a file by its absolute path
(``file:<32 hex digits>``, ``path_id``); ``legacy_mark`` names the identifier a table gets
once such a file has been recognised and its content identifier recorded.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PREFIX = "file:sha256:"
CACHE = Path("_ingest") / "file_ids.sqlite"
RECENT_NS = 2_000_000_000  # a file modified this recently is hashed, not remembered
CHUNK = 1 << 20


def content_id(path: Path) -> str:
    """The transaction identifier of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
            size += n
    return named(digest, size)


def named(digest: Any, size: int) -> str:
    """The transaction identifier of content with this SHA-256 ``digest`` (a hashlib
    object fed all of it) and ``size``."""
    return f"{PREFIX}{digest.hexdigest()}:{size}"


def path_id(path: Path) -> str:
    """The identifier tables written before content identifiers gave a file: a hash of
    its absolute path."""
    return "file:" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]


def legacy_mark(old: str) -> str:
    """Committed with a file's content identifier when the file was recognised by its old
    path identifier: that identifier then no longer vouches for whatever lies at the path."""
    return "file:migrated:" + old.removeprefix("file:")


def content_ids(paths: list[Path], warehouse: str | None) -> list[str]:
    """The content identifiers of ``paths``, hashed where the cache of the (local)
    ``warehouse`` folder does not know the file as it is."""
    cache = _open(Path(warehouse) / CACHE) if warehouse is not None else None
    try:
        stats = [p.stat() for p in paths]
        resolved = [str(p.resolve()) for p in paths]
        known = _lookup(cache, resolved)
        found: list[str | None] = []
        for r, s in zip(resolved, stats, strict=True):
            entry = known.get(r)
            found.append(entry[-1] if entry is not None and entry[:-1] == _key(s) else None)
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                hashed = pool.map(content_id, [paths[i] for i in missing])
                for i, ident in zip(missing, hashed, strict=True):
                    found[i] = ident
            settled = time.time_ns() - RECENT_NS
            _store(
                cache,
                [
                    (resolved[i], *_key(stats[i]), found[i])
                    for i in missing
                    if stats[i].st_mtime_ns < settled and stats[i].st_ctime_ns < settled
                ],
            )
        return [f for f in found if f is not None]
    finally:
        if cache is not None:
            cache.close()


def _key(s: os.stat_result) -> tuple[int, int, int, int]:
    return (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino)


def _open(path: Path) -> sqlite3.Connection | None:
    """The cache, or None where it cannot be kept (a read-only warehouse): then every
    file is hashed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30)
        con.execute(
            "CREATE TABLE IF NOT EXISTS file_ids (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, id TEXT)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS object_ids (uri TEXT PRIMARY KEY, etag TEXT, id TEXT)"
        )
        return con
    except (OSError, sqlite3.Error):
        return None


def _lookup(cache: sqlite3.Connection | None, paths: list[str]) -> dict[str, tuple[Any, ...]]:
    """The cache's (size, mtime_ns, ctime_ns, inode, id) of each file it knows."""
    return _select(
        cache, "SELECT path, size, mtime_ns, ctime_ns, inode, id FROM file_ids", "path", paths
    )


def _select(
    cache: sqlite3.Connection | None, select: str, key: str, keys: list[str]
) -> dict[str, tuple[Any, ...]]:
    """``select``'s rows whose ``key`` is one of ``keys`` (500 at a time), by key; nothing
    when the cache cannot be read (it is only a cache)."""
    if cache is None or not keys:
        return {}
    found: dict[str, tuple[Any, ...]] = {}
    try:
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = cache.execute(f"{select} WHERE {key} IN ({', '.join('?' * len(part))})", part)
            found.update((r[0], tuple(r[1:])) for r in rows)
    except sqlite3.Error:
        return {}
    return found


def _store(
    cache: sqlite3.Connection | None, rows: list[tuple[str, int, int, int, int, str | None]]
) -> None:
    if cache is None or not rows:
        return
    try:
        with cache:
            cache.executemany("INSERT OR REPLACE INTO file_ids VALUES (?, ?, ?, ?, ?, ?)", rows)
    except sqlite3.Error:
        pass  # only a cache: the files are hashed again next time


def known_objects(warehouse: str, uris: list[str]) -> dict[str, tuple[str, str]]:
    """What the cache of the (local) ``warehouse`` folder remembers of objects: each one's
    ETag and content identifier, by URI."""
    cache = _open(Path(warehouse) / CACHE)
    try:
        found = _select(cache, "SELECT uri, etag, id FROM object_ids", "uri", uris)
    finally:
        if cache is not None:
            cache.close()
    return {uri: (row[0], row[1]) for uri, row in found.items()}


def remember_objects(warehouse: str, rows: list[tuple[str, str, str]]) -> None:
    """Keeps each object's (URI, ETag, content identifier) in the warehouse's cache."""
    cache = _open(Path(warehouse) / CACHE)
    if cache is None or not rows:
        return
    try:
        with cache:
            cache.executemany("INSERT OR REPLACE INTO object_ids VALUES (?, ?, ?)", rows)
    except sqlite3.Error:
        pass  # only a cache: the objects are hashed again next time
    finally:
        cache.close()
