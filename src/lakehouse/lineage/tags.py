"""Tags that follow the data: which columns inherit ``pii`` from the columns they hold.

A column inherits ``pii`` when it carries the value of a ``pii`` column (declared or itself
inherited), as its column lineage says (:mod:`lakehouse.lineage.columns`):

* a straight select or a rename (``identity``); a cast, a change of case or blanks,
  ``coalesce``, or an aggregate or window function that returns one of its input values
  such as ``min`` or ``any_value`` (``carried``); the other side of an equality join on
  such a column (``join_key``); an aggregate such as ``count(DISTINCT user_id)`` or any
  other expression does not carry it;
* the companion tables a dataset writes beside its table (``<table>_quarantine``) hold its
  rows: their columns take the tags of the table's columns of the same name, and the raw
  records they keep (``raw_payload``, ``_rescued_data``) are ``pii`` when any column is;
* the failing-row samples of ``system.quality_results`` hold rows of any table: ``pii``.

A SQL view reads its tables masked; of its own columns only those tagged ``pii`` that do
not inherit it are masked on top.

A dataset opts a column out with the tag ``-pii`` in its ``column_tags``. Inheritance is
worked out when tags are read (the access checks, ``describe``, the API), so it holds for
tables registered later and for warehouses built before it existed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.catalog import Catalog
    from lakehouse.warehouse import Lakehouse

PII = "pii"
OPT_OUT = "-" + PII
CARRYING = ("identity", "carried", "join_key")
COMPANIONS = ("_quarantine",)
RAW_COLUMNS = ("raw_payload", "_rescued_data")
# Columns that hold rows of any table: the failing-row samples of expectations (the API
# gives them masked by each table's own policy; read as a table they are pii whole).
ANY_TABLE = {"system.quality_results": ("sample",)}

Edge = tuple[str, str, str, str]  # source table, source column, target table, target column


def tagged(tags: Iterable[Any] | None, tag: str) -> bool:
    return any(isinstance(t, str) and t.lower() == tag for t in tags or ())


def parent_of(table: str) -> str | None:
    """The table a companion table (``silver.x_quarantine``) belongs to."""
    for suffix in COMPANIONS:
        if table.endswith(suffix) and len(table.split(".")[-1]) > len(suffix):
            return table[: -len(suffix)]
    return None


def inherited_pii(
    declared: Mapping[str, Mapping[str, Iterable[str]]],
    edges: Iterable[Edge],
    columns: Mapping[str, Iterable[str]],
) -> dict[str, dict[str, str]]:
    """``{table: {column: origin}}`` for every column that inherits ``pii`` (tagged so
    itself or not); ``origin`` says where from (``silver.users.user_id``, ``silver.users``).
    ``declared`` maps every known table to its column tags, ``columns`` to its column
    names; ``edges`` are the carrying column edges (source table, source column, target
    table, target column)."""
    names = {t: {c.lower() for c in cols} for t, cols in columns.items()}
    own: dict[str, set[str]] = {}
    blocked: dict[str, set[str]] = {}
    for table, column_tags in declared.items():
        own[table] = {c.lower() for c, tags in column_tags.items() if tagged(tags, PII)}
        blocked[table] = {c.lower() for c, tags in column_tags.items() if tagged(tags, OPT_OUT)}
    feeds: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for source, source_column, target, target_column in edges:
        if source_column and target_column:
            key = (source, source_column.lower())
            feeds.setdefault(key, []).append((target, target_column.lower()))
    found: dict[str, dict[str, str]] = {}

    def is_pii(table: str, column: str) -> bool:
        return column in own.get(table, ()) or column in found.get(table, {})

    def add(table: str, column: str, origin: str, queue: deque[tuple[str, str]]) -> None:
        if column in found.get(table, {}) or column in blocked.get(table, ()):
            return
        if column not in names.get(table, ()):
            return  # not (or no longer) a column of the table
        tagged_already = is_pii(table, column)
        found.setdefault(table, {})[column] = origin
        if not tagged_already:  # a tagged column's own sources went in the queue already
            queue.append((table, column))

    queue: deque[tuple[str, str]] = deque((t, c) for t, cols in own.items() for c in cols)
    for table, held in ANY_TABLE.items():
        for column in held:
            add(table, column, "the rows of any table", queue)
    companions: dict[str, list[str]] = {}
    for table in declared:
        parent = parent_of(table)
        if parent is not None:
            companions.setdefault(parent, []).append(table)
    while queue:
        table, column = queue.popleft()
        for target, target_column in feeds.get((table, column), ()):
            add(target, target_column, f"{table}.{column}", queue)
        for companion in companions.get(table, ()):
            add(companion, column, table, queue)
            for raw in RAW_COLUMNS:
                add(companion, raw, table, queue)
        for raw in RAW_COLUMNS:
            if raw != column:
                add(table, raw, f"{table}.{column}", queue)
    return found


def pii_columns(
    table: str,
    column_tags: Mapping[str, Iterable[str]] | None,
    inherited: Mapping[str, Mapping[str, str]],
    view: bool = False,
) -> tuple[str, ...]:
    """The columns of ``table`` read as pseudonyms: tagged ``pii`` or inheriting it (by
    lower-case name; the masked view matches names without regard to case). For a SQL
    ``view``, only the columns tagged ``pii`` that inherit nothing: the others are masked
    by the tables under the view already, and masking them again would break joins."""
    own = [c for c, tags in (column_tags or {}).items() if tagged(tags, PII)]
    from_sources = inherited.get(table, {})
    if view:
        return tuple(c for c in own if c.lower() not in from_sources)
    have = {c.lower() for c in own}
    return tuple(own + [c for c in from_sources if c not in have])


def carrying_edges(catalog: Catalog) -> list[Edge]:
    """The column edges that carry values, as recorded from the pipelines' definitions."""
    return [
        (e["source_table"], e["source_column"], e["target_table"], e["target_column"])
        for e in catalog.lineage_edges()
        if e["run_id"] is None and e["transform"] in CARRYING
    ]


def table_inherited(catalog: Catalog, table: str, tagged_too: bool = False) -> dict[str, str]:
    """``{column: origin}`` of the columns of ``table`` that inherit ``pii`` and are not
    tagged so themselves, or ``tagged_too`` (for ``describe`` and the API's table
    details)."""
    infos = catalog.list()
    declared = {info.name: info.column_tags for info in infos}
    columns = {info.name: [c["name"] for c in info.columns] for info in infos}
    found = inherited_pii(declared, carrying_edges(catalog), columns).get(table, {})
    if tagged_too:
        return found
    own = {c.lower() for c, tags in declared.get(table, {}).items() if tagged(tags, PII)}
    return {c: origin for c, origin in found.items() if c not in own}


def reanalyse_once(lh: Lakehouse, pipeline: Any) -> None:
    """After a run of ``pipeline``: definition edges recorded by an older column lineage
    (before ``carried`` and ``join_key``) are analysed again, once. (The headers'
    ``column_tags``, opt-outs included, reach the catalog with each dataset's run:
    ``pipeline/table_fields.py``.)"""
    _reanalyse_once(lh, pipeline)


# The column lineage that tags follow; a warehouse whose pipeline's definition edges were
# recorded by an older one has them analysed again at its next run.
ANALYSIS = "2: carried, join_key"


def _reanalyse_once(lh: Lakehouse, pipeline: Any) -> None:
    from lakehouse.lineage.columns import definition_edges

    prefix = f"pipeline {pipeline.name} / "
    stamp = (f"{prefix}(column lineage)", "-")
    recorded = lh.catalog.lineage_fingerprints(prefix)
    if recorded.get(stamp) == ANALYSIS:
        return
    schemas = {info.name: [c["name"] for c in info.columns] for info in lh.catalog.list()}
    for name, ds in pipeline.datasets.items():
        fingerprint = recorded.get((prefix + name, name))
        if fingerprint is None or ds.kind == "files":
            continue
        edges = definition_edges(name, ds.sql, schemas, ds.depends_on)
        lh.catalog.record_lineage(
            prefix + name, name, edges, operation=ds.kind, fingerprint=fingerprint
        )
    lh.catalog.record_lineage(stamp[0], stamp[1], [], operation="analysis", fingerprint=ANALYSIS)
