"""Saved queries and each caller's query history, in the catalog database."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from lakehouse.catalog import schema as cs

if TYPE_CHECKING:
    from lakehouse.catalog.store import Catalog

HISTORY_KEPT = 200  # per caller
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates


@dataclass
class SavedQuery:
    id: int
    name: str
    description: str
    sql: str
    owner: str
    params: dict[str, Any] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    chart: dict[str, Any] | None = None
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "sql": self.sql,
            "params": self.params,
            "tables": self.tables,
            "chart": self.chart,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _saved(row: Any) -> SavedQuery:
    return SavedQuery(
        id=row.id,
        name=row.name,
        description=row.description or "",
        sql=row.sql,
        owner=row.owner,
        params=json.loads(row.params_json or "{}"),
        tables=json.loads(row.tables_json or "[]"),
        chart=json.loads(row.chart_json) if row.chart_json else None,
        created_at=_stamp(row.created_at),
        updated_at=_stamp(row.updated_at),
    )


def storable(text: str | None) -> str | None:
    """``text`` as every catalog database stores it: characters UTF-8 cannot encode (lone
    surrogates) and NUL (which PostgreSQL refuses) replaced by U+FFFD."""
    if text is None:
        return None
    return _UNSTORABLE.sub("\ufffd", text)


def _stamp(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def save_query(
    catalog: Catalog,
    *,
    name: str,
    description: str,
    sql: str,
    params: dict[str, Any],
    tables: list[str],
    owner: str,
    chart: dict[str, Any] | None = None,
    query_id: int | None = None,
) -> SavedQuery:
    """Insert a saved query, or replace the one ``query_id`` names; the stored row back."""
    now = datetime.now(UTC)
    values = {
        "name": storable(name),
        "description": storable(description),
        "sql": storable(sql),
        "params_json": json.dumps(params),
        "tables_json": json.dumps(sorted(set(tables))),
        "chart_json": json.dumps(chart) if chart is not None else None,
        "updated_at": now,
    }
    t = cs.saved_queries
    with catalog.engine.begin() as conn:
        if query_id is None:
            done = conn.execute(insert(t).values(**values, owner=storable(owner), created_at=now))
            key = done.inserted_primary_key
            assert key is not None
            query_id = int(key[0])
        else:
            conn.execute(update(t).where(t.c.id == query_id).values(**values))
        row = conn.execute(select(t).where(t.c.id == query_id)).one()
    return _saved(row)


def saved_queries(catalog: Catalog) -> list[SavedQuery]:
    """Every saved query, by name."""
    t = cs.saved_queries
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.name, t.c.id)).all()
    return [_saved(r) for r in rows]


def saved_query(catalog: Catalog, query_id: int) -> SavedQuery | None:
    t = cs.saved_queries
    with catalog.engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.id == query_id)).first()
    return _saved(row) if row is not None else None


def delete_saved_query(catalog: Catalog, query_id: int) -> None:
    with catalog.engine.begin() as conn:
        conn.execute(delete(cs.saved_queries).where(cs.saved_queries.c.id == query_id))


def record_query(
    catalog: Catalog,
    principal: str,
    sql: str,
    params: dict[str, Any],
    *,
    row_count: int | None = None,
    elapsed_ms: float | None = None,
    error: str | None = None,
) -> None:
    """One statement a caller ran (or tried), keeping the caller's newest ``HISTORY_KEPT``."""
    t = cs.query_history
    sql = storable(sql) or ""
    error = storable(error)
    with catalog.engine.begin() as conn:
        last = conn.execute(
            select(t.c.id, t.c.sql, t.c.params_json)
            .where(t.c.principal == principal)
            .order_by(t.c.id.desc())
            .limit(1)
        ).first()
        values = {
            "row_count": row_count,
            "elapsed_ms": None if elapsed_ms is None else round(elapsed_ms),
            "error": error,
            "at": datetime.now(UTC),
        }
        params_json = json.dumps(params, sort_keys=True)
        if last is not None and last.sql == sql and last.params_json == params_json:
            conn.execute(update(t).where(t.c.id == last.id).values(**values))  # ran again
            return
        conn.execute(
            insert(t).values(principal=principal, sql=sql, params_json=params_json, **values)
        )
        old = (
            select(t.c.id)
            .where(t.c.principal == principal)
            .order_by(t.c.id.desc())
            .offset(HISTORY_KEPT)
        )
        conn.execute(delete(t).where(t.c.id.in_(old.scalar_subquery())))


def query_history(catalog: Catalog, principal: str, limit: int = 50) -> list[dict[str, Any]]:
    """The caller's statements, newest first."""
    t = cs.query_history
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            select(t).where(t.c.principal == principal).order_by(t.c.id.desc()).limit(limit)
        ).all()
    return [
        {
            "id": r.id,
            "sql": r.sql,
            "params": json.loads(r.params_json or "{}"),
            "row_count": r.row_count,
            "elapsed_ms": r.elapsed_ms,
            "error": r.error,
            "at": _stamp(r.at),
        }
        for r in rows
    ]
