"""What every access check reads, held in memory: tokens, grants and the PII columns of each
table, loaded from the catalog in one go and reloaded at most every ``REFRESH_SECONDS``.

The API checks every request, so a check must cost microseconds; a change made in another
process (the CLI revoking a token or a grant) is seen at the next reload, within 2 s.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from lakehouse.access.tokens import Principal, aware
from lakehouse.catalog import schema as cs
from lakehouse.lineage.tags import CARRYING, inherited_pii, pii_columns

if TYPE_CHECKING:
    from lakehouse.catalog import Catalog

REFRESH_SECONDS = 1.0


@dataclass
class Holder:
    """One token as the checks need it."""

    principal: Principal
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass
class Snapshot:
    tokens: dict[str, Holder] = field(default_factory=dict)  # by hash, revoked ones too
    grants: frozenset[tuple[str, str, str]] = frozenset()  # (privilege, target, grantee)
    # every table, by name: its columns tagged pii or inheriting it (lineage/tags.py)
    pii: dict[str, tuple[str, ...]] = field(default_factory=dict)


def load(catalog: Catalog) -> Snapshot:
    t, g, tb, lin = cs.tokens, cs.grants, cs.tables, cs.lineage

    def go() -> Snapshot:
        with catalog.engine.connect() as conn:
            tokens = conn.execute(
                select(t.c.token_hash, t.c.name, t.c.role, t.c.revoked_at, t.c.last_used_at)
            ).all()
            grants = conn.execute(select(g.c.privilege, g.c.target, g.c.grantee)).all()
            tags = conn.execute(
                select(tb.c.name, tb.c.column_tags_json, tb.c.schema_json, tb.c.format)
            ).all()
            edges = conn.execute(
                select(
                    lin.c.source_table, lin.c.source_column, lin.c.target_table, lin.c.target_column
                ).where(lin.c.run_id.is_(None), lin.c.transform.in_(CARRYING))
            ).all()
        snap = Snapshot()
        snap.tokens = {
            r.token_hash: Holder(
                Principal(r.name, r.role), aware(r.revoked_at), aware(r.last_used_at)
            )
            for r in tokens
        }
        snap.grants = frozenset((r.privilege, r.target, r.grantee) for r in grants)
        declared = {r.name: json.loads(r.column_tags_json or "{}") for r in tags}
        columns = {r.name: [c["name"] for c in json.loads(r.schema_json or "[]")] for r in tags}
        views = {r.name for r in tags if r.format == "view"}
        inherited = inherited_pii(declared, [tuple(e) for e in edges], columns)
        for name, column_tags in declared.items():
            snap.pii[name] = pii_columns(name, column_tags, inherited, name in views)
        return snap

    loaded: Snapshot = catalog._retry(go)
    return loaded


class Cache:
    """The current snapshot. A stale one is reloaded by the thread that finds it stale while
    the others keep using the one they have; ``changed()`` makes the next check reload."""

    def __init__(self, catalog: Catalog, refresh: float = REFRESH_SECONDS) -> None:
        self.catalog = catalog
        self.refresh = refresh
        self._snap: Snapshot | None = None
        self._expires = 0.0
        self._generation = 0
        self._lock = threading.Lock()

    def get(self) -> Snapshot:
        snap = self._snap
        if snap is not None and time.monotonic() < self._expires:
            return snap
        if snap is None or self._expires == 0.0:
            # Nothing loaded yet, or this process changed something: wait for a fresh one.
            with self._lock:
                if self._snap is None or time.monotonic() >= self._expires:
                    return self._reload()
                return self._snap
        if self._lock.acquire(blocking=False):
            try:
                if time.monotonic() >= self._expires:
                    return self._reload()
            finally:
                self._lock.release()
        current = self._snap  # another thread's reload, if one finished since
        return current if current is not None else snap

    def changed(self) -> None:
        """Something this process changed: the next check reads the catalog again."""
        self._generation += 1
        self._expires = 0.0

    def _reload(self) -> Snapshot:
        generation = self._generation
        started = time.monotonic()
        snap = load(self.catalog)
        self._snap = snap
        # A change made while loading may be missing from what was read: reload next time.
        self._expires = started + self.refresh if generation == self._generation else 0.0
        return snap
