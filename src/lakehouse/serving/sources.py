"""Which tables the serving store mirrors, what each is made from, and the versions they
are at now.

Mirrored: every table and view of the ``gold`` and ``realtime`` layers, and any other
table tagged ``serving``; a table tagged ``no-serving`` is left out."""

from __future__ import annotations

from typing import Any

from lakehouse.names import parse_table_name
from lakehouse.serving.mirror import Source
from lakehouse.sql.names import find_references
from lakehouse.storage import Storage
from lakehouse.tables.format import Latest, TableFormat
from lakehouse.tables.formats import format_of
from lakehouse.tables.snapshot import Snapshot

LAYERS = ("gold", "realtime")
TAG = "serving"
OPT_OUT = "no-serving"


def sources(storage: Storage) -> dict[str, Source]:
    """The mirrors there should be, by name."""
    catalog = storage.catalog
    out: dict[str, Source] = {}
    infos = {i.name: i for i in catalog.list()}
    for name, info in infos.items():
        tags = set(info.tags or [])
        if OPT_OUT in tags or (info.layer not in LAYERS and TAG not in tags):
            continue
        if info.format != "view":
            out[name] = Source(name, None, (name,))
            continue
        bases = _bases(info.options.get("sql") or "", infos, set())
        if bases:
            out[name] = Source(name, info.options["sql"], tuple(sorted(bases)))
    return out


def _bases(sql: str, infos: dict[str, Any], seen: set[str]) -> set[str]:
    """The stored tables a view's SQL reads, through views it reads."""
    found: set[str] = set()
    for ref in find_references(sql):
        info = infos.get(ref.name)
        if info is None or ref.name in seen:
            continue
        if info.format == "view":
            found |= _bases(info.options.get("sql") or "", infos, seen | {ref.name})
        else:
            found.add(ref.name)
    return found


class Versions:
    """The newest version of each stored table, followed cheaply (``Latest``)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._followers: dict[str, tuple[TableFormat[Any, Any], Latest[Any]]] = {}

    def now(self, name: str) -> tuple[int, Any, TableFormat[Any, Any]]:
        """The table's newest version, its open handle and its format."""
        found = self._followers.get(name)
        if found is None:
            parsed = parse_table_name(name)
            fmt = format_of(self.storage, parsed)
            found = self._followers[name] = (fmt, fmt.latest(self.storage, parsed))
        fmt, follower = found
        handle, _ = follower.newest()
        return fmt.version(handle), handle, fmt

    def of(self, source: Source) -> dict[str, int]:
        """The versions a mirror of ``source`` would hold now."""
        return {base: self.now(base)[0] for base in source.bases}

    def snapshot(self, source: Source) -> Snapshot | None:
        """The table's files at the version ``of`` last saw (None for a view)."""
        if source.view_sql is not None:
            return None
        fmt, follower = self._followers[source.name]
        handle, _ = follower.newest()
        return fmt.snapshot(handle)

    def forget(self, name: str) -> None:
        self._followers.pop(name, None)
