"""Statements of the SQL editor: run for a caller with bound parameters, a page at a time
(sorted and filtered by the engine, so a large result never travels whole), each run kept
in the caller's history."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.catalog.queries import query_history, record_query
from lakehouse.errors import SQLError
from lakehouse.quoting import ident
from lakehouse.service.result_cache import KEEP_BYTES, KEEP_ROWS, KEPT, result_key
from lakehouse.service.sql_text import bound, engine_text, error_position, typed
from lakehouse.sql.sandbox import ResultTooLargeError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.service.reader import Reader
    from lakehouse.warehouse import Lakehouse

MAX_PAGE = 10_000


@dataclass
class Page:
    """Which rows of a result: ``offset``/``size``, ordered by ``sort`` (column, direction)
    pairs, kept where every ``filters`` condition holds (column to condition text:
    ``text`` contains it, ``=v`` equals, ``>v`` ``<v`` ``>=v`` ``<=v``, ``null``, ``!null``)."""

    offset: int = 0
    size: int = 100
    sort: list[tuple[str, Literal["asc", "desc"]]] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    limit: int | None = None  # the statement's first rows only (the editor's row limit)


@dataclass
class PageResult:
    table: pa.Table
    total: int  # rows of the whole (filtered) result
    offset: int
    seconds: float
    cached: bool
    tables: list[str]
    truncated: bool = False  # the statement had more rows than the page's limit


def run_page(
    lh: Lakehouse,
    reader: Reader,
    sql: str,
    values: dict[str, Any] | None = None,
    page: Page | None = None,
    *,
    timeout: float = 30.0,
    record: bool = True,
) -> PageResult:
    """One page of ``sql``'s result as ``reader`` may see it (pii masked, tables it may
    not read unknown), with the number of rows of the whole result; ``:name`` parameters
    take ``values``. The run is added to the reader's history (errors too). An engine
    error carries ``position`` (line and column in ``sql``) when it points somewhere."""
    page = page or Page()
    if not 0 < page.size <= MAX_PAGE:
        raise SQLError(f"a page holds 1 to {MAX_PAGE:,} rows, not {page.size}")
    params = bound(sql, values or {})
    text = engine_text(sql).strip().rstrip(";").rstrip()
    started = time.perf_counter()
    where, filter_params = _where(page.filters)
    all_params = {**(params or {}), **filter_params} or None
    inner = f"(\n{text}\n) AS result"
    counted_from = inner
    if page.limit is not None:
        inner = f"(SELECT * FROM (\n{text}\n) AS statement LIMIT {int(page.limit)}) AS result"
        counted_from = (
            f"(SELECT * FROM (\n{text}\n) AS statement LIMIT {int(page.limit) + 1}) AS result"
        )
    order = ", ".join(
        f"{ident(c)} {'DESC' if d == 'desc' else 'ASC'} NULLS LAST" for c, d in page.sort
    )
    body = f"SELECT * FROM {inner}{where}" + (f" ORDER BY {order}" if order else "")
    options: dict[str, Any] = {
        "timeout": timeout,
        "masked": reader.masked,
        "can_read": reader.can_read,
        "params": all_params,
    }
    view = (tuple(page.sort), tuple(sorted(page.filters.items())), page.limit)
    key = result_key(lh, reader, text, all_params, view)
    offset = max(page.offset, 0)
    try:
        kept = KEPT.get(key) if key is not None else None
        hit = kept is not None
        if kept is None and key is not None:  # read it whole once, if it is not too large
            try:
                whole = lh.engine.safe_query(body, limit=KEEP_ROWS, **options)
            except ResultTooLargeError:
                kept = KEPT.put(key, None, [])
            else:
                small = not whole.truncated and whole.table.nbytes <= KEEP_BYTES
                kept = KEPT.put(key, whole.table if small else None, whole.tables)
        if kept is not None and kept.table is not None:
            rows_table, rows_cached, read = kept.table.slice(offset, page.size), hit, kept.tables
        else:
            rows = lh.engine.safe_query(
                f"{body} LIMIT {page.size} OFFSET {offset}", limit=page.size, **options
            )
            rows_table, rows_cached, read = rows.table, rows.cached, rows.tables
        counted = lh.engine.safe_query(
            f"SELECT count(*) AS n FROM {counted_from}{where}", **options
        )
    except SQLError as exc:
        if record:
            record_query(lh.catalog, reader.name, sql, values or {}, error=exc.message[:2000])
        position = error_position(exc.message, sql)
        if position is not None:
            exc.position = position  # type: ignore[attr-defined]
        raise
    seconds = time.perf_counter() - started
    total = int(counted.table.column(0)[0].as_py())
    truncated = page.limit is not None and total > page.limit
    if truncated:
        total = int(page.limit or 0)
    if record:
        record_query(
            lh.catalog, reader.name, sql, values or {}, row_count=total, elapsed_ms=seconds * 1000
        )
    return PageResult(
        rows_table, total, page.offset, seconds, rows_cached and counted.cached, read, truncated
    )


_CONDITION = re.compile(r"^(>=|<=|!=|=|>|<)\s*(.*)$", re.DOTALL)


def _where(filters: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of the filters and the values it binds."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    for i, (column, condition) in enumerate(sorted(filters.items())):
        text = condition.strip()
        if not text:
            continue
        col = ident(column)
        name = f"__filter_{i}"
        if text.lower() == "null":
            parts.append(f"{col} IS NULL")
            continue
        if text.lower() in ("!null", "not null"):
            parts.append(f"{col} IS NOT NULL")
            continue
        m = _CONDITION.match(text)
        if m is not None:
            op, value = m.group(1), typed(m.group(2).strip())
            if isinstance(value, str):  # compared as text
                parts.append(f"CAST({col} AS VARCHAR) {op} ${name}")
            else:
                parts.append(f"{col} {op} ${name}")
            params[name] = value
            continue
        parts.append(f"CAST({col} AS VARCHAR) ILIKE ${name} ESCAPE '\\'")
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params[name] = f"%{escaped}%"
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def history(lh: Lakehouse, reader: Reader, limit: int = 50) -> list[dict[str, Any]]:
    """The reader's statements, newest first."""
    return query_history(lh.catalog, reader.name, limit)
