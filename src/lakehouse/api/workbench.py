"""The SQL editor's endpoints: statements a page at a time, what completion offers,
saved queries and the caller's history (the JSON twins of the editor's panels)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, NotFound, error_body, rows_of
from lakehouse.errors import AccessDeniedError, SQLError
from lakehouse.service import completion, queries, saved_queries
from lakehouse.service.reader import Reader

router = APIRouter(tags=["workbench"])
MOST_ROWS = 1 << 60  # offsets and limits: whole numbers the engine reads
# A parameter's value: text, a 64-bit whole number, a number, true/false or null.
ParamValue = str | Annotated[int, Field(ge=-(1 << 63), le=(1 << 63) - 1)] | float | bool | None
QueryId = Annotated[int, Path(ge=1, le=1 << 62, description="A saved query's id")]
Who = Annotated[Principal, Depends(principal)]


def reader_of(request: Request, who: Principal) -> Reader:
    """The caller as the service layer knows a reader: its name and what it may see."""
    access = request.app.state.access
    return Reader(
        who.name,
        can_read=lambda t: bool(access.can_read(who, t)),
        masked=lambda t: list(access.masked_columns(who, t)),
    )


class SortKey(BaseModel):
    column: str = Field(min_length=1)
    direction: Literal["asc", "desc"] = "asc"


class PageRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One SELECT statement")
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Values of the statement's :name parameters"
    )
    offset: int = Field(0, ge=0, le=MOST_ROWS)
    size: int = Field(100, ge=1, le=queries.MAX_PAGE)
    sort: list[SortKey] = Field(default_factory=list)
    limit: int | None = Field(
        None, ge=1, le=MOST_ROWS, description="Only the statement's first rows"
    )
    record: bool = Field(True, description="Keep this run in the caller's history")
    filters: dict[str, str] = Field(
        default_factory=dict,
        description="Per column: text it contains, =v, >v, <v, >=v, <=v, null or !null",
    )


@router.post("/query/page", response_class=JSON)
async def query_page(request: Request, who: Who, body: PageRequest) -> Any:
    """One page of a statement's result, sorted and filtered by the engine, with the
    number of rows of the whole result; `:name` parameters are bound to `params`. An
    error that points into the statement says where (`error.position`: line, column)."""
    state = request.app.state
    request.state.target = body.sql[:2000]
    state.access.require(who, "query")
    page = queries.Page(
        offset=body.offset,
        size=body.size,
        sort=[(s.column, s.direction) for s in body.sort],
        filters=body.filters,
        limit=body.limit,
    )
    try:
        result = await run_in_threadpool(
            queries.run_page,
            state.lh,
            reader_of(request, who),
            body.sql,
            dict(body.params),
            page,
            timeout=state.settings.query_timeout,
            record=body.record,
        )
    except SQLError as exc:
        position = getattr(exc, "position", None)
        if position is None:
            raise
        answer = error_body(400, exc.message, exc.hint)
        answer["error"]["position"] = position
        request.state.detail = exc.message[:2000]
        return JSON(answer, 400)
    request.state.detail = f"{result.total} rows"
    return JSON(
        {
            "columns": result.table.column_names,
            "types": [str(t) for t in result.table.schema.types],
            "rows": rows_of(result.table),
            "offset": result.offset,
            "total": result.total,
            "truncated": result.truncated,
            "cached": result.cached,
            "tables": result.tables,
            "elapsed_ms": round(result.seconds * 1000, 3),
        }
    )


@router.get("/query/schema", response_class=JSON)
def query_schema(request: Request, who: Who) -> Any:
    """What the editor completes: layers, the tables the caller may read with their
    columns (and which are masked), the functions a statement may call."""
    return JSON(completion.schema_for(request.app.state.lh, reader_of(request, who)))


@router.get("/query/history", response_class=JSON)
def query_history(
    request: Request, who: Who, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> Any:
    """The caller's statements, newest first, with their row counts or errors."""
    lh = request.app.state.lh
    return JSON({"history": queries.history(lh, reader_of(request, who), limit)})


class ChartSeries(BaseModel):
    column: str = Field(max_length=1000)
    axis: Literal[0, 1] = 0


class ChartSpec(BaseModel):
    """A chart as the editor draws it."""

    type: Literal["bar", "line", "area", "scatter", "pie"] = "bar"
    x: str | None = Field(None, max_length=1000)
    by: str | None = Field(None, max_length=1000, description="Series by this column")
    stacked: bool = False
    series: list[ChartSeries] = Field(default_factory=list, max_length=100)


class SaveRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    sql: str = Field(min_length=1, max_length=100_000)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    chart: ChartSpec | None = None


@router.get("/queries", response_class=JSON)
def list_saved(request: Request, who: Who) -> Any:
    """The saved queries the caller may see (those whose every table it may read)."""
    lh = request.app.state.lh
    return JSON({"queries": saved_queries.list_saved(lh, reader_of(request, who))})


@router.post("/queries", response_class=JSON, status_code=201)
def save_query(request: Request, who: Who, body: SaveRequest) -> Any:
    """Save a statement with a name, a description, its parameters' values and chart."""
    request.app.state.access.require(who, "query")
    saved = _save(request, who, body)
    request.state.target = f"saved query {saved['id']}"
    return JSON(saved, 201)


def _save(request: Request, who: Any, body: SaveRequest, **which: Any) -> Any:
    """``body`` saved as a new query, or over the one ``which`` names."""
    return saved_queries.save(
        request.app.state.lh,
        reader_of(request, who),
        name=body.name,
        description=body.description,
        sql=body.sql,
        params=dict(body.params),
        chart=body.chart.model_dump() if body.chart else None,
        **which,
    )


def _found(call: Any) -> Any:
    try:
        return call()
    except saved_queries.SavedQueryNotFound as exc:
        raise NotFound(exc.message, exc.hint) from exc
    except saved_queries.NotYours as exc:
        raise AccessDeniedError(exc.message, exc.hint) from exc


@router.get("/queries/{query_id}", response_class=JSON)
def get_saved(request: Request, who: Who, query_id: QueryId) -> Any:
    """One saved query (404 also when the caller may not read one of its tables)."""
    lh = request.app.state.lh
    return JSON(_found(lambda: saved_queries.get_saved(lh, reader_of(request, who), query_id)))


@router.put("/queries/{query_id}", response_class=JSON)
def update_saved(request: Request, who: Who, query_id: QueryId, body: SaveRequest) -> Any:
    """Replace a saved query's name, description, statement, parameters and chart."""
    request.app.state.access.require(who, "query")
    manager = request.app.state.access.can(who, "manage_access")
    return JSON(_found(lambda: _save(request, who, body, query_id=query_id, manager=manager)))


@router.delete("/queries/{query_id}", response_class=JSON)
def delete_saved(request: Request, who: Who, query_id: QueryId) -> Any:
    """Forget a saved query."""
    request.app.state.access.require(who, "query")
    lh = request.app.state.lh
    manager = request.app.state.access.can(who, "manage_access")
    _found(lambda: saved_queries.delete(lh, reader_of(request, who), query_id, manager))
    return JSON({"deleted": query_id})
