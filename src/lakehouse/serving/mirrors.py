"""``Serving``: the serving store of one warehouse, as every process sees it.

Embedded by default (chDB in a folder of the warehouse: ``_serving/``), or a ClickHouse
server named by ``LAKEHOUSE_SERVING_URL`` (``http(s)://user:password@host:8123``); both
through the one client (clickhouse-connect). Reading (``sql``, ``status``, ``covers``)
works from any process; refreshing is done by the owner (see ``owner.py``)."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name
from lakehouse.serving.mirror import Source, refresh
from lakehouse.serving.owner import Endpoint, Lock, OwnerClient, OwnerGone
from lakehouse.serving.results import Results
from lakehouse.serving.sources import Versions, sources
from lakehouse.serving.store import (
    Held,
    Query,
    ServingError,
    Store,
    held_in,
    table_ref,
)
from lakehouse.sql.engine_api import Engine
from lakehouse.storage import Storage
from lakehouse.tables.formats import format_of

log = logging.getLogger("lakehouse.serving")
URL_ENV = "LAKEHOUSE_SERVING_URL"
FOLDER = "_serving"
GENERATION = "generation"  # replaced by the owner whenever a mirror changed


def serving_folder(storage: Storage) -> Path:
    if storage.local:
        return Path(storage.root) / FOLDER
    digest = hashlib.sha256(storage.root.encode()).hexdigest()[:16]
    home = Path(os.environ.get("LAKEHOUSE_HOME", Path.home() / ".lakehouse"))
    return home / "serving" / digest


class Serving:
    """The serving store of the warehouse ``storage``."""

    def __init__(self, storage: Storage, engine: Engine, url: str | None = None) -> None:
        self.storage = storage
        self.engine = engine
        self.url = url or os.environ.get(URL_ENV) or None
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise LakehouseError(
                f"{URL_ENV}={self.url!r} is not a ClickHouse server address",
                "give http(s)://user:password@host:8123 (or unset it for the embedded store)",
            )
        self.folder = serving_folder(storage)
        self.dsn = self.url or f"chdb://{self.folder / 'store'}"
        self._lock = Lock(self.folder)
        self._owned: Store | None = None  # the store while this process owns it
        self._direct: Store | None = None  # a server's store, for reading
        self._guard = threading.RLock()
        self._versions = Versions(storage)
        self._errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._endpoint: Endpoint | None = None
        self._results: Results | None = None  # the owner's answers, kept for a moment
        self._held_cache: tuple[float, dict[str, Held]] | None = None
        self._first = threading.Event()
        self._held_mem: tuple[Store, dict[str, Held]] | None = None  # the owner's knowledge
        self._client = OwnerClient(self.folder)  # the way to another process's store
        self._answers = Results(self._read_through)  # its answers, kept here a moment
        self._seen: tuple[int, int, int] | None = None  # the generation they were read at

    @property
    def embedded(self) -> bool:
        return self.url is None

    # -- reading, from any process --------------------------------------------------------
    def sql(
        self, sql: str, params: dict[str, Any] | None = None, *, fresh: bool = False
    ) -> pa.Table:
        """A statement in ClickHouse's dialect over the mirrors (``gold.daily_summary``...);
        ``params`` fill ``{name:Type}`` holes. An answer read a moment ago (see
        ``Results``) may be given again while no mirror changed; ``fresh`` reads now."""
        if not fresh and self._asks_owner():
            self._forget_if_moved()
            return self._answers.query(sql, params)
        with self._reader(fresh) as query:
            return query(sql, params)

    def _asks_owner(self) -> bool:
        """Whether this process reads through another that owns the embedded store."""
        return self.embedded and self._owned is None and self._client.answered

    def _forget_if_moved(self) -> None:
        """Forget this process's kept answers when the owner changed a mirror since they
        were read: it replaces the ``generation`` file after each such refresh (one
        ``stat`` here, no round trip), so answers kept here are never older than its."""
        try:
            found = os.stat(self.folder / GENERATION)
            stamp: tuple[int, int, int] | None = (found.st_ino, found.st_mtime_ns, found.st_size)
        except OSError:
            stamp = None  # no owner has said anything: keep nothing
        if stamp is None or stamp != self._seen:
            self._seen = stamp
            self._answers.changed()

    def _moved(self) -> None:
        """Tell the readers of other processes that a mirror changed (the owner, after
        forgetting its own kept answers)."""
        temporary = self.folder / f".{GENERATION}.{os.getpid()}.{threading.get_ident()}"
        temporary.write_text(f"{time.time_ns()} {os.getpid()}\n")
        os.replace(temporary, self.folder / GENERATION)

    def _read_through(self, sql: str, params: dict[str, Any] | None) -> pa.Table:
        with self._reader() as query:
            return query(sql, params)

    def held(self, max_age: float = 0.0) -> dict[str, Held]:
        """The mirrors and what each holds (kept ``max_age`` seconds)."""
        cached = self._held_cache
        if cached is not None and time.monotonic() - cached[0] <= max_age:
            return cached[1]
        with self._reader() as query:
            found = held_in(query)
        self._held_cache = (time.monotonic(), found)
        return found

    def covers(self, tables: list[str]) -> bool:
        """Whether every one of ``tables`` has a mirror (a panel may then read it)."""
        if not tables:
            return False
        try:
            held = self.held(max_age=1.0)
        except LakehouseError:
            return False
        return all(t in held for t in tables)

    def status(self) -> list[dict[str, Any]]:
        """Each mirror: the version of its table, the version it holds, rows, lag."""
        wanted = sources(self.storage)
        try:
            held = self.held()
            problem = None
        except LakehouseError as exc:
            held, problem = {}, exc.message
        out = []
        for name, source in sorted(wanted.items()):
            row: dict[str, Any] = {"table": name, "source": ",".join(source.bases)}
            try:
                with self._guard:  # the followers of this process, kept between calls
                    now = self._versions.of(source)
            except LakehouseError as exc:
                row.update(state="unreadable", error=exc.message)
                out.append(row)
                continue
            have = held.get(name)
            row["delta_version"] = _shown_versions(now, source)
            row["serving_version"] = (
                None if have is None else _shown_versions(have.versions, source)
            )
            row["rows"] = None if have is None else have.rows
            row["refreshed_at"] = None if have is None else have.refreshed_at
            row["lag_seconds"] = self._lag(source, now, have)
            row["state"] = (
                "unreachable"
                if problem
                else "missing"
                if have is None
                else "current"
                if have.versions == now
                else "behind"
            )
            error = problem or self._errors.get(name)
            if error:
                row["error"] = error
            out.append(row)
        return out

    def health(self, max_lag: float = 30.0) -> dict[str, Any]:
        """``ok``, or ``degraded`` with the reason: the store cannot be reached, a mirror
        is missing, failed its last refresh or lags its table by more than ``max_lag``
        seconds."""
        try:
            rows = self.status()
        except LakehouseError as exc:
            return {"status": "degraded", "message": exc.message, "hint": exc.hint}
        problems = []
        for row in rows:
            if row.get("state") == "unreachable":
                return {"status": "degraded", "message": row.get("error"), "hint": _START}
            lag = row.get("lag_seconds")
            if row.get("state") in ("missing", "unreadable") or row.get("error"):
                problems.append(f"{row['table']} ({row.get('error') or row.get('state')})")
            elif lag is not None and lag > max_lag:
                problems.append(f"{row['table']} (lags {lag:.0f} s)")
        if problems:
            return {
                "status": "degraded",
                "message": "mirrors not current: " + "; ".join(problems),
                "hint": _START,
            }
        return {"status": "ok", "mirrors": len(rows)}

    # -- refreshing -----------------------------------------------------------------------
    def refresh(self, table: str | None = None) -> list[dict[str, Any]]:
        """Bring the mirrors (or one) to their tables' newest versions now."""
        if table is not None:
            table = str(parse_table_name(table))
            if table not in sources(self.storage):
                raise LakehouseError(
                    f"{table} is not mirrored in the serving store",
                    "gold and realtime tables are, and any table tagged serving",
                )
        with self._guard:
            if self._owned is not None:
                return self._refresh_owned(self._owned, table)
        if self._lock.take():
            try:
                store = Store(self.dsn)
                try:
                    return self._refresh_owned(store, table)
                finally:
                    self._held_mem = None
                    store.close()
            finally:
                self._lock.release()
        return self._client.refresh(table)

    def _refresh_owned(self, store: Store, only: str | None) -> list[dict[str, Any]]:
        wanted = sources(self.storage)
        if self._held_mem is None or self._held_mem[0] is not store:
            # First look at a store this process now owns: what it holds is read once, and
            # then known here (only the owner changes it).
            for stage in store.stages():  # left by a refresh that was killed
                store.command(f"DROP TABLE IF EXISTS {table_ref(stage)} SYNC")
            self._held_mem = (store, store.held())
        held = self._held_mem[1]
        done = []
        for name, source in sorted(wanted.items()):
            if only is not None and name != only:
                continue
            try:
                versions = self._versions.of(source)
                if name in held and held[name].versions == versions:
                    continue
                snapshot = self._versions.snapshot(source)
                if snapshot is not None and {source.name: snapshot.version} != versions:
                    continue  # a commit came in between: the next round takes it
                made = refresh(
                    store, self.engine, source, versions, snapshot, str(self.folder / "tmp")
                )
            except LakehouseError as exc:
                self._errors[name] = exc.message
                self._held_mem = None  # read the store again next time
                log.warning("serving: %s not refreshed: %s", name, exc.message)
                if only is not None:
                    raise
                continue
            held[name] = made
            self._errors.pop(name, None)
            done.append({"table": name, "versions": made.versions, "rows": made.rows})
        dropped = [n for n in held if n not in wanted] if only is None else []
        for name in dropped:  # dropped, or no longer mirrored
            store.command(f"DROP TABLE IF EXISTS {table_ref(name)} SYNC")
            held.pop(name)
            self._versions.forget(name)
        if done or dropped:
            if self._results is not None:
                self._results.changed()
            self._moved()
        self._held_cache = None
        return done

    # -- owning ---------------------------------------------------------------------------
    def own(self, interval: float = 0.1) -> None:
        """Own the store while this process runs (the server's main process): take the
        lock as soon as it is free, answer other processes, refresh every ``interval``
        seconds what changed (a look at which nothing changed costs about 2 ms)."""
        if self._thread is not None:
            return
        self._first = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="serving-owner", daemon=True
        )
        self._thread.start()
        self._first.wait(timeout=30)  # owning (or another process does) when this returns

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            if self._owned is None:
                if not self._lock.take():
                    self._first.set()
                    self._stop.wait(1.0)
                    continue
                try:
                    store = Store(self.dsn)
                except LakehouseError as exc:
                    log.warning("serving: %s", exc.message)
                    self._first.set()
                    self._lock.release()
                    self._stop.wait(5.0)
                    continue
                with self._guard:
                    self._owned = store
                    self._results = Results(store.query)
                    self._endpoint = Endpoint(self.folder, self._results.query, self._refresh_via)
                    self._moved()  # a new owner: nothing kept elsewhere is to be trusted
                self._first.set()
            try:
                with self._guard:
                    self._refresh_owned(self._owned, None)
            except Exception:  # noqa: BLE001 - the next round tries again
                self._held_mem = None
                log.exception("serving: refresh failed")
            self._stop.wait(interval)

    @contextmanager
    def owning(self) -> Iterator[Store]:
        """Own the store for a block of work (a script's many refreshes and queries)
        without the server's background refreshes; yields the open store."""
        with self._guard:
            if self._owned is not None:
                yield self._owned
                return
            if not self._lock.take():
                raise ServingError(
                    "another process owns the serving store",
                    "stop it (lakehouse serve) or ask it through lh.serving",
                )
            try:
                self._owned = Store(self.dsn)
            except BaseException:
                self._lock.release()
                raise
        try:
            yield self._owned
        finally:
            with self._guard:
                self._owned.close()
                self._owned = None
                self._lock.release()

    def _refresh_via(self, table: str | None) -> list[dict[str, Any]]:
        with self._guard:
            assert self._owned is not None
            return self._refresh_owned(self._owned, table)

    def close(self) -> None:
        """Stop owning (and close what this process opened)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._guard:
            if self._endpoint is not None:
                self._endpoint.stop()
                self._endpoint = None
            self._results = None
            if self._owned is not None:
                self._owned.close()
                self._owned = None
            if self._direct is not None:
                self._direct.close()
                self._direct = None
            self._lock.release()
        self._held_cache = None
        self._stop.clear()

    # -- the way to the store -------------------------------------------------------------
    def _opened(self, fresh: bool) -> Query | None:
        """The query of a store this process holds open (owned, or a server's), if any.
        Taken under the guard, run outside it: queries run side by side, and beside a
        refresh (which swaps a mirror in one atomic step)."""
        with self._guard:
            if self._owned is not None:
                if self._results is None or fresh:
                    return self._owned.query
                return self._results.query
            if not self.embedded:
                if self._direct is None:
                    self._direct = Store(self.dsn)
                return self._direct.query
        return None

    @contextmanager
    def _reader(self, fresh: bool = False) -> Iterator[Query]:
        opened = self._opened(fresh)
        if opened is not None:
            yield opened
            return
        if self._client.answered:  # an owner answers: ask it (no lock to try)
            yield functools.partial(self._ask_or_open, fresh=fresh)
            return
        if self._lock.take():  # nobody owns it: this process, for this call
            try:
                store = Store(self.dsn)
                try:
                    yield store.query
                finally:
                    store.close()
            finally:
                self._lock.release()
            return
        yield functools.partial(self._client.query, fresh=fresh)

    def _ask_or_open(
        self, sql: str, params: dict[str, Any] | None, fresh: bool = False
    ) -> pa.Table:
        """Ask the owner that answered before; if it stopped, the way there is now
        (this process opens the store for the call, or asks the owner that took over)."""
        try:
            return self._client.query(sql, params, fresh)
        except OwnerGone:
            with self._reader(fresh) as query:  # the client no longer counts as answered
                return query(sql, params)

    def _lag(self, source: Source, now: dict[str, int], have: Held | None) -> float | None:
        """Seconds since the oldest commit the mirror does not hold (0: current)."""
        if have is None:
            return None
        oldest = None
        for base, version in now.items():
            held = have.versions.get(base, -1)
            if held >= version:
                continue
            parsed = parse_table_name(base)
            try:
                commits = format_of(self.storage, parsed).commit_times(self.storage, parsed)
            except LakehouseError:
                continue
            times = [c["timestamp"] for c in commits if c["version"] > held]
            if times:
                first = min(times) / 1000
                oldest = first if oldest is None else min(oldest, first)
        if oldest is None:
            return 0.0
        return round(max(0.0, datetime.now(UTC).timestamp() - oldest), 3)


_START = (
    "the server (lakehouse serve) keeps the mirrors current; lakehouse serving refresh does it now"
)


def _shown_versions(versions: dict[str, int], source: Source) -> int | str:
    if len(versions) == 1:
        return next(iter(versions.values()))
    return ", ".join(f"{k}@v{v}" for k, v in sorted(versions.items()))


__all__ = ["Serving", "ServingError"]
