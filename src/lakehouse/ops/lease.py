"""A lease in the catalog: among several processes that want to do one thing (run the
schedules), the holder acts and the others wait, taking over once it stops renewing.

A lease is a row of the catalog's ``leases`` table (its name, holder and expiry). Taking
or renewing it is one conditional UPDATE (it succeeds only for the holder, or for anyone
once the lease expired), or the INSERT of the first holder, so two processes never both
hold it: on SQLite and PostgreSQL alike the database serialises the two statements. The
expiry is read against each process's own clock: the machines sharing a PostgreSQL
catalog must keep their clocks in step (NTP) to within a small part of the lease."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from lakehouse.catalog.schema import leases

if TYPE_CHECKING:
    from lakehouse.catalog import Catalog

SCHEDULER = "scheduler"  # the lease of the process that runs the schedules


def holder_id() -> str:
    """Names this process: host, process id and a random part (a restarted process with
    a reused pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """The lease ``name`` for ``holder``, valid ``seconds`` after each take or renewal."""

    def __init__(
        self, catalog: Catalog, name: str, holder: str | None = None, seconds: float = 10.0
    ) -> None:
        self.catalog = catalog
        self.name = name
        self.holder = holder or holder_id()
        self.seconds = seconds

    def acquire(self) -> bool:
        """Take or renew the lease; whether this holder has it now."""
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.seconds)
        row = leases.c
        mine_or_free = and_(
            row.name == self.name, or_(row.holder == self.holder, row.expires_at < now)
        )

        def go() -> bool:
            with self.catalog.engine.begin() as conn:
                # acquired_at changes only when the holder does
                same = conn.execute(
                    update(leases)
                    .where(and_(row.name == self.name, row.holder == self.holder))
                    .values(expires_at=expires)
                ).rowcount
                if same:
                    return True
                taken = conn.execute(
                    update(leases)
                    .where(mine_or_free)
                    .values(holder=self.holder, acquired_at=now, expires_at=expires)
                ).rowcount
                if taken:
                    return True
                exists = conn.execute(select(row.name).where(row.name == self.name)).first()
                if exists is not None:
                    return False
            try:
                with self.catalog.engine.begin() as conn:
                    conn.execute(
                        insert(leases).values(
                            name=self.name, holder=self.holder, acquired_at=now, expires_at=expires
                        )
                    )
                return True
            except IntegrityError:  # another process inserted it first
                return False

        return self.catalog._retry(go)

    def release(self) -> None:
        """Give the lease up (if held), so another process takes over at once."""

        def go() -> None:
            with self.catalog.engine.begin() as conn:
                conn.execute(
                    delete(leases).where(
                        and_(leases.c.name == self.name, leases.c.holder == self.holder)
                    )
                )

        self.catalog._retry(go)

    def current(self) -> dict[str, object] | None:
        """The lease's row: holder, acquired_at, expires_at; None when nobody holds it."""

        def go() -> dict[str, object] | None:
            with self.catalog.engine.connect() as conn:
                found = conn.execute(select(leases).where(leases.c.name == self.name)).first()
            return dict(found._mapping) if found is not None else None

        return self.catalog._retry(go)
