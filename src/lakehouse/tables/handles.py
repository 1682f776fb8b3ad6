"""Opening a table's Delta log, and the open tables a long-running writer keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from lakehouse.names import TableName
from lakehouse.storage import Locations
from lakehouse.tables.snapshot import UnsupportedFeatureError, refused_features

_in_use = threading.local()


def open_delta(where: Locations, name: TableName, version: int | None = None) -> DeltaTable | None:
    """The table at ``version`` (None: the latest), None if there is no table."""
    uri = where.table_uri(name)
    handles: Handles | None = getattr(_in_use, "handles", None)
    if handles is not None and version is None:
        dt = handles.get(uri)
        if dt is not None:
            return dt
    try:
        dt = DeltaTable(uri, version=version, storage_options=where.storage_options)
    except TableNotFoundError:
        return None
    except DeltaError as exc:  # a protocol feature this reader does not know, said so
        features = refused_features(exc)
        if features:
            raise UnsupportedFeatureError(str(name), features) from exc
        raise
    if handles is not None and version is None:
        handles.keep(uri, dt)
    return dt


class Handles:
    """Open tables kept by a long-running writer (a stream): opening a table replays its
    log since the last checkpoint, tens of milliseconds for a table that takes a commit a
    second; a kept handle reads only the commits since its last use. Each thread has its
    own handles (a handle is not shared between threads). Use ``with handles.used():`` in
    each thread that writes; tables must not be dropped and made again meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[int, str], DeltaTable] = {}

    @contextmanager
    def used(self) -> Iterator[None]:
        before = getattr(_in_use, "handles", None)
        _in_use.handles = self
        try:
            yield
        finally:
            _in_use.handles = before

    def get(self, uri: str) -> DeltaTable | None:
        with self._lock:
            dt = self._open.get((threading.get_ident(), uri))
        if dt is None:
            return None
        try:
            dt.update_incremental()
        except Exception:  # noqa: BLE001 - e.g. the table went away: open it afresh
            with self._lock:
                self._open.pop((threading.get_ident(), uri), None)
            return None
        return dt

    def keep(self, uri: str, dt: DeltaTable) -> None:
        with self._lock:
            self._open[(threading.get_ident(), uri)] = dt
