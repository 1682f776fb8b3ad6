"""Saved queries: a statement with a name, a description, its parameters' values and its
chart, kept in the catalog. A caller sees (and may change) only the saved queries whose
every table it may read, so a saved query tells nobody of a table hidden from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.catalog import queries as store
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.sql.names import find_references

if TYPE_CHECKING:
    from lakehouse.catalog.queries import SavedQuery
    from lakehouse.service.reader import Reader
    from lakehouse.warehouse import Lakehouse


class SavedQueryNotFound(LakehouseError):
    """No saved query of that id the caller may see."""

    def __init__(self, query_id: int) -> None:
        super().__init__(
            f"no saved query {query_id}",
            "GET /queries lists the saved queries you may open",
        )


class NotYours(LakehouseError):
    """A saved query someone else saved: only they (or whoever manages access) change it."""

    def __init__(self, query_id: int, owner: str) -> None:
        super().__init__(
            f"saved query {query_id} is {owner}'s: only they may change or delete it",
            "save your own copy under another name",
        )


def _check_owner(lh: Lakehouse, reader: Reader, query_id: int, manager: bool) -> None:
    found = get_saved(lh, reader, query_id)
    if not manager and found["owner"] != reader.name:
        raise NotYours(query_id, found["owner"])


def tables_of(sql: str) -> list[str]:
    """The ``layer.table`` names a statement reads (time travel included)."""
    return sorted({ref.name for ref in find_references(sql)})


def _visible(reader: Reader, saved: SavedQuery) -> bool:
    return all(reader.can_read(t) for t in saved.tables)


def list_saved(lh: Lakehouse, reader: Reader) -> list[dict[str, Any]]:
    """The saved queries ``reader`` may see, by name."""
    return [q.to_dict() for q in store.saved_queries(lh.catalog) if _visible(reader, q)]


def get_saved(lh: Lakehouse, reader: Reader, query_id: int) -> dict[str, Any]:
    """One saved query; ``SavedQueryNotFound`` also when ``reader`` may not read a table
    of it (as if it did not exist)."""
    found = store.saved_query(lh.catalog, query_id)
    if found is None or not _visible(reader, found):
        raise SavedQueryNotFound(query_id)
    return found.to_dict()


def save(
    lh: Lakehouse,
    reader: Reader,
    *,
    name: str,
    sql: str,
    description: str = "",
    params: dict[str, Any] | None = None,
    chart: dict[str, Any] | None = None,
    query_id: int | None = None,
    manager: bool = False,
) -> dict[str, Any]:
    """Save a statement (a new one, or over ``query_id``: the reader's own, unless it is a
    ``manager`` of access, else ``NotYours``). Every table it names must be one ``reader``
    may read (else ``TableNotFoundError``, as a query would answer)."""
    if not name.strip():
        raise LakehouseError("a saved query needs a name", "name it for what it answers")
    if not sql.strip():
        raise LakehouseError("a saved query needs a statement")
    tables = tables_of(sql)
    for table in tables:
        if not reader.can_read(table) or not lh.exists(table):
            raise TableNotFoundError(table, lh.engine.suggest(table, reader.can_read))
    if query_id is not None:
        _check_owner(lh, reader, query_id, manager)
    saved = store.save_query(
        lh.catalog,
        name=name.strip(),
        description=description.strip(),
        sql=sql,
        params=params or {},
        tables=tables,
        owner=reader.name,
        chart=chart,
        query_id=query_id,
    )
    return saved.to_dict()


def delete(lh: Lakehouse, reader: Reader, query_id: int, manager: bool = False) -> None:
    """Forget a saved query: the reader's own, or any it may see for a ``manager``."""
    _check_owner(lh, reader, query_id, manager)
    store.delete_saved_query(lh.catalog, query_id)
