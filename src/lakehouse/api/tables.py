"""Tables: list, metadata, preview, history, quality; catalog statistics and lineage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, rows_of
from lakehouse.errors import AccessDeniedError, TableNotFoundError
from lakehouse.names import parse_table_name

router = APIRouter(tags=["tables"])
Who = Annotated[Principal, Depends(principal)]

MAX_PREVIEW = 1000


def readable_table(request: Request, who: Principal, name: str) -> str:
    """The table's canonical name, if it exists and the caller may read it."""
    request.state.target = name
    table = str(parse_table_name(name))
    lh = request.app.state.lh
    if not lh.exists(table):
        raise TableNotFoundError(table, lh.engine.suggest(table))
    if not request.app.state.access.can_read(who, table):
        raise AccessDeniedError(
            f"{who.name} ({who.role}) may not read {table}",
            "ask an admin for a grant: lakehouse grant read TABLE --to NAME",
        )
    return table


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
    masked = set(request.app.state.access.masked_columns(who, table))
    out = _summary(info)
    if request.app.state.access.can(who, "run_pipeline"):  # a server path: operators only
        out["location"] = info.location
    out["columns"] = [
        {
            "name": c["name"],
            "type": c.get("type"),
            "nullable": c.get("nullable", True),
            "tags": info.column_tags.get(c["name"], []),
            "masked": c["name"] in masked,
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
) -> Any:
    """The first rows, PII masked as for any query of the caller."""
    table = readable_table(request, who, name)
    state = request.app.state
    result = state.lh.engine.safe_query(
        f"SELECT * FROM {table}",
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
    """The latest expectation results of a table, with its quality score."""
    from lakehouse.pipeline.quality_report import quality_report

    table = readable_table(request, who, name)
    return JSON(quality_report(request.app.state.lh, table))


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
    """Upstream and downstream of a table, as nodes and edges (column edges on request)."""
    from lakehouse.lineage.graph import lineage_json

    table = readable_table(request, who, name)
    return JSON(_as_graph(lineage_json(request.app.state.lh, table, direction, columns)))


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
