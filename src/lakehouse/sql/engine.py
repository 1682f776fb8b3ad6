"""The SQL engine: DuckDB over the live files of Delta table versions.

Each ``layer.table`` a query names becomes a DuckDB view over exactly the parquet files the
table format lists for the version asked (with partition values taken from its metadata,
not from paths). Views are rebuilt only when the table's version moves, so repeated queries
cost one look at the table's newest version (``Latest``: for a local Delta table, two file
look-ups).

``safe_query`` is the API's read-only path over the same views: statements checked by
``sandbox.py``, PII columns read through masked views (``masking.py``), a time and a row
limit, and results kept (``cache.py``) until a table they read gets a new version.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

import arro3.core as arro3
import duckdb
import pyarrow as pa

from lakehouse.errors import (
    QueryRefusedError,
    SQLError,
    TableNotFoundError,
    VersionNotFoundError,
)
from lakehouse.names import LAYERS, parse_table_name
from lakehouse.quoting import ident, literal
from lakehouse.sql.cache import Reads, ResultCache, params_key
from lakehouse.sql.engine_api import Engine
from lakehouse.sql.masking import (
    KEY_SCHEMA,
    KEY_TABLE,
    mask_digest,
    masked_select,
    pads,
    warehouse_key,
)
from lakehouse.sql.names import TableRef, find_references
from lakehouse.sql.result import Result
from lakehouse.sql.sandbox import Reading, SafeResult, check_statement, check_tree, run_limited
from lakehouse.storage import Storage
from lakehouse.tables.convert import normalize_schema
from lakehouse.tables.deletion_vectors import positions
from lakehouse.tables.format import Latest, TableFormat
from lakehouse.tables.formats import format_of
from lakehouse.tables.registration import register_found
from lakehouse.tables.snapshot import (
    Column,
    DataFile,
    Snapshot,
    file_columns,
    file_trees,
)

quote = ident


class SQLEngine(Engine):
    """The engine interface on DuckDB."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.db = duckdb.connect(":memory:")
        # Data files never change once written, so caching their footers is always safe.
        # GLOBAL: queries run on per-thread cursors, which a plain SET (this connection's
        # session only) does not reach: they read every footer again (1.5-3 ms a query)
        # and rendered times in the machine's time zone.
        self.db.execute("SET GLOBAL parquet_metadata_cache = true")
        self.db.execute("SET GLOBAL TimeZone = 'UTC'")
        for layer in LAYERS:
            self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        self._lock = threading.RLock()
        self._latest: dict[str, Latest[Any]] = {}  # tables read so far -> their newest
        self._views: dict[str, int] = {}  # view key -> version it shows
        self._sql_views: dict[str, str] = {}  # views defined in SQL (not stored) -> body
        self._counts: dict[str, int] = {}  # view -> its row count, from the table's metadata
        self._snapshots: dict[str, Snapshot] = {}  # pinned view -> the files it reads
        self._local = threading.local()
        # Views of the sandboxed path: masked views and copies of SQL views, by full name
        # -> (the table or view they show, what they were made for: a version, a text).
        self._sandbox_views: dict[str, tuple[str, Hashable]] = {}
        self._schemas: set[str] = set(LAYERS)
        self._deleted: set[str] = set()  # tables of deleted row positions made so far
        self._locked = False
        self._key_ready = False
        self.result_cache = ResultCache()

    # -- public ---------------------------------------------------------------------------
    def query(self, sql: str, tables: dict[str, str] | None = None) -> Result:
        """Run ``sql``. ``tables`` maps table names to the views to read instead (a pinned
        version, the rows added since a version), as pipelines read their inputs."""
        if not isinstance(sql, str) or not sql.strip():
            raise SQLError("empty query", "pass a SQL statement, e.g. SELECT 1")
        started = time.perf_counter()
        text, unknown = self._prepare(sql, tables or {})
        cursor = self._cursor()
        try:
            relation = cursor.sql(text)
            table = relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.CatalogException) and unknown:
                raise TableNotFoundError(unknown[0], self.suggest(unknown[0])) from exc
            raise self._sql_error(exc) from exc
        return Result(table, sql, time.perf_counter() - started)

    def _prepare(
        self, sql: str, tables: dict[str, str], reading: Reading | None = None
    ) -> tuple[str, list[str]]:
        """Make every referenced table's view current and rewrite time travel to versioned
        views; returns the SQL to run and the references that name no table. With
        ``reading`` (the sandboxed path) every table read is checked, recorded and read
        through its masked view when it has masked columns."""
        refs = find_references(sql)
        # Tables this engine has read before need no catalog look-up on every query.
        known = set(self._latest) | set(self._sql_views)
        if any(ref.name not in known and ref.name not in tables for ref in refs):
            known |= set(self.storage.catalog.names())
        pieces: list[str] = []
        unknown: list[str] = []
        last = 0
        for ref in refs:
            if ref.name in tables and ref.version is None and ref.timestamp is None:
                pieces.append(sql[last : ref.start])
                pieces.append(tables[ref.name])
                last = ref.end
                continue
            if ref.name not in known and not register_found(self.storage, ref.name):
                if ref.version is not None or ref.timestamp is not None:
                    raise TableNotFoundError(ref.name, self._hint(ref.name, reading))
                unknown.append(ref.name)
                continue  # may be an alias.column; DuckDB has the last word
            if reading is not None:
                view = self._sandboxed(ref, reading)
                if view is not None:
                    pieces.append(sql[last : ref.start])
                    pieces.append(view)
                    last = ref.end
                continue
            if ref.version is None and ref.timestamp is None:
                self._ensure_current(ref.name, tables)
                if ref.name.startswith("system."):
                    # DuckDB has a catalog named like this layer: qualify in full.
                    pieces.append(sql[last : ref.start])
                    pieces.append(self._current_name(ref.name))
                    last = ref.end
                continue
            if self._view_sql(ref.name) is not None:
                raise _no_versions(ref.name)
            version = self.resolve_version(ref.name, ref.version, ref.timestamp)
            view = self._ensure_version(ref.name, version)
            pieces.append(sql[last : ref.start])
            pieces.append(view)
            last = ref.end
        pieces.append(sql[last:])
        return "".join(pieces), unknown

    # -- the API's read-only path -----------------------------------------------------------
    def lock_down(self) -> None:
        """From now on the database reads files only in the warehouse folder, installs and
        loads no extension, and its settings cannot change. For the API server; idempotent.
        Remote tables are read by delta-rs, so a remote warehouse gives DuckDB no folder."""
        with self._lock:
            if self._locked:
                return
            if self.storage.local:  # must come before external access is turned off
                root = self.storage.root.rstrip(os.sep) + os.sep
                self.db.execute(f"SET allowed_directories = [{literal(root)}]")
            self.db.execute("SET enable_external_access = false")
            self.db.execute("SET autoinstall_known_extensions = false")
            self.db.execute("SET autoload_known_extensions = false")
            self.db.execute("SET allow_community_extensions = false")
            self.db.execute("SET lock_configuration = true")
            self._locked = True

    def safe_query(
        self,
        sql: str,
        *,
        limit: int = 1000,
        timeout: float = 30.0,
        masked: Callable[[str], list[str]] | None = None,
        can_read: Callable[[str], bool] | None = None,
        params: dict[str, Any] | None = None,
    ) -> SafeResult:
        """Run one read-only statement for a caller of the API.

        Only a SELECT (or EXPLAIN of one) over ``layer.table`` names, CTEs and generated
        rows runs; anything else raises ``QueryRefusedError`` naming what was refused.
        ``can_read(name)`` False for a table the statement names raises
        ``TableNotFoundError`` as for a table that does not exist (hints name only tables
        ``can_read`` allows); the columns ``masked(name)`` gives are read as pseudonyms
        (in tables read through views too). At most ``limit`` rows are returned; the
        statement is stopped after ``timeout`` seconds (``QueryTimeoutError``). Results
        are cached until a table they read gets a new version. ``params`` are bound by
        DuckDB to the statement's named parameters (``$name``): values, never SQL text;
        they are part of the cache key."""
        started = time.perf_counter()
        if not isinstance(sql, str) or not sql.strip():
            raise SQLError("empty query", "pass a SQL statement, e.g. SELECT 1")
        if limit < 0:
            raise SQLError(f"the row limit must be 0 or more, got {limit}")
        if not timeout > 0:
            raise SQLError(f"the time limit must be more than 0 seconds, got {timeout}")
        hit = self.cached_query(sql, limit=limit, masked=masked, can_read=can_read, params=params)
        if hit is not None:
            hit.seconds = time.perf_counter() - started
            return hit
        reading = Reading(can_read, masked)
        reading.suggest = lambda name: self.suggest(name, can_read)
        cursor = self.db.cursor()  # its own: a time limit interrupts this statement only
        try:
            check_statement(cursor, sql)
            text, unknown = self._prepare(sql, {}, reading)
            suggest = reading.suggest
            volatile = check_tree(cursor, text, reading.views, unknown, suggest)
            try:
                table, truncated = run_limited(cursor, text, limit, timeout, params)
            except duckdb.Error as exc:
                if isinstance(exc, duckdb.CatalogException) and unknown:
                    raise TableNotFoundError(unknown[0], suggest(unknown[0])) from exc
                if isinstance(exc, duckdb.PermissionException):
                    raise QueryRefusedError(
                        str(exc), "the API reads the warehouse's tables only"
                    ) from exc
                raise self._sql_error(exc, suggest) from exc
        finally:
            cursor.close()
        if not volatile:
            sources = tuple(reading.stamps)
            self.result_cache.put(
                (sql, limit, reading.signature(sources), params_key(params)),
                Reads(tuple(reading.named), sources),
                table,
                truncated,
                tuple(reading.stamps.items()),
            )
        seconds = time.perf_counter() - started
        return SafeResult(table, truncated, False, list(reading.named), seconds)

    def cached_query(
        self,
        sql: str,
        *,
        limit: int = 1000,
        masked: Callable[[str], list[str]] | None = None,
        can_read: Callable[[str], bool] | None = None,
        params: dict[str, Any] | None = None,
    ) -> SafeResult | None:
        """``safe_query``'s answer if the cache holds it (still valid, grants checked),
        else None. It never runs a statement, so it may be called where blocking is not
        wanted (the server's event loop)."""
        started = time.perf_counter()
        known = self.result_cache.reads(sql)
        if known is None:
            return None
        reading = Reading(can_read, masked)
        reading.suggest = lambda name: self.suggest(name, can_read)
        for name in known.named:
            reading.enter(name)
        key = (sql, limit, reading.signature(known.sources), params_key(params))
        entry = self.result_cache.get(key, self._fresh)
        if entry is None:
            return None
        seconds = time.perf_counter() - started
        return SafeResult(entry.table, entry.truncated, True, list(known.named), seconds)

    def cache_clear(self) -> None:
        """Forget every result ``safe_query`` keeps."""
        self.result_cache.clear()

    def _sandboxed(self, ref: TableRef, reading: Reading) -> str | None:
        """The view a sandboxed statement reads for ``ref`` (None: the name as written
        reads it), checked and recorded in ``reading``."""
        name = ref.name
        layer, table = name.split(".")
        reading.enter(name)
        travel = ref.version is not None or ref.timestamp is not None
        key: Hashable
        body = self._view_sql(name)
        if body is not None:
            if travel:
                raise _no_versions(name)
            reading.stamps.setdefault(name, ("view", body))
            schema, part = self._view_copy(name, body, reading)
            key = schema
        else:
            self._ensure_current(name)
            reading.stamps.setdefault(name, self._stamp(name))
            if travel:
                version = self.resolve_version(name, ref.version, ref.timestamp)
                versioned = self._ensure_version(name, version)
                # Under the table's own name, in a schema of that version: `users.id` binds.
                schema, part, key = f"{layer}@v{version}", table, version
                self._sandbox_view(name, schema, part, key, lambda: f"SELECT * FROM {versioned}")
            else:
                schema, part, key = layer, table, self._views.get(name)
        # A SQL view's copy reads its tables masked; what is masked on top of it is what
        # the policy gives for the view itself (lineage/tags.py: tagged, inheriting nothing).
        columns = reading.mask(name)
        if columns:
            schema = self._masked_view(name, schema, part, columns, key)
        if reading.depth == 0:
            reading.views.add((schema, part))
        if schema == layer and part == table and layer != "system":
            return None  # DuckDB has a catalog named like the system layer: qualify that one
        return f"memory.{quote(schema)}.{quote(part)}"

    def _view_copy(self, name: str, body: str, reading: Reading) -> tuple[str, str]:
        """A SQL view for one sandboxed statement: its body prepared the same way (tables
        checked, masked columns masked), kept under a schema named for that text."""
        reading.depth += 1
        try:
            text, unknown = self._prepare(body, {}, reading)
        finally:
            reading.depth -= 1
        if unknown:
            raise TableNotFoundError(unknown[0], self._hint(unknown[0], reading))
        layer, table = name.split(".")
        schema = f"{layer}#q{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        self._sandbox_view(name, schema, table, schema, lambda: text)
        return schema, table

    def _masked_view(
        self, name: str, schema: str, part: str, columns: tuple[str, ...], key: Hashable
    ) -> str:
        """The schema of the view of ``schema.part`` (a view of ``name``) in which
        ``columns`` are pseudonyms: same view name, so ``users.email`` still binds. Made
        again when ``key`` (the version it shows) moves."""
        masked = f"{schema}#pii-{mask_digest(columns)}"
        base = f"memory.{quote(schema)}.{quote(part)}"
        self._pseudonym_key()

        def body() -> str:
            present = {c.lower(): c for c in self.db.sql(f"SELECT * FROM {base} LIMIT 0").columns}
            chosen = [quote(present[c.lower()]) for c in columns if c.lower() in present]
            # A view naming memory."system".x is refused by DuckDB's binder (a catalog is
            # named system too); query_table() names it as text.
            source = f"query_table({literal(base)})" if schema == "system" else base
            return masked_select(source, chosen) if chosen else f"SELECT * FROM {source}"

        self._sandbox_view(name, masked, part, key, body)
        return masked

    def _pseudonym_key(self) -> None:
        """The warehouse's pseudonym key as the one-row table the masked views read (made
        once per engine; the sandbox lets no statement read it)."""
        if self._key_ready:
            return
        inner, outer = pads(warehouse_key(self.storage.catalog))
        with self._lock:
            if not self._key_ready:
                self.db.execute(f"CREATE SCHEMA IF NOT EXISTS memory.{quote(KEY_SCHEMA)}")
                self.db.execute(
                    f"CREATE OR REPLACE TABLE {KEY_TABLE} AS SELECT ?::BLOB AS ipad, "
                    "?::BLOB AS opad",
                    [inner, outer],
                )
                self._key_ready = True

    def _sandbox_view(
        self, name: str, schema: str, part: str, key: Hashable, body: Callable[[], str]
    ) -> None:
        """Make view ``schema.part`` (showing ``name``) unless made already for ``key``."""
        view = f"memory.{quote(schema)}.{quote(part)}"
        with self._lock:
            if self._sandbox_views.get(view) != (name, key):
                if schema not in self._schemas:
                    self.db.execute(f"CREATE SCHEMA IF NOT EXISTS memory.{quote(schema)}")
                    self._schemas.add(schema)
                self.db.execute(f"CREATE OR REPLACE VIEW {view} AS {body()}")
                self._sandbox_views[view] = (name, key)

    # A cached result holds while every table it read is as it was when the statement
    # started (``Latest.fresh``: for a local Delta table, the log folder is the same one
    # and holds no commit after the version read).
    def _stamp(self, name: str) -> Hashable:
        return self._latest[name].stamp(self._views.get(name))

    def _fresh(self, name: str, stamp: Hashable) -> bool:
        assert isinstance(stamp, tuple)
        if stamp[0] == "view":
            return bool(self._sql_views.get(name) == stamp[1])
        with self._lock:
            follower = self._latest.get(name)
            return follower is not None and follower.fresh(stamp)

    def snapshot(self, name: str, version: int | None = None) -> Snapshot:
        return self._format(name).snapshot(self._load(name, version))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's connection: what it registers or creates as TEMP, its queries see."""
        return self._cursor()

    def prepare(self, sql: str, tables: dict[str, str] | None = None) -> tuple[str, list[str]]:
        """``sql`` with its table names turned into the views ``query`` would read."""
        return self._prepare(sql, tables or {})

    def version_view(self, name: str, version: int) -> str:
        """The view of one version of a table."""
        return self._ensure_version(name, version)

    def changes_view(self, name: str, since: int, until: int) -> str:
        """A view of the rows ``name`` gained after version ``since`` up to ``until``; raises
        ``NotAppendOnly`` if rows were changed or removed in between."""
        layer, table = name.split(".")
        view = f"memory.{layer}.{quote(f'{table}@v{since}..v{until}')}"
        key = f"{name}@v{since}..v{until}"
        with self._lock:
            if key not in self._views:
                try:
                    parsed = parse_table_name(name)
                    snap = self._format(name).appended(self.storage, parsed, since, until)
                except TableNotFoundError as exc:
                    raise TableNotFoundError(name, self.suggest(name)) from exc
                self._create_view(view, snap, None)
                self._views[key] = until
        return view

    def pinned(self, view: str) -> Snapshot | None:
        """The files a view of ``version_view`` or ``changes_view`` reads (None: another
        view)."""
        return self._snapshots.get(view)

    def row_count(self, view: str) -> int:
        """The number of rows of a view ``version_view`` or ``changes_view`` returned: from
        the Delta log's file statistics when every file has them, else counted."""
        if view in self._counts:
            return self._counts[view]
        count: int = self._cursor().sql(f"SELECT count(*) FROM {view}").fetchall()[0][0]
        return count

    def read(self, name: str, version: int | None = None) -> pa.Table:
        """A whole table version through the same reader path SQL uses."""
        view = self._ensure_version(name, version) if version is not None else self._current(name)
        return self._cursor().sql(f"SELECT * FROM {view}").to_arrow_table()

    def forget(self, name: str) -> None:
        """Drop what the engine holds of a table that no longer exists."""
        layer, table = name.split(".")
        with self._lock:
            self._latest.pop(name, None)
            for key in [k for k in self._views if k == name or k.startswith(f"{name}@")]:
                del self._views[key]
            self._sql_views.pop(name, None)
            self.db.execute(f"DROP VIEW IF EXISTS memory.{layer}.{quote(table)}")
            for view in [v for v, (of, _) in self._sandbox_views.items() if of == name]:
                self.db.execute(f"DROP VIEW IF EXISTS {view}")
                del self._sandbox_views[view]
        self.result_cache.clear()

    def suggest(self, name: str, can_read: Callable[[str], bool] | None = None) -> list[str]:
        """Tables named like ``name``; with ``can_read``, only those the caller may read (a
        hint never names a table the caller could not tell exists)."""
        names = self.storage.catalog.names()
        if can_read is not None:
            names = [n for n in names if can_read(n)]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        bare = name.split(".")[-1]
        close += [n for n in names if n.split(".")[-1] == bare and n not in close]
        return close[:5]

    # -- views ----------------------------------------------------------------------------
    def _current(self, name: str) -> str:
        self._ensure_current(name)
        return self._current_name(name)

    @staticmethod
    def _current_name(name: str) -> str:
        layer, table = name.split(".")
        return f"memory.{layer}.{quote(table)}"

    def _view_sql(self, name: str) -> str | None:
        if name in self._sql_views:
            return self._sql_views[name]
        if name in self._latest:
            return None
        info = self.storage.catalog.get(name)
        if info is None or info.format != "view":
            return None
        self._sql_views[name] = info.options["sql"]
        return self._sql_views[name]

    def _ensure_current(self, name: str, tables: dict[str, str] | None = None) -> None:
        body = self._view_sql(name)
        if body is not None:  # a view: its own references first, then the view over them
            text, unknown = self._prepare(body, tables or {})
            if unknown:
                raise TableNotFoundError(unknown[0], self.suggest(unknown[0]))
            layer, table = name.split(".")
            with self._lock:
                self.db.execute(f"CREATE OR REPLACE VIEW memory.{layer}.{quote(table)} AS {text}")
            return
        with self._lock:
            handle = self._newest(name)
            fmt = self._format(name)
            version = fmt.version(handle)
            if self._views.get(name) != version:
                layer, table = name.split(".")
                snap = fmt.snapshot(handle)
                self._create_view(f"memory.{layer}.{quote(table)}", snap, fmt, handle)
                self._views[name] = version

    def _newest(self, name: str) -> Any:
        """The handle of ``name`` at its newest version. A table dropped and made again
        under the same name loses the views of its old versions."""
        follower = self._latest.get(name) or self._format(name).latest(
            self.storage, parse_table_name(name)
        )
        try:
            handle, replaced = follower.newest()
        except TableNotFoundError as exc:
            if name not in self._latest:
                raise TableNotFoundError(name, self.suggest(name)) from exc
            # Gone from the format it was in: converted to the other one, or dropped.
            follower = self._format(name).latest(self.storage, parse_table_name(name))
            try:
                handle, replaced = follower.newest()[0], True
            except TableNotFoundError as again:
                raise TableNotFoundError(name, self.suggest(name)) from again
        if replaced:
            for key in [k for k in self._views if k == name or k.startswith(f"{name}@")]:
                del self._views[key]
        self._latest[name] = follower
        return handle

    def _ensure_version(self, name: str, version: int) -> str:
        layer, table = name.split(".")
        view = f"memory.{layer}.{quote(f'{table}@v{version}')}"
        key = f"{name}@v{version}"
        with self._lock:
            if key not in self._views:
                handle = self._load(name, version)
                try:
                    fmt = self._format(name)
                    self._create_view(view, fmt.snapshot(handle), fmt, handle)
                except (FileNotFoundError, duckdb.IOException) as exc:
                    raise self._vacuumed(name, version) from exc
                self._views[key] = version
        return view

    def _vacuumed(self, name: str, version: int) -> VersionNotFoundError:
        """Why ``version`` cannot be read: vacuum removed its files; which versions can."""
        oldest = self._format(name).oldest_readable(self.storage, parse_table_name(name))
        if oldest is None:
            readable = "no version can be read in full"
        else:
            latest = self._format(name).version(self._load(name, None))
            readable = (
                f"only version {latest} can still be read"
                if oldest >= latest
                else f"versions {oldest} to {latest} can still be read"
            )
        return VersionNotFoundError(
            f"{name} version {version} cannot be read any more: its data files were removed "
            f"by vacuum (it is older than the table's time travel window); {readable}",
            f"read a version from {oldest} on, or see `lakehouse history {name}`; "
            "maintenance.vacuum_after sets how long removed files are kept"
            if oldest is not None
            else f"see `lakehouse history {name}`",
        )

    def resolve_version(self, name: str, version: int | None, ts: datetime | None) -> int:
        """The version current at ``ts``: the newest commit made at or before it."""
        if version is not None:
            return version
        assert ts is not None
        wanted = ts.timestamp() * 1000
        try:
            commits = self._format(name).commit_times(self.storage, parse_table_name(name))
        except TableNotFoundError as exc:
            raise TableNotFoundError(name, self.suggest(name)) from exc
        older: list[int] = [c["version"] for c in commits if c.get("timestamp", 0) <= wanted]
        if not older:
            first = min((c.get("timestamp", 0) for c in commits), default=0) / 1000
            raise VersionNotFoundError(
                f"{name} has no version at or before {ts.isoformat()}: its oldest readable "
                f"version is from {datetime.fromtimestamp(first).astimezone().isoformat()}",
                f"see `lakehouse history {name}` for the versions and their times",
            )
        return max(older)

    def _format(self, name: str) -> TableFormat[Any, Any]:
        return format_of(self.storage, parse_table_name(name))

    def _load(self, name: str, version: int | None) -> Any:
        """The table at ``version`` (None: the latest), or the reason it cannot be read."""
        try:
            return self._format(name).load(self.storage, parse_table_name(name), version)
        except TableNotFoundError as exc:
            raise TableNotFoundError(name, self.suggest(name)) from exc

    def _create_view(
        self, view: str, snap: Snapshot, fmt: TableFormat[Any, Any] | None, handle: Any = None
    ) -> None:
        """A view of a snapshot's files; a version DuckDB cannot read directly is read by
        its format (``handle`` in ``fmt``)."""
        if snap.direct or fmt is None:
            body = self._direct_sql(snap)
        else:
            body = self._fallback_sql(view, fmt, handle)
        self.db.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
        self._snapshots[view] = snap
        if snap.direct and all(f.num_records is not None for f in snap.files):
            self._counts[view] = snap.row_count  # no deletion vectors: the log's count holds
        else:
            self._counts.pop(view, None)

    def _duck_types(self, schema: pa.Schema) -> dict[str, str]:
        # An arro3 table: building a pyarrow one would import pandas (see snapshot.py).
        # Registered on a cursor of its own: a locked-down database does not find Python
        # variables by name.
        empty = arro3.Table.from_batches([], schema=normalize_schema(schema))
        con = self.db.cursor()
        try:
            con.register("__lh_types", empty)
            relation = con.sql("SELECT * FROM __lh_types")
            return {c: str(t) for c, t in zip(relation.columns, relation.types, strict=True)}
        finally:
            con.close()

    def _direct_sql(self, snap: Snapshot) -> str:
        expected = self._duck_types(snap.schema)
        names = snap.schema.names
        if not snap.files:
            nulls = ", ".join(f"CAST(NULL AS {expected[c]}) AS {quote(c)}" for c in names)
            return f"SELECT {nulls} LIMIT 0"
        if snap.mapping != "none":
            return self._mapped_sql(snap, expected)
        paths = [f.path for f in snap.files]
        present = file_columns(paths)
        data_columns = [c for c in names if c not in snap.partition_columns]
        all_present = set().union(*present.values())
        readable = [c for c in data_columns if c in all_present]
        actual = {}
        if readable:
            probe = self.db.sql(
                f"SELECT {', '.join(quote(c) for c in readable)} FROM "
                f"{_read_parquet(paths, union=len(set(present.values())) > 1)}"
            )
            actual = {c: str(t) for c, t in zip(probe.columns, probe.types, strict=True)}
        groups: dict[tuple[Any, ...], list[DataFile]] = defaultdict(list)
        for f in snap.files:  # files with deletion vectors apart
            groups[(f.partition, f.deletion is not None)].append(f)
        selects = []
        for (partition, _), group in groups.items():
            have = set().union(*(present[f.path] for f in group))
            values = dict(partition)
            cols = []
            for c in names:
                if c in values:
                    cols.append(f"CAST({literal(values[c])} AS {expected[c]}) AS {quote(c)}")
                elif c not in have:
                    cols.append(f"CAST(NULL AS {expected[c]}) AS {quote(c)}")
                elif actual.get(c) != expected[c]:
                    cols.append(f"CAST({quote(c)} AS {expected[c]}) AS {quote(c)}")
                else:
                    cols.append(quote(c))
            mixed = len({present[f.path] for f in group}) > 1
            selects.append(self._select(snap, cols, group, mixed))
        return "\nUNION ALL\n".join(selects)

    def _select(self, snap: Snapshot, cols: list[str], group: list[DataFile], mixed: bool) -> str:
        """SELECT ``cols`` from the files of ``group``; files with deletion vectors (a group
        has all or none) keep only the rows whose position their vector does not hold."""
        paths = [f.path for f in group]
        if group[0].deletion is None:
            return f"SELECT {', '.join(cols)} FROM {_read_parquet(paths, union=mixed)}"
        table = self._deleted_rows(snap, group)
        source = _read_parquet(paths, union=mixed, row_numbers=True)
        return (
            f"SELECT {', '.join(cols)} FROM {source} AS __lh_f ANTI JOIN {table} AS __lh_d "
            "ON __lh_f.__lh_file = __lh_d.file AND __lh_f.file_row_number = __lh_d.pos"
        )

    def _deleted_rows(self, snap: Snapshot, group: list[DataFile]) -> str:
        """A table of (file, row position) the deletion vectors of ``group`` remove, made
        once per set of vectors."""
        keys = sorted((f.path, f.deletion.unique_id) for f in group if f.deletion)
        digest = hashlib.sha256(repr((snap.root, keys)).encode()).hexdigest()
        table = f"memory.main.__lh_deleted_{digest[:24]}"
        with self._lock:
            if table not in self._deleted:
                self.db.execute(f"CREATE OR REPLACE TABLE {table} (file VARCHAR, pos BIGINT)")
                for f in group:
                    assert f.deletion is not None
                    rows = pa.table({"pos": positions(f.deletion, snap.root)})
                    self.db.register("__lh_incoming", rows)
                    try:
                        self.db.execute(
                            f"INSERT INTO {table} SELECT ?, pos FROM __lh_incoming", [f.path]
                        )
                    finally:
                        self.db.unregister("__lh_incoming")
                self._deleted.add(table)
        return table

    def _mapped_sql(self, snap: Snapshot, expected: dict[str, str]) -> str:
        """Column mapping: each file's columns found by physical name (name mode) or field
        id (id mode), nested fields too, and given the table's logical names."""
        trees = file_trees([f.path for f in snap.files])
        groups: dict[tuple[Any, ...], list[DataFile]] = defaultdict(list)
        exprs_of: dict[tuple[Column, ...], tuple[str, ...]] = {}
        for f in snap.files:
            tree = trees[f.path]
            if tree not in exprs_of:
                exprs_of[tree] = tuple(
                    _mapped(field, _find(tree, field, snap.mapping), None, snap.mapping, 0)
                    for field in snap.schema
                )
            groups[(f.partition, exprs_of[tree], f.deletion is not None)].append(f)
        selects = []
        for (partition, exprs, _), group in groups.items():
            values = dict(partition)
            cols = []
            for field, expr in zip(snap.schema, exprs, strict=True):
                c = field.name
                value = literal(values[c]) if c in values else expr
                cols.append(f"CAST({value} AS {expected[c]}) AS {quote(c)}")
            mixed = len({trees[f.path] for f in group}) > 1
            selects.append(self._select(snap, cols, group, mixed))
        return "\nUNION ALL\n".join(selects)

    def _fallback_sql(self, view: str, fmt: TableFormat[Any, Any], handle: Any) -> str:
        """Remote storage: let the table format's own reader read the files."""
        source = "__lh_" + re.sub(r"[^a-z0-9_]", "_", view.lower())
        schema = normalize_schema(fmt.schema(handle))
        table = fmt.scan(handle).cast(schema)
        # A registered Arrow object is private to one connection; a table is seen by all
        # the per-thread cursors.
        self.db.register("__lh_incoming", table)
        try:
            self.db.execute(f"CREATE OR REPLACE TABLE {source} AS SELECT * FROM __lh_incoming")
        finally:
            self.db.unregister("__lh_incoming")
        return f"SELECT * FROM {source}"

    # -- errors ---------------------------------------------------------------------------
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self.db.cursor()
            self._local.cursor = cursor
        return cursor

    def _sql_error(
        self, exc: duckdb.Error, suggest: Callable[[str], list[str]] | None = None
    ) -> Exception:
        text = str(exc)
        if isinstance(exc, duckdb.CatalogException):
            match = re.search(r'Table with name "?([^"!\s]+)"? does not exist', text)
            if match:
                missing = match.group(1)
                close = (suggest or self.suggest)(missing)
                if suggest is not None:  # DuckDB's own "did you mean" may name any view
                    text = text.split("!")[0] + "!" if "!" in text else text
                if "." not in missing:
                    candidates = [n for n in close if n.endswith("." + missing)]
                    if candidates:
                        return SQLError(
                            text, f"tables are named layer.table: did you mean {candidates[0]}?"
                        )
                return TableNotFoundError(missing, close)
        return SQLError(text)

    def _hint(self, name: str, reading: Reading | None) -> list[str]:
        """Tables named like ``name`` that whoever asks may read."""
        return reading.suggest(name) if reading is not None else self.suggest(name)


def _no_versions(name: str) -> SQLError:
    return SQLError(
        f"{name} is a view: it has no versions to travel to",
        "time travel the tables the view reads instead",
    )


def _read_parquet(paths: list[str], union: bool, row_numbers: bool = False) -> str:
    files = "[" + ", ".join(literal(p) for p in paths) + "]"
    extra = ", union_by_name = true" if union else ""
    if row_numbers:
        extra += ", file_row_number = true, filename = '__lh_file'"
    return f"read_parquet({files}, hive_partitioning = false{extra})"


_PHYSICAL = b"delta.columnMapping.physicalName"
_ID = b"delta.columnMapping.id"


def _find(columns: tuple[Column, ...], field: pa.Field, mode: str) -> Column | None:
    """The file column holding ``field``: by field id in id mode, else (or in a file
    written with no field ids, before the mode was set) by physical name."""
    meta = field.metadata or {}
    if mode == "id" and _ID in meta and any(c.field_id is not None for c in columns):
        ident = int(meta[_ID])
        return next((c for c in columns if c.field_id == ident), None)
    name = meta[_PHYSICAL].decode() if _PHYSICAL in meta else field.name
    return next((c for c in columns if c.name == name), None)


def _mapped(field: pa.Field, column: Column | None, ref: str | None, mode: str, depth: int) -> str:
    """SQL for the logical value of ``field`` stored in ``column`` of a file, reached by
    ``ref`` (None: a top-level column, named by the file); NULL when the file lacks it."""
    if column is None:
        return "NULL"
    value = quote(column.name) if ref is None else ref
    return _rebuild(field.type, column, value, mode, depth)


def _rebuild(kind: pa.DataType, column: Column, value: str, mode: str, depth: int) -> str:
    """``value`` (of the file's type at ``column``) with nested fields renamed to ``kind``'s
    logical names; unchanged where no struct lies below."""
    if not _has_struct(kind):
        return value
    if pa.types.is_struct(kind):
        parts = []
        for i in range(kind.num_fields):
            child = kind.field(i)
            found = _find(column.children, child, mode)
            ref = None if found is None else f"struct_extract({value}, {literal(found.name)})"
            parts.append(f"{quote(child.name)} := {_mapped(child, found, ref, mode, depth + 1)}")
        return f"CASE WHEN {value} IS NULL THEN NULL ELSE struct_pack({', '.join(parts)}) END"
    var = f"__lh_x{depth}"
    if pa.types.is_map(kind):
        pair = column.children[0] if column.children else column
        if len(pair.children) != 2:
            return "NULL"
        key, item = pair.children
        k = _rebuild(kind.key_type, key, f"{var}.key", mode, depth + 1)
        v = _rebuild(kind.item_type, item, f"{var}.value", mode, depth + 1)
        pair_sql = f"struct_pack(key := {k}, value := {v})"
        return f"map_from_entries(list_transform(map_entries({value}), lambda {var}: {pair_sql}))"
    element = _list_element(column)
    if element is None:
        return "NULL"
    inner = _rebuild(kind.value_type, element, var, mode, depth + 1)
    return f"list_transform({value}, lambda {var}: {inner})"


def _list_element(column: Column) -> Column | None:
    """The element of a parquet list, by the format's rules for two- and three-level lists:
    the repeated field is the element when it is no group of one field (or is named
    ``array`` or ``<list>_tuple``), else its one field is."""
    if not column.children:
        return None
    repeated = column.children[0]
    if len(repeated.children) != 1 or repeated.name in ("array", f"{column.name}_tuple"):
        return repeated
    return repeated.children[0]


def _has_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return True
    if pa.types.is_map(kind):
        return _has_struct(kind.key_type) or _has_struct(kind.item_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_struct(kind.value_type)
    return False
