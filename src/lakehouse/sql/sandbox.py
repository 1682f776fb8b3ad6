"""The read-only SQL sandbox of the API: which statements run, what they may read, and how
they are run (a time limit, a row limit).

A statement passes in two steps. Its kind first: exactly one SELECT, or EXPLAIN of one.
Then, once the engine has turned its ``layer.table`` names into views, DuckDB's own parse
tree of it (``json_serialize_sql``) is walked: every table it reads must be a CTE of the
statement or a view the engine made for it, table functions are limited to those that make
rows, and functions that show files or the server's state are refused. Behind the checks,
the locked-down database (``SQLEngine.lock_down``) cannot reach files outside the warehouse,
load extensions or change settings.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from lakehouse.errors import (
    QueryRefusedError,
    QueryTimeoutError,
    SQLError,
    TableNotFoundError,
)
from lakehouse.names import LAYERS
from lakehouse.sql.names import Token, find_references, tokens

READ_ONLY = "the API runs read-only SELECT statements"
HINT = "send one SELECT (WITH, VALUES, set operations) or EXPLAIN SELECT over layer.table names"
FROM_HINT = (
    "a statement reads layer.table names (time travel included), CTEs, and rows made by "
    "range, generate_series or unnest"
)
STATE_HINT = "settings, files and DuckDB's own catalog are not available through the API"

# Table functions that only make rows.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Functions that read files or show the server's state (settings, variables, catalog,
# the statement's own text), and macros built on them.
REFUSED_FUNCTIONS = frozenset(
    {
        "current_setting",
        "getvariable",
        "getenv",
        "sniff_csv",
        "glob",
        "query",
        "query_table",
        "delta_scan",
        "which_secret",
        "checkpoint",
        "force_checkpoint",
        "current_query",
        "current_query_id",
        "current_database",
        "current_catalog",
        "current_schema",
        "current_schemas",
        "current_connection_id",
        "current_transaction_id",
        "txid_current",
        "format_type",
        "get_block_size",
        "col_description",
        "obj_description",
        "shobj_description",
        "enable_logging",
        "disable_logging",
        "enable_profiling",
        "disable_profiling",
        "parse_duckdb_log_message",
    }
)
REFUSED_PREFIXES = (
    "duckdb_",
    "pragma_",
    "read_",
    "parquet_",
    "iceberg_",
    "delta_",
    "pg_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "json_execute",
    "json_serialize",
    "json_deserialize",
)
# What makes a result differ from one run to the next: such results are not cached.
VOLATILE = frozenset(
    {
        "random",
        "setseed",
        "uuid",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "now",
        "today",
        "current_timestamp",
        "get_current_timestamp",
        "current_date",
        "current_time",
        "get_current_time",
        "current_localtimestamp",
        "current_localtime",
        "localtimestamp",
        "localtime",
        "transaction_timestamp",
        "statement_timestamp",
        "nextval",
    }
)
# Table references that read nothing but what they hold.
PLAIN_REFS = frozenset({"SUBQUERY", "JOIN", "EXPRESSION_LIST", "EMPTY", "PIVOT"})
SHOW_NAMES = {"DESCRIBE": "DESCRIBE", "SUMMARY": "SUMMARIZE", "SHOW_SPECIAL": "SHOW"}
CATALOGS = frozenset({"information_schema", "pg_catalog", "system", "temp", "main"})
_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*([A-Za-z_]+)", re.DOTALL)
_AS_OF = re.compile(r"\bof\b", re.IGNORECASE)  # cheap: most statements have no time travel
# Words between CREATE/DROP/ALTER and the kind of object.
_MODIFIERS = frozenset(
    {"or", "replace", "temp", "temporary", "persistent", "unique", "if", "not", "exists"}
)


MAX_RESULT_BYTES_ENV = "LAKEHOUSE_MAX_RESULT_BYTES"
DEFAULT_MAX_RESULT_BYTES = 512 << 20


class ResultTooLargeError(SQLError):
    """A result over the size an answer may have (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the result is larger than the limit of {limit:,} bytes",
            "narrow the query: select fewer columns, filter rows, lower the limit, or "
            f"aggregate (the server's {MAX_RESULT_BYTES_ENV} sets the limit)",
        )
        self.limit = limit


def result_limit() -> int:
    """The most bytes a result may take, from ``LAKEHOUSE_MAX_RESULT_BYTES``."""
    raw = os.environ.get(MAX_RESULT_BYTES_ENV)
    if raw is None:
        return DEFAULT_MAX_RESULT_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SQLError(
            f"{MAX_RESULT_BYTES_ENV}={raw!r} is not a positive number of bytes",
            f"e.g. {MAX_RESULT_BYTES_ENV}={DEFAULT_MAX_RESULT_BYTES}",
        )
    return value


@dataclass
class SafeResult:
    table: pa.Table  # at most `limit` rows
    truncated: bool  # more rows existed
    cached: bool  # served from the cache
    tables: list[str]  # the layer.table names the statement read
    seconds: float


@dataclass
class Reading:
    """What one sandboxed statement reads, gathered while the engine resolves its names:
    the tables it names (each checked with ``can_read``), every table and view it reads
    (through views too) with a stamp of what it was, the columns masked per table, and
    the views the prepared statement may name."""

    can_read: Callable[[str], bool] | None = None
    masked: Callable[[str], list[str]] | None = None
    named: list[str] = field(default_factory=list)
    stamps: dict[str, Hashable] = field(default_factory=dict)
    views: set[tuple[str, str]] = field(default_factory=set)  # (schema, name)
    depth: int = 0  # > 0 inside the body of a SQL view
    # tables named like a name, among those the caller may read (for "did you mean")
    suggest: Callable[[str], list[str]] = lambda name: []  # noqa: E731
    _masks: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def enter(self, name: str) -> None:
        """A table or view the statement reads: one the caller may not read is answered as
        a table that does not exist, so its existence is not told either."""
        if self.depth == 0 and name not in self.named:
            if self.can_read is not None and not self.can_read(name):
                hidden = TableNotFoundError(name, self.suggest(name))
                hidden.denied = True  # type: ignore[attr-defined]  # for the audit log only
                raise hidden
            self.named.append(name)

    def mask(self, name: str) -> tuple[str, ...]:
        """The columns of ``name`` read as pseudonyms."""
        if name not in self._masks:
            columns = self.masked(name) if self.masked is not None else None
            self._masks[name] = tuple(sorted(set(columns or ())))
        return self._masks[name]

    def signature(self, names: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The masked columns of ``names``, as part of a cache key."""
        return tuple((n, cols) for n in sorted(names) if (cols := self.mask(n)))


# -- step 1: the kind of statement ------------------------------------------------------------
def check_statement(cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Exactly one SELECT, or EXPLAIN of one; else ``QueryRefusedError`` naming it."""
    kinds = _kinds(cursor, sql)
    if not kinds:
        raise SQLError("the query holds no statement (only comments?)", HINT)
    if len(kinds) > 1:
        raise QueryRefusedError(
            f"more than one statement ({len(kinds)}) is not allowed: the API runs one "
            "statement per request",
            "send the statements one at a time",
        )
    kind = kinds[0]
    if kind == duckdb.StatementType.SELECT:
        return
    if kind == duckdb.StatementType.EXPLAIN:
        inner = explained(sql)
        try:
            inner_kinds = _kinds(cursor, inner) if inner.strip() else []
        except SQLError:
            inner_kinds = []
        if inner_kinds == [duckdb.StatementType.SELECT]:
            return
        what = f"EXPLAIN {statement_name(inner)}" if inner_kinds else "this EXPLAIN"
        raise QueryRefusedError(f"{what} is not allowed: {READ_ONLY}", HINT)
    raise QueryRefusedError(f"{statement_name(sql)} is not allowed: {READ_ONLY}", HINT)


def _kinds(cursor: duckdb.DuckDBPyConnection, sql: str) -> list[duckdb.StatementType]:
    try:
        return [s.type for s in cursor.extract_statements(without_time_travel(sql))]
    except duckdb.Error as exc:
        raise sql_error(exc) from exc


def sql_error(exc: duckdb.Error) -> SQLError:
    """DuckDB's error as the API's; its limit on nesting said without its advice to
    change a setting (settings cannot change through the API)."""
    text = str(exc)
    if "max expression depth" in text.lower():
        limit = re.search(r"limit of (\d+)", text)
        return SQLError(
            "the statement nests expressions too deeply: more than "
            f"{limit.group(1) if limit else 'the'} levels (each operator such as + adds "
            "one), beyond what the engine reads",
            "split it: compute parts in a CTE or a sub-select and combine them, or sum "
            "rows with an aggregate instead of many terms",
        )
    return SQLError(text, HINT)


def without_time_travel(sql: str) -> str:
    """``sql`` with its ``VERSION AS OF`` / ``TIMESTAMP AS OF`` clauses left out, so that
    DuckDB's parser can read it."""
    if not _AS_OF.search(sql):
        return sql
    pieces: list[str] = []
    last = 0
    for ref in find_references(sql):
        if ref.version is not None or ref.timestamp is not None:
            pieces.append(sql[last : ref.start])
            pieces.append(ref.name)
            last = ref.end
    pieces.append(sql[last:])
    return "".join(pieces)


def _words(sql: str) -> list[Token]:
    return [t for t in tokens(sql) if t.kind not in ("space", "comment")]


def statement_name(sql: str) -> str:
    """The keywords that say what a statement does: COPY, CREATE MACRO, SET VARIABLE."""
    words = [t.text for t in _words(sql)[:8]]
    if not words:
        return "an empty statement"
    first = words[0].upper()
    rest = [w.lower() for w in words[1:]]
    if first in ("CREATE", "DROP", "ALTER", "COMMENT"):
        kind = next((w for w in rest if w not in _MODIFIERS), "")
        return f"{first} {kind.upper()}".strip()
    if first in ("EXPORT", "IMPORT", "FORCE") and rest:
        return f"{first} {rest[0].upper()}"
    if first in ("SET", "RESET") and rest[:1] == ["variable"]:
        return f"{first} VARIABLE"
    if first in ("WITH", "("):
        return "this statement"
    return first


def explained(sql: str) -> str:
    """The statement an ``EXPLAIN [ANALYZE] [(options)]`` is about, as text."""
    toks = _words(sql)
    i = 1 if toks and toks[0].text.lower() == "explain" else 0
    if i < len(toks) and toks[i].text.lower() in ("analyze", "analyse"):
        i += 1
    if i < len(toks) and toks[i].text == "(":
        # `(FORMAT json)` are options; `(SELECT ...)` is the statement itself.
        j = i + 1
        while j < len(toks) and toks[j].text not in ("(", ")"):
            if j == i + 1 and toks[j].text.lower() in ("select", "with", "from", "values"):
                break
            j += 1
        if j < len(toks) and toks[j].text == ")":
            i = j + 1
    return sql[toks[i].start :] if i < len(toks) else ""


def is_explain(sql: str) -> bool:
    first = _FIRST_WORD.match(sql)
    return first is not None and first.group(1).lower() == "explain"


# -- step 2: the parse tree of the prepared statement ------------------------------------------
def check_tree(
    cursor: duckdb.DuckDBPyConnection,
    text: str,
    views: set[tuple[str, str]],
    unknown: list[str],
    suggest: Callable[[str], list[str]],
) -> bool:
    """Walk DuckDB's parse tree of ``text`` (the prepared SELECT, or EXPLAIN of one) and
    refuse what reads anything but ``views`` (the engine's views for the statement, by
    schema and name), the statement's CTEs and rows it makes itself. True when the result
    may differ from one run to the next (random, now, samples)."""
    verdict_key = (text, frozenset(views), frozenset(unknown))
    with _verdicts_lock:
        if verdict_key in _verdicts:
            _verdicts.move_to_end(verdict_key)
            return _verdicts[verdict_key]
    select = explained(text) if is_explain(text) else text
    try:
        answer = cursor.execute("SELECT json_serialize_sql(?)", [select]).fetchall()[0][0]
    except duckdb.Error as exc:
        raise sql_error(exc) from exc
    tree = read_tree(answer)
    if tree.get("error"):
        message = str(tree.get("error_message") or "the statement cannot be read")
        if "Only SELECT" in message:
            raise QueryRefusedError(f"{statement_name(select)} is not allowed: {READ_ONLY}", HINT)
        raise sql_error(duckdb.Error(message))
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise QueryRefusedError(
            f"more than one statement ({len(statements)}) is not allowed: the API runs one "
            "statement per request",
            "send the statements one at a time",
        )
    walker = _Walker({(s.lower(), n.lower()) for s, n in views}, set(unknown), suggest)
    walker.walk(statements[0], frozenset())
    with _verdicts_lock:
        _verdicts[verdict_key] = walker.volatile
        if len(_verdicts) > 4096:
            _verdicts.popitem(last=False)
    return walker.volatile


_TOKEN = re.compile(
    r'\s*(?:("(?:[^"\\]|\\.)*")|([{}\[\]:,])|(-?[0-9][0-9.eE+-]*|true|false|null))', re.DOTALL
)
_SCALARS = {"true": True, "false": False, "null": None}


def read_tree(text: str) -> Any:
    """DuckDB's parse tree from its JSON: Python's parser, or, for a tree nested beyond
    its recursion limit, a reader with a stack of its own."""
    try:
        return json.loads(text)
    except RecursionError:
        return _read_deep(text)


def _read_deep(text: str) -> Any:
    stack: list[Any] = []  # open containers; a dict's pending key is kept after it
    keys: list[str | None] = []
    root: Any = None
    position = 0
    end = len(text)
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None:
            if not text[position:].strip():
                break
            raise SQLError("DuckDB's parse tree of the statement cannot be read", HINT)
        position = match.end()
        string, mark, scalar = match.groups()
        if mark in ("{", "["):
            stack.append({} if mark == "{" else [])
            keys.append(None)
            continue
        if mark in ("}", "]"):
            value = stack.pop()
            keys.pop()
        elif mark in (":", ","):
            continue
        elif string is not None:
            value = json.loads(string)
            if stack and isinstance(stack[-1], dict) and keys[-1] is None:
                keys[-1] = value  # a key: its value comes next
                continue
        else:
            value = _SCALARS[scalar] if scalar in _SCALARS else json.loads(scalar)
        if not stack:
            root = value
        elif isinstance(stack[-1], dict):
            stack[-1][keys[-1]] = value
            keys[-1] = None
        else:
            stack[-1].append(value)
    return root


# Statements that passed the tree check (prepared text, views, unknown names) -> volatile:
# a repeated statement whose result left the cache is not parsed again.
_verdicts: OrderedDict[tuple[str, frozenset[Any], frozenset[Any]], bool] = OrderedDict()
_verdicts_lock = threading.Lock()


class _Walker:
    def __init__(
        self,
        views: set[tuple[str, str]],
        unknown: set[str],
        suggest: Callable[[str], list[str]],
    ) -> None:
        self.views = views
        self.unknown = unknown
        self.suggest = suggest
        self.volatile = False

    def walk(self, root: Any, ctes: frozenset[str]) -> None:
        """Every node of the tree, with the CTEs it sees; with a stack of its own (a
        statement of a thousand ``+`` nests some thousands of levels deep)."""
        stack: list[tuple[Any, frozenset[str]]] = [(root, ctes)]
        while stack:
            node, ctes = stack.pop()
            if isinstance(node, list):
                stack.extend((item, ctes) for item in reversed(node))
                continue
            if not isinstance(node, dict):
                continue
            bodies: list[tuple[Any, frozenset[str]]] = []
            if isinstance(node.get("cte_map"), dict):  # a query node
                bodies, ctes = self._with_clause(node["cte_map"], ctes)
            self._check(node, ctes)
            children = [
                (value, ctes)
                for key, value in node.items()
                if key != "cte_map" and isinstance(value, dict | list)
            ]
            stack.extend(reversed(bodies + children))

    def _check(self, node: dict[str, Any], ctes: frozenset[str]) -> None:
        if "class" in node:  # an expression
            if "function_name" in node:
                self._function(node)
            elif node.get("class") == "COLUMN_REF" and len(node.get("column_names") or ()) == 1:
                if str(node["column_names"][0]).lower() in VOLATILE:
                    self.volatile = True  # current_timestamp, current_date
        elif "alias" in node and "sample" in node and "type" in node:  # a table reference
            self._table_ref(node, ctes)
        if node.get("sample"):
            self.volatile = True

    def _with_clause(
        self, cte_map: dict[str, Any], ctes: frozenset[str]
    ) -> tuple[list[tuple[Any, frozenset[str]]], frozenset[str]]:
        """The CTEs' bodies with the CTEs each sees, and the CTEs the query sees. Each CTE
        sees the ones before it, and itself only when recursive (a CTE that names itself
        otherwise reads the catalog object of that name); the query sees them all. DuckDB
        matches CTE names case-insensitively."""
        bodies: list[tuple[Any, frozenset[str]]] = []
        for entry in cte_map.get("map") or []:
            name = str(entry.get("key", "")).lower()
            value = entry.get("value") or {}
            body = value.get("query_node") or {}
            own = (
                body.get("type") == "RECURSIVE_CTE_NODE"
                and str(body.get("cte_name", "")).lower() == name
            )
            bodies.append((value, ctes | {name} if own else ctes))
            ctes = ctes | {name}
        return bodies, ctes

    def _table_ref(self, ref: dict[str, Any], ctes: frozenset[str]) -> None:
        kind = ref.get("type")
        if kind == "BASE_TABLE":
            self._base_table(ref, ctes)
        elif kind == "TABLE_FUNCTION":
            function = ref.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            if name not in TABLE_FUNCTIONS or function.get("schema") or function.get("catalog"):
                raise QueryRefusedError(
                    f"the table function {name}() is not allowed: it reads outside the "
                    "warehouse's tables",
                    FROM_HINT,
                )
        elif kind == "SHOW_REF":
            if ref.get("query") is None:  # SHOW TABLES, SHOW name: DuckDB's catalog
                what = SHOW_NAMES.get(str(ref.get("show_type")), "SHOW")
                if ref.get("table_name"):
                    what += " " + str(ref["table_name"]).strip('"')
                raise QueryRefusedError(
                    f"{what} is not allowed: it reads DuckDB's own catalog",
                    "GET /tables lists the tables; DESCRIBE SELECT * FROM layer.table gives "
                    "a table's columns",
                )
        elif kind not in PLAIN_REFS:
            raise QueryRefusedError(f"a {kind} table reference is not allowed: {READ_ONLY}", HINT)

    def _base_table(self, ref: dict[str, Any], ctes: frozenset[str]) -> None:
        catalog = str(ref.get("catalog_name") or "")
        schema = str(ref.get("schema_name") or "")
        table = str(ref.get("table_name") or "")
        if not catalog and not schema and table.lower() in ctes:
            return
        if catalog.lower() in ("", "memory") and (schema.lower(), table.lower()) in self.views:
            return
        shown = ".".join(p for p in (catalog, schema, table) if p)
        if not catalog and not schema and any(c in table for c in "/\\:.*?"):
            raise QueryRefusedError(
                f"reading the file {table!r} is not allowed: FROM reads tables, not paths",
                FROM_HINT,
            )
        name = f"{schema}.{table}".lower()
        if not catalog and name in self.unknown:
            raise TableNotFoundError(name, self.suggest(name))
        if not catalog and not schema:
            close = [n for n in self.suggest(table) if n.split(".")[-1] == table.lower()]
            if close:
                raise QueryRefusedError(
                    f"reading {table} is not allowed: tables are named layer.table",
                    f"did you mean {close[0]}?",
                )
        internal = table.lower().startswith(("duckdb_", "pg_", "sqlite_", "pragma_"))
        if internal or catalog.lower() in CATALOGS or schema.lower() in CATALOGS:
            raise QueryRefusedError(
                f"reading {shown} is not allowed: DuckDB's own catalog and settings are not "
                "readable through the API",
                FROM_HINT,
            )
        if schema.lower() in LAYERS and catalog.lower() in ("", "memory"):
            reason = "only the tables the statement names as layer.table are read"
        else:
            reason = "it is neither a layer.table of the warehouse nor a CTE of the statement"
        raise QueryRefusedError(f"reading {shown} is not allowed: {reason}", FROM_HINT)

    def _function(self, node: dict[str, Any]) -> None:
        name = str(node.get("function_name", "")).lower()
        qualifier = ".".join(str(node.get(k)) for k in ("catalog", "schema") if node.get(k))
        if qualifier:
            raise QueryRefusedError(
                f"the function {qualifier}.{name}() is not allowed: functions are called by "
                "their plain name",
                STATE_HINT,
            )
        if name in ("sleep_ms", "pg_sleep"):
            raise QueryRefusedError(
                f"the function {name}() is not allowed: it holds a server thread doing nothing",
                "the API runs statements that read tables",
            )
        if name in REFUSED_FUNCTIONS or name.startswith(REFUSED_PREFIXES):
            raise QueryRefusedError(
                f"the function {name}() is not allowed: it reads files or the server's state",
                STATE_HINT,
            )
        if name in VOLATILE:
            self.volatile = True


# -- step 3: running it -----------------------------------------------------------------------
class _Watchdog:
    """One thread that calls what is due: a statement's time limit costs no thread of its
    own. Cancelled entries stay in the heap until they come up (or it is rebuilt)."""

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []  # [when, sequence, callback or None]
        self._cancelled = 0
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, callback: Callable[[], None]) -> list[Any]:
        entry = [when, next(self._sequence), callback]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lakehouse-deadlines")
                self._thread.daemon = True
                self._thread.start()
            if self._heap[0] is entry:  # due before anything else: wake the thread
                self._cond.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        with self._cond:
            if entry[2] is not None:
                entry[2] = None
                self._cancelled += 1
                if self._cancelled > 64 and self._cancelled > len(self._heap) // 2:
                    self._heap = [e for e in self._heap if e[2] is not None]
                    heapq.heapify(self._heap)
                    self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                    self._cancelled -= 1
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                callback = heapq.heappop(self._heap)[2]
            try:
                callback()
            except Exception:  # noqa: BLE001 - the thread serves every other statement
                pass
            callback = None  # holds a cursor: let it go now, not at the next deadline


_watchdog = _Watchdog()


class Deadline:
    """Interrupts ``cursor`` after ``seconds``, and never once the statement is over."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self.cursor: duckdb.DuckDBPyConnection | None = cursor
        self.seconds = seconds
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._entry: list[Any] | None = None

    def __enter__(self) -> Deadline:
        self._entry = _watchdog.call_at(time.monotonic() + self.seconds, self._fire)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            self.cursor = None
        if self._entry is not None:
            _watchdog.cancel(self._entry)

    def _fire(self) -> None:
        with self._lock:
            if not self._done and self.cursor is not None:
                self.fired = True
                self.cursor.interrupt()


def run_limited(
    cursor: duckdb.DuckDBPyConnection,
    text: str,
    limit: int,
    timeout: float,
    params: dict[str, Any] | None = None,
) -> tuple[pa.Table, bool]:
    """At most ``limit`` rows of ``text`` and whether there were more, reading record
    batches only until the limit is passed; stopped after ``timeout`` seconds, and with
    ``ResultTooLargeError`` once the rows read take more than ``result_limit()`` bytes.
    ``params`` are bound to the statement's named parameters by DuckDB."""
    most = result_limit()
    with Deadline(cursor, timeout) as deadline:
        try:
            try:
                relation = cursor.sql(text) if params is None else cursor.sql(text, params=params)
            except duckdb.Error as exc:
                if "max expression depth" in str(exc).lower():
                    raise sql_error(exc) from exc
                raise
            try:
                reader = relation.to_arrow_reader(max(1024, min(limit + 1, 100_000)))
            except pa.ArrowInvalid as exc:  # a type Arrow cannot take (nested too deeply)
                raise SQLError(
                    f"the result cannot be returned: {exc}",
                    "return flatter values: fewer levels of lists and structs",
                ) from exc
            batches: list[pa.RecordBatch] = []
            rows = size = 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                size += batch.nbytes
                if size > most:
                    reader.close()
                    raise ResultTooLargeError(most)
                if rows > limit:
                    break
            reader.close()
        except (duckdb.InterruptException, RuntimeError, OSError) as exc:
            # An interrupt during the statement's start surfaces as a plain RuntimeError;
            # DuckDB's errors while Arrow reads a batch as OSError.
            if "maximum total string size" in str(exc):  # one batch over 2 GiB
                raise ResultTooLargeError(most) from exc
            if not isinstance(exc, duckdb.InterruptException) and "interrupted" not in str(exc):
                if isinstance(exc, OSError):
                    raise SQLError(str(exc)) from exc
                raise
            if deadline.fired:
                raise QueryTimeoutError(
                    f"the statement was stopped after {timeout:g} s",
                    "narrow it (filter on partition or date columns, fewer joins) or add a LIMIT",
                ) from exc
            raise SQLError(str(exc)) from exc
    table = pa.Table.from_batches(batches, schema=reader.schema)
    if rows > limit:
        return table.slice(0, limit), True
    return table, False
