"""Whole results kept for paging: the first page of a sorted or filtered view of a
statement's result reads all of it once (up to ``KEEP_ROWS`` rows, ``KEEP_BYTES`` bytes),
and the next pages are slices of it, so paging through a million rows costs a slice, not
a statement. Kept per caller, statement, parameters, sort, filters and the versions (and
masked columns) of the tables it names; a statement over a SQL view is not kept (its
tables' versions are not known here), nor one whose result is larger."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.errors import SQLError
from lakehouse.sql.names import find_references

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.service.reader import Reader
    from lakehouse.warehouse import Lakehouse

KEEP_ROWS = 2_000_000
KEEP_BYTES = 128 << 20  # one result
KEPT_BYTES = 512 << 20  # all of them, per process


@dataclass
class Kept:
    table: pa.Table | None  # None: too large to keep
    tables: list[str]


class KeptResults:
    def __init__(self, most_bytes: int = KEPT_BYTES) -> None:
        self.most_bytes = most_bytes
        self._kept: OrderedDict[tuple[Any, ...], Kept] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Kept | None:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], table: pa.Table | None, tables: list[str]) -> Kept:
        kept = Kept(table, tables)
        size = table.nbytes if table is not None else 0
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None and old.table is not None:
                self._bytes -= old.table.nbytes
            self._kept[key] = kept
            self._bytes += size
            while self._bytes > self.most_bytes and len(self._kept) > 1:
                _, gone = self._kept.popitem(last=False)
                if gone.table is not None:
                    self._bytes -= gone.table.nbytes
        return kept


KEPT = KeptResults()


def result_key(
    lh: Lakehouse,
    reader: Reader,
    text: str,
    params: dict[str, Any] | None,
    view: tuple[Any, ...],
) -> tuple[Any, ...] | None:
    """The key a result is kept under, or None when it is not to be kept (a SQL view, a
    table the reader may not read: the statement's own run answers those)."""
    try:
        names = sorted({ref.name for ref in find_references(text)})
    except SQLError:
        return None
    versions = []
    for name in names:
        info = lh.catalog.get(name)
        if info is None or info.format == "view" or not reader.can_read(name):
            return None
        versions.append((name, info.version, tuple(sorted(reader.masked(name)))))
    values = json.dumps(params or {}, sort_keys=True, default=str)
    return (str(lh.root), reader.name, text, values, view, tuple(versions))
