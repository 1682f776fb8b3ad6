"""The lineage graph: walk recorded edges up to a table's sources, down to what it feeds, and
work out what a change to a table or column would affect."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.catalog import Catalog
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.names import LAYERS, parse_table_name

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

Direction = Literal["upstream", "downstream"]


@dataclass
class Node:
    name: str
    layer: str | None
    depth: int
    registered: bool  # known to the catalog (a dataset may be defined but not yet built)

    def to_dict(self) -> dict[str, Any]:
        return dict(name=self.name, layer=self.layer, depth=self.depth, registered=self.registered)


@dataclass
class Edge:
    """``source`` feeds ``target`` through ``job``; ``columns`` are its column edges."""

    source: str
    target: str
    job: str
    operation: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    observed: bool = False  # seen in a run (not only declared by a definition)

    def to_dict(self, columns: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = dict(
            source=self.source,
            target=self.target,
            job=self.job,
            operation=self.operation,
            observed=self.observed,
        )
        if columns:
            out["columns"] = [dict(c) for c in self.columns]
        return out


@dataclass
class LineageGraph:
    root: str
    direction: Direction
    nodes: dict[str, Node]
    edges: list[Edge]

    def next_edges(self, name: str) -> list[Edge]:
        """Edges leading away from ``name`` in the graph's direction."""
        if self.direction == "upstream":
            return [e for e in self.edges if e.target == name]
        return [e for e in self.edges if e.source == name]

    def to_dict(self, columns: bool = True) -> dict[str, Any]:
        return dict(
            root=self.root,
            direction=self.direction,
            nodes=[n.to_dict() for n in sorted(self.nodes.values(), key=_node_order)],
            edges=[e.to_dict(columns) for e in self.edges],
        )


def _node_order(node: Node) -> tuple[int, str]:
    return node.depth, node.name


def layer_of(name: str) -> str | None:
    layer = name.split(".", 1)[0]
    return layer if layer in LAYERS and "." in name else None


def _catalog(source: Catalog | Lakehouse) -> Catalog:
    return source if isinstance(source, Catalog) else source.catalog


# -- edges -------------------------------------------------------------------------------------
def table_edges(rows: list[dict[str, Any]]) -> list[Edge]:
    """Group lineage rows into table-level edges carrying their column edges."""
    edges: dict[tuple[str, str, str, str], Edge] = {}
    seen: dict[tuple[str, str, str, str], set[tuple[Any, ...]]] = {}
    for row in rows:
        key = (row["source_table"], row["target_table"], row["job"], row["operation"])
        edge = edges.get(key)
        if edge is None:
            edge = edges[key] = Edge(*key)
            seen[key] = set()
        if row.get("run_id"):
            edge.observed = True
        if row["source_column"] is None and row["target_column"] is None:
            continue  # the table-level edge itself
        col = (row["source_column"], row["target_column"], row["transform"])
        if col in seen[key]:
            continue
        seen[key].add(col)
        edge.columns.append(
            dict(
                source_column=row["source_column"],
                target_column=row["target_column"],
                transform=row["transform"],
            )
        )
    for edge in edges.values():
        edge.columns.sort(key=_column_order)
    return sorted(edges.values(), key=lambda e: (e.target, e.source, e.job, e.operation))


def _column_order(col: dict[str, Any]) -> tuple[int, str, str]:
    # Value edges first, by target column; then row edges (filters, joins, ...).
    return (
        0 if col["target_column"] is not None else 1,
        col["target_column"] or col["transform"] or "",
        col["source_column"] or "",
    )


def _walk(
    catalog: Catalog | Lakehouse, table: str, direction: Direction, depth: int | None
) -> LineageGraph:
    cat = _catalog(catalog)
    all_edges = table_edges(cat.lineage_edges())
    registered = set(cat.names())
    forward: dict[str, list[Edge]] = {}
    for edge in all_edges:
        start = edge.target if direction == "upstream" else edge.source
        forward.setdefault(start, []).append(edge)
    nodes = {table: Node(table, layer_of(table), 0, table in registered)}
    edges: list[Edge] = []
    queue = deque([table])
    while queue:
        name = queue.popleft()
        level = nodes[name].depth
        if depth is not None and level >= depth:
            continue
        for edge in forward.get(name, []):
            edges.append(edge)
            other = edge.source if direction == "upstream" else edge.target
            if other not in nodes:
                nodes[other] = Node(other, layer_of(other), level + 1, other in registered)
                queue.append(other)
    return LineageGraph(table, direction, nodes, edges)


def upstream(catalog: Catalog | Lakehouse, table: str, depth: int | None = None) -> LineageGraph:
    """The tables ``table`` is computed from, transitively (``depth`` levels at most)."""
    return _walk(catalog, table, "upstream", depth)


def downstream(catalog: Catalog | Lakehouse, table: str, depth: int | None = None) -> LineageGraph:
    """The tables computed from ``table``, transitively (``depth`` levels at most)."""
    return _walk(catalog, table, "downstream", depth)


# -- impact ------------------------------------------------------------------------------------
@dataclass
class _Reach:
    depth: int
    whole: bool = False
    columns: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)


def impact(catalog: Catalog | Lakehouse, table: str, column: str | None = None) -> dict[str, Any]:
    """What a change to ``table`` (or only to its ``column``) affects downstream.

    A column reaches the target columns computed from it; a column that filters, joins or
    groups rows reaches the whole target table, as does an edge known only at table level
    (a Python dataset). Returns ``{"table", "column", "affected": [...]}``; each affected
    table has ``table``, ``layer``, ``depth``, ``all_columns`` (every column of it may
    change), ``columns`` and ``jobs``.
    """
    cat = _catalog(catalog)
    edges = table_edges(cat.lineage_edges())
    by_source: dict[str, list[Edge]] = {}
    for edge in edges:
        by_source.setdefault(edge.source, []).append(edge)

    reach: dict[str, _Reach] = {table: _Reach(0, whole=column is None)}
    if column is not None:
        reach[table].columns.add(column)
    queue = deque([table])
    while queue:
        name = queue.popleft()
        state = reach[name]
        for edge in by_source.get(name, []):
            whole = False
            columns: set[str] = set()
            if not edge.columns:
                whole = True  # lineage known at table level only
            for col in edge.columns:
                if not (state.whole or col["source_column"] in state.columns):
                    continue
                if col["target_column"] is None:
                    whole = True  # decides which rows exist: every column may change
                else:
                    columns.add(col["target_column"])
            if not whole and not columns:
                continue
            target = reach.get(edge.target)
            if target is None:
                target = reach[edge.target] = _Reach(state.depth + 1)
            grew = (whole and not target.whole) or not columns <= target.columns
            target.whole |= whole
            target.columns |= columns
            target.jobs.add(edge.job)
            if grew and edge.target != table:
                queue.append(edge.target)

    affected = []
    for name, state in reach.items():
        if name == table:
            continue
        columns = set(state.columns)
        if state.whole:
            info = cat.get(name)
            if info is not None:
                columns |= {c["name"] for c in info.columns}
            for edge in edges:
                if edge.target == name:
                    columns |= {c["target_column"] for c in edge.columns if c["target_column"]}
        affected.append(
            dict(
                table=name,
                layer=layer_of(name),
                depth=state.depth,
                all_columns=state.whole,
                columns=sorted(columns),
                jobs=sorted(state.jobs),
            )
        )
    affected.sort(key=lambda a: (a["depth"], a["table"]))
    return dict(table=table, column=column, affected=affected)


# -- rendering ---------------------------------------------------------------------------------
def render_tree(graph: LineageGraph, columns: bool = False) -> str:
    """An indented tree: the root, then each table it comes from (upstream) or feeds
    (downstream), with the job in between; ``columns`` adds the column edges."""
    arrow = "<-" if graph.direction == "upstream" else "->"
    lines = [_label(graph.nodes[graph.root])]
    expanded: set[str] = {graph.root}

    def visit(name: str, prefix: str) -> None:
        out = graph.next_edges(name)
        for i, edge in enumerate(out):
            last = i == len(out) - 1
            other = edge.source if graph.direction == "upstream" else edge.target
            branch, more = ("└── ", "    ") if last else ("├── ", "│   ")
            again = other in expanded
            note = "  (see above)" if again and graph.next_edges(other) else ""
            via = f"{arrow} {edge.job} [{edge.operation}]"
            lines.append(f"{prefix}{branch}{_label(graph.nodes[other])}  {via}{note}")
            if columns:
                for col in edge.columns:
                    lines.append(f"{prefix}{more}  · {_column_text(col)}")
            if not again:
                expanded.add(other)
                visit(other, prefix + more)

    visit(graph.root, "")
    return "\n".join(lines)


def _label(node: Node) -> str:
    return node.name if node.registered else f"{node.name} (not built)"


def _column_text(col: dict[str, Any]) -> str:
    source = col["source_column"] or "*"
    if col["target_column"] is None:
        return f"{source} -> rows ({col['transform']})"
    return f"{source} -> {col['target_column']} ({col['transform'] or 'unknown'})"


# -- what the CLI calls ------------------------------------------------------------------------
Which = Literal["both", "upstream", "downstream"]


def _graphs(lh: Lakehouse, table: str, direction: Which) -> list[LineageGraph]:
    if direction not in ("both", "upstream", "downstream"):
        raise LakehouseError(
            f"unknown lineage direction {direction!r}", "use upstream, downstream or both"
        )
    name = str(parse_table_name(table))
    if lh.catalog.get(name) is None and not lh.catalog.lineage_edges(name):
        raise TableNotFoundError(name, lh.engine.suggest(name))
    wanted: tuple[Direction, ...] = ("upstream", "downstream")
    if direction != "both":
        wanted = (direction,)
    return [_walk(lh, name, d, None) for d in wanted]


def lineage_report(
    lh: Lakehouse, table: str, direction: Which = "both", columns: bool = False
) -> str:
    """Text for ``lakehouse lineage TABLE``: the upstream and/or downstream trees."""
    parts = []
    for graph in _graphs(lh, table, direction):
        title = "upstream" if graph.direction == "upstream" else "downstream"
        if len(graph.nodes) == 1:
            parts.append(f"{title} of {graph.root}: none recorded")
        else:
            parts.append(f"{title} of {graph.root}:\n{render_tree(graph, columns)}")
    return "\n\n".join(parts)


def lineage_json(
    lh: Lakehouse, table: str, direction: Which = "both", columns: bool = False
) -> dict[str, Any]:
    """The same as :func:`lineage_report` as data, for ``--json`` and the API."""
    graphs = _graphs(lh, table, direction)
    out: dict[str, Any] = dict(table=graphs[0].root, layer=layer_of(graphs[0].root))
    for graph in graphs:
        out[graph.direction] = graph.to_dict(columns)
    return out
