"""Where landing files lie: a local folder, or a prefix of an S3-compatible object store.

``landing_of(folder, options)`` gives either kind of landing folder; the folder sources
(``folder``, ``files``, ``debezium``, ``watch``) ask it only what both can answer: its
data files in path order (files and folders whose names start with ``_`` or ``.`` left
alone) with what tells a file changed (``Stat``), a file opened for reading, and the
content identifiers of files (``identity``: the SHA-256 of the bytes read through the
folder, and the size).

Local files are read where they lie; their identifiers are remembered per ``stat`` in a
local warehouse, objects' per ETag (one HEAD request tells an object is unchanged).
Objects are read through ``pyarrow.fs.S3FileSystem``, reached with the warehouse's
object-store options (``storage_options``: ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ALLOW_HTTP``), the environment's variables of the same names filling what they leave
out. An object is whole once it is listed (a PUT is atomic, a multipart upload appears
when it completes), so its ``Stat`` is ``whole``.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mode
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.ingest import identity
from lakehouse.ingest.object_store import bucket_check, reached, s3_filesystem

SCHEMES = ("s3://", "s3a://")
READERS = 4  # objects hashed side by side
Done = TypeVar("Done")


@dataclass(frozen=True, order=True)
class LandingPath:
    """A landing file: its local path, or its object's ``s3://bucket/key``."""

    path: str

    def __str__(self) -> str:
        return self.path

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix


@dataclass(frozen=True)
class Stat:
    """What a listing says of a file: size, modification and change times and inode for
    a local file; size and modification time for an object, which is ``whole``."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    whole: bool = False

    @property
    def renamed(self) -> bool:
        """Changed after its last write: renamed or moved in, or its attributes set."""
        return self.ctime_ns > self.mtime_ns

    @property
    def complete(self) -> bool:
        """Known to be whole without a second look: an object, or a file renamed in."""
        return self.whole or self.renamed


class Landing(Protocol):
    """A landing folder, local or on an object store."""

    @property
    def where(self) -> str:
        """The folder as the user names it."""
        ...

    def listing(self, suffixes: Collection[str]) -> dict[LandingPath, Stat]:
        """The data files whose (lower-cased) suffix is one of ``suffixes``, in path
        order, with their ``Stat``."""
        ...

    def open(self, path: LandingPath) -> pa.NativeFile:
        """The file, opened for random access reads (an object is read whole here)."""
        ...

    def content_ids(self, paths: list[LandingPath], warehouse: str | None) -> list[str]:
        """The content identifiers of the files (``warehouse``: a local warehouse folder
        that may remember them)."""
        ...

    def old_ids(self, path: LandingPath) -> list[str]:
        """The identifiers tables written before content identifiers gave the file."""
        ...


def is_object_store(folder: str | Path) -> bool:
    return str(folder).startswith(SCHEMES)


def landing_of(folder: str | Path, options: Mapping[str, str] | None = None) -> Landing:
    """The landing folder ``folder`` names (a local folder, or ``s3://bucket/prefix``),
    which has to exist; ``options`` are the warehouse's object-store options."""
    if is_object_store(folder):
        return ObjectPrefix.at(str(folder), options or {})
    return LocalFolder.at(folder)


def read_all(landing: Landing, path: LandingPath) -> pa.Buffer:
    """The whole file's bytes."""
    with landing.open(path) as handle:
        buffer: pa.Buffer = handle.read_buffer()
    return buffer


def is_data(parts: tuple[str, ...] | list[str]) -> bool:
    """Not a marker, manifest or file being written: no part of its path under the folder
    starts with ``_`` or ``.``."""
    return not any(part.startswith(("_", ".")) for part in parts)


@dataclass(frozen=True)
class LocalFolder:
    """A folder of this machine's file system."""

    root: Path

    @classmethod
    def at(cls, folder: str | Path) -> LocalFolder:
        root = Path(folder)
        if not root.is_dir():
            raise LakehouseError(f"no folder {root} to ingest from", "check the path")
        return cls(root)

    @property
    def where(self) -> str:
        return str(self.root)

    def listing(self, suffixes: Collection[str]) -> dict[LandingPath, Stat]:
        found: list[tuple[Path, Stat]] = []
        for p in self.root.rglob("*"):
            if p.suffix.lower() not in suffixes or not is_data(p.relative_to(self.root).parts):
                continue
            try:
                st = os.stat(p)
            except OSError:  # removed since the listing
                continue
            if stat_mode.S_ISREG(st.st_mode):
                found.append((p, Stat(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)))
        found.sort(key=lambda f: f[0])
        return {LandingPath(str(p)): s for p, s in found}

    def open(self, path: LandingPath) -> pa.NativeFile:
        return pa.memory_map(path.path)

    def content_ids(self, paths: list[LandingPath], warehouse: str | None) -> list[str]:
        return identity.content_ids([Path(p.path) for p in paths], warehouse)

    def old_ids(self, path: LandingPath) -> list[str]:
        return [identity.path_id(Path(path.path))]


@dataclass(frozen=True)
class ObjectPrefix:
    """The objects under a prefix of an S3-compatible bucket (``s3://bucket/prefix``),
    the prefix taken as a folder."""

    fs: Any  # pyarrow.fs.S3FileSystem
    base: str  # bucket/prefix, as the file system names it
    scheme: str
    endpoint: str

    @classmethod
    def at(cls, uri: str, options: Mapping[str, str]) -> ObjectPrefix:
        scheme, _, rest = uri.partition("://")
        base = rest.strip("/")
        if not base:
            raise LakehouseError(f"{uri} names no bucket", "give s3://BUCKET/PREFIX")
        fs, endpoint = s3_filesystem(options)
        bucket_check(fs, base.split("/", 1)[0], endpoint)
        return cls(fs, base, scheme + "://", endpoint)

    @property
    def where(self) -> str:
        return self.scheme + self.base

    def listing(self, suffixes: Collection[str]) -> dict[LandingPath, Stat]:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.base, recursive=True, allow_not_found=True)
        with reached(self.where, self.endpoint):
            infos = self.fs.get_file_info(selector)
        found: dict[LandingPath, Stat] = {}
        for info in sorted(infos, key=lambda i: i.path.split("/")):
            parts = info.path[len(self.base) + 1 :].split("/")
            if info.type != pafs.FileType.File or not is_data(parts):
                continue
            if PurePosixPath(info.path).suffix.lower() not in suffixes:
                continue
            mtime = info.mtime_ns or 0
            found[LandingPath(self.scheme + info.path)] = Stat(info.size, mtime, mtime, 0, True)
        return found

    def key(self, path: LandingPath) -> str:
        return path.path.removeprefix(self.scheme)

    def open(self, path: LandingPath) -> pa.NativeFile:
        # Read whole at once (one GET; every reader reads the whole file), so the store's
        # failures are told here rather than in the middle of a parser.
        with reached(path.path, self.endpoint):
            with self.fs.open_input_stream(self.key(path)) as stream:
                data = stream.read_buffer()
        return pa.BufferReader(data)

    def content_ids(self, paths: list[LandingPath], warehouse: str | None) -> list[str]:
        known = identity.known_objects(warehouse, [p.path for p in paths]) if warehouse else {}
        remembered = [p for p in paths if p.path in known]
        found: dict[LandingPath, str] = {}
        for path, etag in zip(remembered, self._each(self._etag, remembered), strict=True):
            if etag is not None and etag == known[path.path][0]:
                found[path] = known[path.path][1]
        missing = [p for p in paths if p not in found]
        fresh: list[tuple[str, str, str]] = []
        for path, (ident, etag) in zip(missing, self._each(self._hashed, missing), strict=True):
            found[path] = ident
            if etag is not None:
                fresh.append((path.path, etag, ident))
        if warehouse and fresh:
            identity.remember_objects(warehouse, fresh)
        return [found[p] for p in paths]

    def _each(self, do: Callable[[LandingPath], Done], paths: list[LandingPath]) -> list[Done]:
        """``do`` for each path, a few side by side."""
        if len(paths) < 2:
            return [do(p) for p in paths]
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            return list(pool.map(do, paths))

    def _etag(self, path: LandingPath) -> str | None:
        """The object's ETag, from a HEAD request."""
        with reached(path.path, self.endpoint):
            with self.fs.open_input_file(self.key(path)) as handle:
                return _etag_of(handle)

    def _hashed(self, path: LandingPath) -> tuple[str, str | None]:
        """The object's content identifier and the ETag of the bytes read."""
        digest = hashlib.sha256()
        size = 0
        with reached(path.path, self.endpoint):
            with self.fs.open_input_stream(self.key(path)) as stream:
                while chunk := stream.read(identity.CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                etag = _etag_of(stream)
        return identity.named(digest, size), etag

    def old_ids(self, path: LandingPath) -> list[str]:
        return []  # objects were never named by a local path


def _etag_of(handle: pa.NativeFile) -> str | None:
    value = handle.metadata().get("ETag")
    return value.decode() if isinstance(value, bytes) and value else None
