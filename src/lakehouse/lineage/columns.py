"""Column lineage of a pipeline dataset's SQL.

The SELECT is parsed and qualified with sqlglot (DuckDB dialect): stars are expanded from the
known schemas, every column is tied to the table or subquery it comes from. Each output column
is then followed back through CTEs, derived tables, set operations and aliases to the columns
of ``layer.name`` tables it is computed from.

Edges follow OpenLineage's transformation model:

* direct edges (the target column is computed from the source column): ``identity`` (the
  value is carried over unchanged, possibly renamed), ``carried`` (the value carried over in
  another type or form, or picked from a group: CAST, TRY_CAST, ``::``, lower, upper, trim,
  coalesce, and aggregates and window functions that return one of their input values such
  as min, max, any_value, first, last, mode, arg_min, lag or first_value), ``expression``
  (any other function, CASE, arithmetic, JSON extraction, window function, ...),
  ``aggregation`` (inside any other aggregate), and ``join_key`` (the target column carries
  a column that equals the source column in an equality join: ON a = b, USING, or a
  comparison of two tables' columns in WHERE);
* indirect edges (the source column decides which rows the table holds, not a value; the
  target column is ``None``): ``filter`` (WHERE, HAVING, QUALIFY), ``join`` (ON, USING),
  ``group_by`` and ``sort`` (ORDER BY together with LIMIT).

Anything the parser cannot make sense of yields fewer edges, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from lakehouse.names import LAYERS
from lakehouse.sql.names import find_references

DIALECT = "duckdb"

IDENTITY = "identity"
CARRIED = "carried"
EXPRESSION = "expression"
AGGREGATION = "aggregation"
FILTER = "filter"
JOIN = "join"
GROUP_BY = "group_by"
SORT = "sort"
JOIN_KEY = "join_key"

DIRECT_TRANSFORMS: tuple[str, ...] = (IDENTITY, CARRIED, EXPRESSION, AGGREGATION, JOIN_KEY)
INDIRECT_TRANSFORMS: tuple[str, ...] = (FILTER, JOIN, GROUP_BY, SORT)

# Composition of direct transforms: the strongest one along the path wins.
_RANK = {IDENTITY: 0, CARRIED: 1, EXPRESSION: 2, AGGREGATION: 3}
# What keeps a value as it was (up to its type or form): (node class, the arguments that do).
_KEEPING: tuple[tuple[type, tuple[str, ...]], ...] = (
    (exp.Cast, ("this",)),
    (exp.TryCast, ("this",)),
    (exp.Lower, ("this",)),
    (exp.Upper, ("this",)),
    (exp.Trim, ("this",)),
    (exp.Coalesce, ("this", "expressions")),
)
# Aggregates and window functions whose result is one of the values of their argument.
_PICKING: tuple[type, ...] = (
    exp.Min,
    exp.Max,
    exp.AnyValue,
    exp.First,
    exp.Last,
    exp.FirstValue,
    exp.LastValue,
    exp.Lag,
    exp.Lead,
    exp.NthValue,
    exp.ArgMax,
    exp.ArgMin,
    exp.Mode,
)
_PICKING_NAMES = frozenset(
    {"arbitrary", "any_value", "first", "last", "arg_max", "arg_min", "max_by", "min_by", "mode"}
)
# Clause of a SELECT -> kind of indirect edge its columns give.
_CLAUSES = {"where": FILTER, "having": FILTER, "qualify": FILTER, "group": GROUP_BY}
_MAX_DEPTH = 64


@dataclass(frozen=True)
class ColumnEdge:
    """``source_table.source_column`` flows into ``target_table.target_column``.

    ``target_column`` is ``None`` for indirect edges, which affect the whole target table.
    """

    source_table: str
    source_column: str
    target_table: str
    target_column: str | None
    transform: str

    @property
    def direct(self) -> bool:
        return self.transform in DIRECT_TRANSFORMS

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


# -- entry points ------------------------------------------------------------------------------
def table_inputs(sql: str) -> list[str]:
    """The ``layer.name`` tables a query reads (CTE names and table functions excluded), in
    order of first appearance."""
    tree = _parse(sql)
    return _table_names(sql, tree)


def column_lineage(
    sql: str, target: str, schemas: dict[str, list[str]] | None = None
) -> list[ColumnEdge]:
    """Column edges from the ``layer.name`` tables of ``sql`` into ``target``.

    ``schemas`` maps table names to their column names; it expands ``SELECT *`` and ties
    unqualified columns to their table. Tables missing from it still give edges for the
    columns the query names explicitly.
    """
    tree = _parse(sql)
    if tree is None:
        return []
    return _column_edges(sql, tree, target, schemas or {})


def definition_edges(
    target: str,
    sql: str | None = None,
    schemas: dict[str, list[str]] | None = None,
    inputs: Iterable[str] = (),
) -> list[dict[str, str | None]]:
    """The edges to record for a dataset (``Catalog.record_lineage``): one table-level edge
    per table read (by ``sql`` or declared in ``inputs``), then the column edges of ``sql``."""
    tree = _parse(sql) if sql else None
    tables = list(dict.fromkeys([*(_table_names(sql, tree) if sql else []), *inputs]))
    edges: list[dict[str, str | None]] = [
        dict(source_table=t, source_column=None, target_column=None, transform=None) for t in tables
    ]
    if sql and tree is not None:
        edges += [e.to_dict() for e in _column_edges(sql, tree, target, schemas or {})]
    return edges


def _table_names(sql: str, tree: exp.Expr | None) -> list[str]:
    if tree is None:
        try:
            names = [ref.name for ref in find_references(sql)]
        except Exception:  # noqa: BLE001 - a malformed time travel clause; keep what was found
            names = []
        return list(dict.fromkeys(names))
    found: list[tuple[int, str]] = []
    for table in tree.find_all(exp.Table):
        name = _layer_name(table)
        if name is not None:
            found.append((table.this.meta.get("start", 0), name))
    return list(dict.fromkeys(name for _, name in sorted(found)))


def _column_edges(
    sql: str, tree: exp.Expr, target: str, schemas: dict[str, list[str]]
) -> list[ColumnEdge]:
    tree = _qualified(sql, tree, schemas)
    try:
        root = build_scope(tree)
    except Exception:  # noqa: BLE001 - a tree the scope builder cannot follow
        return []
    if root is None:
        return []
    resolver = _Resolver(schemas)
    edges: list[ColumnEdge] = []

    target_names = {c.lower(): c for c in schemas.get(target, [])}
    for index, name in enumerate(_output_names(root)):
        out = target_names.get(name.lower(), name)
        for table, column, transform in _safely(resolver.output, root, index):
            edges.append(ColumnEdge(table, column, target, out, transform))

    equal = _equal_columns(root, resolver)
    for edge in list(edges):
        if edge.transform in (IDENTITY, CARRIED):
            for table, column in equal.get((edge.source_table, edge.source_column), ()):
                if (table, column) != (edge.source_table, edge.source_column):
                    edges.append(ColumnEdge(table, column, target, edge.target_column, JOIN_KEY))

    for scope in root.traverse():
        for clause, where, column in _safely(lambda s: list(_indirect_columns(s)), scope):
            for table, source_column, _ in _safely(resolver.column, where, column):
                edges.append(ColumnEdge(table, source_column, target, None, clause))
    return list(dict.fromkeys(edges))


def _equal_columns(root: Scope, resolver: _Resolver) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Table columns whose values are equal in the rows a query joins: the two sides of an
    equality in ON or WHERE (each side a column, possibly cast), and USING keys. Grouped
    into classes: every member maps to its whole class."""
    classes: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def join(members: set[tuple[str, str]]) -> None:
        merged = set(members)
        for member in members:
            merged |= classes.get(member, set())
        for member in merged:
            classes[member] = merged

    for scope in root.traverse():
        for sides in _safely(lambda s: list(_equalities(s)), scope):
            found = [_carried_sources(scope, side, resolver) for side in sides]
            if sum(1 for f in found if f) > 1:
                join(set().union(*found))
    return classes


def _equalities(scope: Scope) -> Iterator[list[exp.Expr]]:
    """The groups of expressions a scope's joins and filters make equal."""
    query = scope.expression
    if not isinstance(query, exp.Select):
        return
    clauses = [j.args.get("on") for j in query.args.get("joins") or []]
    clauses.append(query.args.get("where"))
    for clause in clauses:
        if clause is None:
            continue
        nested = lambda n, top=clause: n is not top and isinstance(n, exp.Query)  # noqa: E731
        for eq in clause.walk(prune=nested):
            if isinstance(eq, exp.EQ):
                yield [eq.this, eq.expression]
    for join_ in query.args.get("joins") or []:
        for item in join_.args.get("using") or []:
            yield [exp.column(item.name, table=alias) for alias in scope.selected_sources]


def _carried_sources(scope: Scope, side: exp.Expr, resolver: _Resolver) -> set[tuple[str, str]]:
    """The table columns ``side`` (one side of an equality) carries: a column, possibly cast
    or changed in case; nothing for any other expression."""
    columns = list(_own_columns(side)) if not isinstance(side, exp.Column) else [side]
    if len(columns) != 1 or _RANK[_transform_inside(columns[0], side)] > _RANK[CARRIED]:
        return set()
    if columns[0].table and columns[0].table not in scope.selected_sources:
        return set()  # a correlated reference: it filters the subquery, not the query
    return {
        (table, name)
        for table, name, transform in resolver.column(scope, columns[0])
        if _RANK.get(transform, 9) <= _RANK[CARRIED]
    }


def _safely(fn: Any, *args: Any) -> list[Any]:
    """What ``fn`` finds, or nothing when an odd corner of a query trips it up."""
    try:
        found: list[Any] = fn(*args)
    except Exception:  # noqa: BLE001 - lineage is best effort, never a failure
        return []
    return found


# -- parsing -----------------------------------------------------------------------------------
def _parse(sql: str) -> exp.Expr | None:
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except Exception:  # noqa: BLE001 - not SQL the parser understands
        return None
    if not statements:
        return None
    tree = statements[-1]
    # CREATE TABLE ... AS SELECT, INSERT INTO ... SELECT: the query is what matters.
    if isinstance(tree, (exp.Create, exp.Insert)) and isinstance(tree.expression, exp.Query):
        tree = tree.expression
    return tree


def _qualified(sql: str, tree: exp.Expr, schemas: dict[str, list[str]]) -> exp.Expr:
    """``tree`` qualified in place; when the qualifier gives up, a freshly parsed tree
    qualified leniently, or as parsed."""
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for name, columns in schemas.items():
        layer, _, table = name.partition(".")
        if table and columns:
            mapping.setdefault(layer, {})[table] = {c: "UNKNOWN" for c in columns}
    known = {name for name, columns in schemas.items() if columns}
    schema: dict[str, object] | None = dict(mapping) if mapping else None

    def run(candidate: exp.Expr, lenient: bool) -> exp.Expr:
        return qualify(
            candidate,
            dialect=DIALECT,
            schema=schema,
            allow_partial_qualification=lenient,
            validate_qualify_columns=False,
            identify=False,
            quote_identifiers=False,
        )

    try:
        return run(tree, False)
    except Exception:  # noqa: BLE001 - ambiguous or odd queries: try more leniently
        pass
    fresh = _parse(sql)
    if fresh is None:
        return tree
    try:
        # Subqueries over a table of unknown columns can be correlated, which the qualifier
        # refuses to guess about; DuckDB binds a bare column to the inner table first.
        return run(_pin_single_source_columns(fresh.copy(), known), True)
    except Exception:  # noqa: BLE001 - follow the tree as parsed
        return fresh


def _pin_single_source_columns(tree: exp.Expr, known: set[str]) -> exp.Expr:
    for select in tree.find_all(exp.Select):
        from_ = select.args.get("from_")
        if from_ is None or select.args.get("joins") or not isinstance(from_.this, exp.Table):
            continue
        table = from_.this
        name = _layer_name(table)
        if name is None or name in known:
            continue
        aliases = {e.alias for e in select.expressions if isinstance(e, exp.Alias)}
        for key, value in select.args.items():
            if key in ("from_", "with_"):
                continue
            for part in value if isinstance(value, list) else [value]:
                if not isinstance(part, exp.Expr):
                    continue
                for column in _own_columns(part):
                    if not column.table and column.name not in aliases:
                        column.set("table", exp.to_identifier(table.alias_or_name))
    return tree


def _layer_name(table: exp.Table) -> str | None:
    if not isinstance(table.this, exp.Identifier):
        return None  # table function
    layer, name = table.db.lower(), table.name.lower()
    if layer in LAYERS and name and not table.catalog:
        return f"{layer}.{name}"
    return None


def _output_names(scope: Scope) -> list[str]:
    query = scope.expression
    if isinstance(query, exp.Query):
        return list(query.named_selects)
    return []


def _selects(scope: Scope) -> list[exp.Expr]:
    query = scope.expression
    return list(query.selects) if isinstance(query, exp.Query) else []


# -- clause walking ----------------------------------------------------------------------------
def _own_columns(node: exp.Expr) -> Iterator[exp.Column]:
    """Columns under ``node`` that belong to the same scope (nested queries excluded)."""
    for child in node.walk(prune=lambda n: n is not node and isinstance(n, exp.Query)):
        if isinstance(child, exp.Column) and not isinstance(child.this, exp.Star):
            yield child


def _indirect_columns(scope: Scope) -> Iterator[tuple[str, Scope, exp.Column]]:
    """(kind, scope to resolve in, column) for the columns that decide which rows a scope
    yields."""
    query = scope.expression
    if not isinstance(query, exp.Select):
        return
    parts: list[tuple[str, exp.Expr]] = []
    for key, kind in _CLAUSES.items():
        clause = query.args.get(key)
        if clause is not None:
            parts.append((kind, clause))
    for join in query.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            parts.append((JOIN, on))
        for item in join.args.get("using") or []:
            # USING (k): the key column of every side that has it.
            for alias in scope.selected_sources:
                parts.append((JOIN, exp.column(item.name, table=alias)))
    order = query.args.get("order")
    if order is not None and query.args.get("limit") is not None:
        parts.append((SORT, order))
    for kind, part in parts:
        for column in _own_columns(part):
            yield kind, scope, column
    # Subqueries in WHERE / HAVING / QUALIFY / ON: what they select filters the rows.
    for sub in scope.subquery_scopes:
        enclosing = _enclosing_clause(sub.expression, query)
        if enclosing is None:
            continue
        for select in _selects(sub):
            for column in _own_columns(select):
                yield enclosing, sub, column


def _enclosing_clause(node: exp.Expr, query: exp.Select) -> str | None:
    child: exp.Expr | None = node
    while child is not None and child.parent is not query:
        child = child.parent
    if child is None:
        return None
    key = child.arg_key
    if key in _CLAUSES:
        return _CLAUSES[key]
    if key == "joins":
        return JOIN
    return None


def _transform_inside(column: exp.Column, root: exp.Expr) -> str:
    """How the value of ``column`` reaches the select expression ``root``: the strongest
    step on the way up."""
    transform = IDENTITY
    child: exp.Expr = column
    node = column.parent
    while node is not None and child is not root:
        transform = _stronger(transform, _step(node, child))
        child, node = node, node.parent
    return transform


def _step(node: exp.Expr, child: exp.Expr) -> str:
    """What ``node`` does to the value of its argument ``child``."""
    key = child.arg_key
    if isinstance(node, (exp.Paren, exp.Distinct, exp.IgnoreNulls, exp.RespectNulls)):
        return IDENTITY
    if isinstance(node, exp.Window):
        return IDENTITY if key == "this" else EXPRESSION  # the function inside decides
    for kind, keys in _KEEPING:
        if isinstance(node, kind):
            return CARRIED if key in keys else EXPRESSION
    if isinstance(node, _PICKING):
        return CARRIED if key == "this" else AGGREGATION
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in _PICKING_NAMES:
        first = node.expressions[0] if node.expressions else None
        return CARRIED if child is first else AGGREGATION
    if isinstance(node, exp.AggFunc):
        return AGGREGATION
    return EXPRESSION


def _stronger(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


# -- resolution --------------------------------------------------------------------------------
Source = tuple[str, str, str]  # table, column, transform


class _Resolver:
    """Follows columns back to base tables, remembering what it resolved."""

    def __init__(self, schemas: dict[str, list[str]]) -> None:
        self.schemas = {k: {c.lower(): c for c in v} for k, v in schemas.items()}
        self.memo: dict[tuple[int, int], list[Source]] = {}
        self.active: set[tuple[int, int]] = set()

    # the index-th output column of a scope
    def output(self, scope: Scope, index: int, depth: int = 0) -> list[Source]:
        key = (id(scope), index)
        if key in self.memo:
            return self.memo[key]
        if key in self.active or depth > _MAX_DEPTH:
            return []
        self.active.add(key)
        try:
            result = self._output(scope, index, depth)
        finally:
            self.active.discard(key)
        self.memo[key] = result
        return result

    def _output(self, scope: Scope, index: int, depth: int) -> list[Source]:
        if isinstance(scope.expression, exp.SetOperation):
            found: list[Source] = []
            for branch in scope.set_operation_scopes:
                found.extend(self.output(branch, index, depth + 1))
            return _unique(found)
        if not isinstance(scope.expression, exp.Query):
            # UNNEST and other table functions: every output is computed from their arguments.
            found = []
            for column in _own_columns(scope.expression):
                for table, name, transform in self.column(scope, column, depth + 1):
                    found.append((table, name, _stronger(EXPRESSION, transform)))
            return _unique(found)
        selects = _selects(scope)
        if index >= len(selects):
            return []
        select = selects[index]
        inner = select.unalias() if isinstance(select, exp.Alias) else select
        found = []
        for column in _own_columns(inner):
            step = _transform_inside(column, inner)
            for table, name, transform in self.column(scope, column, depth + 1):
                found.append((table, name, _stronger(step, transform)))
        # Scalar subqueries in the select expression.
        for sub in scope.subquery_scopes:
            if _inside(sub.expression, inner):
                for i in range(len(_selects(sub))):
                    for table, name, transform in self.output(sub, i, depth + 1):
                        found.append((table, name, _stronger(EXPRESSION, transform)))
        return _unique(found)

    # a column reference inside a scope
    def column(self, scope: Scope, column: exp.Column, depth: int = 0) -> list[Source]:
        if depth > _MAX_DEPTH:
            return []
        name = column.name
        alias = column.table
        current: Scope | None = scope
        while current is not None:
            source = self._source(current, alias, name)
            if source is not None:
                return self._from_source(current, source, name, depth)
            if not alias:
                break  # unqualified: only the scope's own sources can hold it
            current = current.parent  # correlated reference to an outer query
        return []

    def _source(self, scope: Scope, alias: str, name: str) -> exp.Expr | Scope | None:
        if alias:
            if alias in scope.sources:
                return scope.sources[alias]
            return _table_valued(scope, alias)
        selected = [src for _, src in scope.selected_sources.values()]
        if len(selected) == 1:
            return selected[0]
        holders = [src for src in selected if name.lower() in self._columns_of(src)]
        return holders[0] if len(holders) == 1 else None

    def _columns_of(self, source: exp.Expr | Scope) -> set[str]:
        if isinstance(source, Scope):
            return {n.lower() for n in _output_names(source)}
        if isinstance(source, exp.Table):
            table = _layer_name(source)
            return set(self.schemas.get(table or "", {}))
        return set()

    def _from_source(
        self, scope: Scope, source: exp.Expr | Scope, name: str, depth: int
    ) -> list[Source]:
        if isinstance(source, Scope):
            if not isinstance(source.expression, exp.Query):
                # LATERAL (SELECT ...): the columns of the query inside
                for inner in [*source.subquery_scopes, *source.sources.values()]:
                    if (
                        isinstance(inner, Scope)
                        and isinstance(inner.expression, exp.Query)
                        and _inside(inner.expression, source.expression)
                    ):
                        names = [n.lower() for n in _output_names(inner)]
                        if name.lower() in names:
                            return self.output(inner, names.index(name.lower()), depth + 1)
                return self.output(source, 0, depth + 1)
            names = [n.lower() for n in _output_names(source)]
            if name.lower() in names:
                return self.output(source, names.index(name.lower()), depth + 1)
            return []
        if isinstance(source, exp.Table):
            table = _layer_name(source)
            if table is None:
                return []
            known = self.schemas.get(table)
            if known:
                if name.lower() not in known:
                    return []
                name = known[name.lower()]
            return [(table, name, IDENTITY)]
        # UNNEST / table function: its value is computed from the columns it is given.
        found: list[Source] = []
        for given in _own_columns(source):
            for table, col, transform in self.column(scope, given, depth + 1):
                found.append((table, col, _stronger(EXPRESSION, transform)))
        return _unique(found)


def _table_valued(scope: Scope, alias: str) -> exp.Expr | None:
    query = scope.expression
    if not isinstance(query, exp.Select):
        return None
    candidates: list[exp.Expr] = []
    from_ = query.args.get("from_")
    if from_ is not None:
        candidates.append(from_.this)
    candidates.extend(j.this for j in query.args.get("joins") or [])
    for node in candidates:
        if isinstance(node, (exp.Unnest, exp.Lateral)) and node.alias == alias:
            return node
    return None


def _inside(node: exp.Expr, root: exp.Expr) -> bool:
    current: exp.Expr | None = node
    while current is not None:
        if current is root:
            return True
        current = current.parent
    return False


def _unique(items: Iterable[Source]) -> list[Source]:
    best: dict[tuple[str, str], str] = {}
    for table, column, transform in items:
        key = (table, column)
        best[key] = _stronger(best[key], transform) if key in best else transform
    return [(t, c, tr) for (t, c), tr in best.items()]
