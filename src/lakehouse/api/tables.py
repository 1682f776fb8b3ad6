"""Tables: list, metadata, preview, history, quality; catalog statistics and lineage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, rows_of
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.lineage.tags import table_inherited
from lakehouse.names import parse_table_name

router = APIRouter(tags=["tables"])
Who = Annotated[Principal, Depends(principal)]

MAX_PREVIEW = 1000


def readable_table(request: Request, who: Principal, name: str) -> str:
    """The table's canonical name, if it exists and the caller may read it. A table the
    caller may not read is answered exactly as one that does not exist (404, the same
    message, suggestions only among the tables the caller may read)."""
    request.state.target = name
    table = str(parse_table_name(name))
    lh, access = request.app.state.lh, request.app.state.access
    readable = access.can_read(who, table)
    if not readable or not lh.exists(table):
        request.state.denied = not readable  # the audit log tells them apart, the caller not
        raise TableNotFoundError(table, lh.engine.suggest(table, lambda t: access.can_read(who, t)))
    return table


def quality_of(request: Request, who: Principal, table: str) -> dict[str, Any]:
    """A table's quality report for the caller: failing-row samples with the columns the
    caller sees masked in the table replaced by the same pseudonyms a query gives."""
    from lakehouse.service.quality import table_quality

    state = request.app.state
    return table_quality(state.lh, table, masked=state.access.masked_columns(who, table))


def _summary(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "layer": info.layer,
        "format": info.format,
        "description": info.description,
        "tags": info.tags,
        "owner": info.owner,
        "row_count": info.row_count,
        "size_bytes": info.size_bytes,
        "num_files": info.num_files,
        "version": info.version,
        "updated_at": info.updated_at.isoformat(),
    }


@router.get("/tables", response_class=JSON)
def list_tables(
    request: Request,
    who: Who,
    layer: str | None = None,
    tag: str | None = None,
    q: Annotated[str | None, Query(description="Text in a name, description or column")] = None,
) -> Any:
    """The tables the caller may read, filtered by layer, tag or text."""
    lh, access = request.app.state.lh, request.app.state.access
    infos = lh.catalog.list(layer=layer, tag=tag)
    if q:
        text = q.lower()
        infos = [
            i
            for i in infos
            if text in i.name.lower()
            or text in (i.description or "").lower()
            or any(text in c["name"].lower() for c in i.columns)
        ]
    allowed = set(access.readable(who, [i.name for i in infos]))
    return JSON({"tables": [_summary(i) for i in infos if i.name in allowed]})


@router.get("/tables/{name}", response_class=JSON)
def table_details(request: Request, who: Who, name: str) -> Any:
    """Metadata, schema (with tags and which columns are masked for the caller), options
    and statistics of one table."""
    table = readable_table(request, who, name)
    lh = request.app.state.lh
    info = lh.table(table).info
    access = request.app.state.access
    masked = {c.lower() for c in access.masked_columns(who, table)}
    inherited = table_inherited(lh.catalog, table)
    if info.format == "view" and not access.sees_pii(who, table):
        masked |= set(table_inherited(lh.catalog, table, tagged_too=True))  # masked under it
    out = _summary(info)
    if request.app.state.access.can(who, "run_pipeline"):  # a server path: operators only
        out["location"] = info.location
    out["columns"] = [
        {
            "name": c["name"],
            "type": c.get("type"),
            "nullable": c.get("nullable", True),
            "tags": info.column_tags.get(c["name"], []),
            "inherited_tags": ["pii"] if c["name"].lower() in inherited else [],
            "inherited_from": inherited.get(c["name"].lower()),
            "masked": c["name"].lower() in masked,
        }
        for c in info.columns
    ]
    out["partition_by"] = info.partition_by
    out["keys"] = info.keys
    out["retention_days"] = info.retention_days
    out["created_at"] = info.created_at.isoformat()
    out["column_tags"] = info.column_tags
    out["schema_history"] = info.schema_history
    return JSON(out)


@router.get("/tables/{name}/preview", response_class=JSON)
def preview(
    request: Request,
    who: Who,
    name: str,
    limit: Annotated[int, Query(ge=1, le=MAX_PREVIEW)] = 100,
    sample: Annotated[bool, Query(description="Rows drawn at random, not the first")] = False,
) -> Any:
    """The first rows (or, with `sample`, rows drawn at random), PII masked as for any
    query of the caller."""
    table = readable_table(request, who, name)
    state = request.app.state
    drawn = f" USING SAMPLE {int(limit)} ROWS" if sample else ""
    result = state.lh.engine.safe_query(
        f"SELECT * FROM {table}{drawn}",
        limit=limit,
        timeout=state.settings.query_timeout,
        masked=lambda t: state.access.masked_columns(who, t),
        can_read=lambda t: state.access.can_read(who, t),
    )
    return JSON(
        {
            "table": table,
            "columns": result.table.column_names,
            "types": [str(t) for t in result.table.schema.types],
            "rows": rows_of(result.table),
            "truncated": result.truncated,
            "sample": sample,
        }
    )


@router.get("/tables/{name}/history", response_class=JSON)
def history(
    request: Request,
    who: Who,
    name: str,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    """Versions newest first: time, operation, parameters and metrics."""
    table = readable_table(request, who, name)
    return JSON({"table": table, "versions": request.app.state.lh.table(table).history(limit)})


@router.get("/tables/{name}/quality", response_class=JSON)
def table_quality(request: Request, who: Who, name: str) -> Any:
    """The latest expectation results of a table, with its quality score; PII in the
    failing-row samples masked as in the table."""
    return JSON(quality_of(request, who, readable_table(request, who, name)))


@router.get("/catalog", response_class=JSON)
def catalog(request: Request, who: Who) -> Any:
    """Statistics per layer over the tables the caller may read."""
    lh, access = request.app.state.lh, request.app.state.access
    infos = lh.catalog.list()
    allowed = set(access.readable(who, [i.name for i in infos]))
    layers: dict[str, dict[str, Any]] = {}
    for info in infos:
        if info.name not in allowed:
            continue
        layer = layers.setdefault(
            info.layer, {"tables": 0, "rows": 0, "bytes": 0, "files": 0, "last_update": None}
        )
        layer["tables"] += 1
        layer["rows"] += info.row_count
        layer["bytes"] += info.size_bytes
        layer["files"] += info.num_files
        stamp = info.updated_at.isoformat()
        if layer["last_update"] is None or stamp > layer["last_update"]:
            layer["last_update"] = stamp
    return JSON(
        {
            "tables": sum(v["tables"] for v in layers.values()),
            "rows": sum(v["rows"] for v in layers.values()),
            "bytes": sum(v["bytes"] for v in layers.values()),
            "layers": layers,
        }
    )


@router.get("/catalog/lineage/{name}", response_class=JSON)
def lineage(
    request: Request,
    who: Who,
    name: str,
    direction: Literal["both", "upstream", "downstream"] = "both",
    columns: bool = False,
) -> Any:
    """Upstream and downstream of a table, as nodes and edges (column edges on request):
    only the tables the caller may read, and the edges between them."""
    from lakehouse.lineage.graph import lineage_json

    table = readable_table(request, who, name)
    access = request.app.state.access
    graph = _as_graph(lineage_json(request.app.state.lh, table, direction, columns))
    return JSON(_readable_part(graph, lambda t: access.can_read(who, t)))


def _readable_part(graph: dict[str, Any], can_read: Any) -> dict[str, Any]:
    """The graph without the tables the caller may not read and the edges that touch them
    (a table not built yet is named by its pipeline only: it shows if it could be read)."""
    nodes = [n for n in graph["nodes"] if can_read(n["name"])]
    kept = {n["name"] for n in nodes}
    edges = [e for e in graph["edges"] if e["source"] in kept and e["target"] in kept]
    return {**graph, "nodes": nodes, "edges": edges}


def _as_graph(data: dict[str, Any]) -> dict[str, Any]:
    """Both directions merged into one node and edge list for a graph drawing."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for direction in ("upstream", "downstream"):
        part = data.get(direction)
        if not part:
            continue
        for node in part.get("nodes", []):
            depth = node["depth"] if direction == "downstream" else -node["depth"]
            known = nodes.get(node["name"])
            if known is None or abs(depth) < abs(known["depth"]):
                nodes[node["name"]] = {**node, "depth": depth}
        for edge in part.get("edges", []):
            edges[(edge["source"], edge["target"])] = edge
    return {
        "table": data["table"],
        "layer": data.get("layer"),
        "nodes": sorted(nodes.values(), key=lambda n: (n["depth"], n["name"])),
        "edges": list(edges.values()),
    }


@router.get("/tables/{name}/profile", response_class=JSON)
def table_profile(request: Request, who: Who, name: str) -> Any:
    """Per column: null share, distinct count, least and greatest value, most frequent
    values and a histogram (numbers); pii the caller sees masked is profiled as its
    pseudonyms. Computed on first ask, then kept for the table's version."""
    from lakehouse.api.workbench import reader_of
    from lakehouse.service.profiles import profile, suggested_facets

    table = readable_table(request, who, name)
    found = profile(request.app.state.lh, reader_of(request, who), table)
    return JSON({**found, "suggested_facets": suggested_facets(found)})


@router.get("/tables/{name}/facets", response_class=JSON)
def table_facets(
    request: Request,
    who: Who,
    name: str,
    column: Annotated[list[str], Query(description="A column to facet on")],
    where: Annotated[
        list[str] | None, Query(description="column=value (column=: null) the rows match")
    ] = None,
    rows: Annotated[int, Query(ge=0, le=MAX_PREVIEW)] = 50,
) -> Any:
    """Datasette's facets: the most frequent values of each `column` among the rows
    matching every `where`, with the first `rows` of those rows and their count; values
    as the caller sees them (pii as pseudonyms)."""
    from lakehouse.api.workbench import reader_of
    from lakehouse.service.profiles import facets

    table = readable_table(request, who, name)
    chosen: dict[str, str | None] = {}
    for item in where or []:
        column_name, sep, value = item.partition("=")
        if not sep:
            raise LakehouseError(f"where={item!r} is not column=value", "e.g. where=segment=new")
        chosen[column_name] = value if value != "" else None
    return JSON(facets(request.app.state.lh, reader_of(request, who), table, column, chosen, rows))


@router.get("/tables/{name}/readers", response_class=JSON)
def table_readers(request: Request, who: Who, name: str) -> Any:
    """Who may read the table: per role whether it reads it and sees its pii by default;
    for callers who manage access, the grants on it or its layer too."""
    from lakehouse.service.access import readers

    table = readable_table(request, who, name)
    access = request.app.state.access
    return JSON(readers(access, table, with_grants=access.can(who, "manage_access")))


@router.get("/tables/{name}/quality/history", response_class=JSON)
def table_quality_history(
    request: Request,
    who: Who,
    name: str,
    runs: Annotated[int, Query(ge=1, le=1000)] = 30,
) -> Any:
    """The table's quality score over its last `runs` checking runs, oldest first:
    `{"scores": [{run_id, checked_at, score, checks, failed}]}`."""
    from lakehouse.service.quality import quality_over_time

    table = readable_table(request, who, name)
    return JSON({"table": table, "scores": quality_over_time(request.app.state.lh, table, runs)})
