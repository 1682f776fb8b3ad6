"""Failed authentications per client address, counted in a SQLite file that every worker
process of the server (and every server of the warehouse) shares: past the limit within the
window, an address's wrong tokens are answered 429 with Retry-After. Only failures count;
a call with a good token is never refused."""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

LIMIT_ENV = "LAKEHOUSE_AUTH_FAILURES"  # wrong tokens an address may send per window
WINDOW_ENV = "LAKEHOUSE_AUTH_WINDOW"  # seconds
DEFAULT_LIMIT = 10
DEFAULT_WINDOW = 60.0
FILE = "auth_failures.db"


class TooManyFailures(LakehouseError):
    """A client address over its limit of failed authentications (answered 429)."""

    def __init__(self, client: str, limit: int, window: float, retry_after: int) -> None:
        super().__init__(
            f"too many failed authentications from {client}: more than {limit} in {window:g} s",
            f"wait {retry_after} s (Retry-After), then send a valid token; "
            "`lakehouse token create` makes one",
        )
        self.retry_after = retry_after


def server_folder(lh: Lakehouse) -> Path:
    """A local folder for what the server processes of a warehouse share."""
    if lh.local:
        return Path(lh.root) / "_server"
    digest = hashlib.sha256(lh.root.encode()).hexdigest()[:16]
    home = Path(os.environ.get("LAKEHOUSE_HOME", Path.home() / ".lakehouse"))
    return home / "servers" / digest


class FailedAuthentications:
    def __init__(self, path: Path, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise LakehouseError(
                f"{LIMIT_ENV} must be 1 or more and {WINDOW_ENV} positive",
                f"e.g. {LIMIT_ENV}={DEFAULT_LIMIT} {WINDOW_ENV}={DEFAULT_WINDOW:g}",
            )
        self.path = path
        self.limit = limit
        self.window = window
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS failures (client TEXT NOT NULL, at REAL)")
            con.execute("CREATE INDEX IF NOT EXISTS failures_client ON failures (client, at)")

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    def failed(self, client: str) -> None:
        """Count one failed authentication of ``client``; raise ``TooManyFailures`` when
        it is over the limit (a failure past the limit is not counted: the address gets
        its next tries when its oldest counted failure leaves the window)."""
        now = time.time()
        con = self._connect()
        con.execute("BEGIN IMMEDIATE")  # one process at a time counts and adds
        try:
            con.execute("DELETE FROM failures WHERE at <= ?", (now - self.window,))
            count, oldest = con.execute(
                "SELECT count(*), min(at) FROM failures WHERE client = ?", (client,)
            ).fetchone()
            if count < self.limit:
                con.execute("INSERT INTO failures VALUES (?, ?)", (client, now))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if count >= self.limit:
            wait = max(1, math.ceil(oldest + self.window - now))
            raise TooManyFailures(client, self.limit, self.window, wait)


def from_environment(lh: Lakehouse) -> FailedAuthentications:
    def number(name: str, default: float) -> float:
        raw = os.environ.get(name)
        try:
            return default if raw is None else float(raw)
        except ValueError as exc:
            raise LakehouseError(
                f"{name}={raw!r} is not a number", f"e.g. {name}={default:g}"
            ) from exc

    auth = lh.settings.auth  # the settings (lakehouse.yaml); the variables win
    limit = number(LIMIT_ENV, auth.failures_per_window)
    return FailedAuthentications(
        server_folder(lh) / FILE, int(limit), number(WINDOW_ENV, auth.failure_window)
    )
