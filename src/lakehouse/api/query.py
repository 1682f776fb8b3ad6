"""``POST /query``: one read-only statement through the SQL sandbox, as JSON or a file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, encode_table, json_answer, rows_json
from lakehouse.api.workbench import ParamValue
from lakehouse.errors import TableNotFoundError
from lakehouse.service.sql_text import bound, engine_text
from lakehouse.sql.sandbox import SafeResult, result_limit

router = APIRouter(tags=["query"])
Who = Annotated[Principal, Depends(principal)]


class QueryRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One SELECT statement")
    limit: int = Field(1000, ge=1, description="Rows to return at most")
    format: Literal["json", "csv", "parquet", "arrow"] = "json"
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Values of the statement's :name parameters"
    )


@router.post("/query", response_class=JSON)
async def query(request: Request, who: Who, body: QueryRequest) -> Any:
    """Run one read-only statement over `layer.table` names (time travel included).
    PII columns are masked for callers without the right, in every format."""
    state = request.app.state
    request.state.target = body.sql[:2000]
    state.access.require(who, "query")
    limit = min(body.limit, state.settings.max_rows)
    # With values, :name parameters are the engine's $name, bound to them.
    sql = engine_text(body.sql) if body.params else body.sql
    options = {
        "limit": limit,
        "params": bound(body.sql, dict(body.params)) if body.params else None,
        "masked": lambda t: state.access.masked_columns(who, t),
        "can_read": lambda t: state.access.can_read(who, t),
    }
    # A cached answer is served on the event loop; anything that runs a statement (or
    # writes the audit log) goes to a worker thread.
    reads_audit = "audit_log" in body.sql  # the caller sees its own calls up to this one
    try:
        cached: SafeResult | None = (
            None if reads_audit else state.lh.engine.cached_query(sql, **options)
        )
        if cached is None:
            result = await run_in_threadpool(_run, state, sql, options, reads_audit)
        else:
            result = cached
    except TableNotFoundError as exc:
        request.state.denied = getattr(exc, "denied", False)  # for the audit log only
        raise
    request.state.detail = f"{result.table.num_rows} rows" + (" (cached)" if result.cached else "")
    most = result_limit()
    if body.format != "json":
        content, media, ext = await run_in_threadpool(encode_table, result.table, body.format, most)
        return Response(
            content,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="result.{ext}"',
                "X-Truncated": str(result.truncated).lower(),
            },
        )
    if result.table.nbytes < 1 << 20:  # small (a cached answer, say): on the event loop
        rows = rows_json(result.table, most)
    else:
        rows = await run_in_threadpool(rows_json, result.table, most)
    return json_answer(
        {
            "columns": result.table.column_names,
            "types": [str(t) for t in result.table.schema.types],
            "row_count": result.table.num_rows,
            "truncated": result.truncated,
            "cached": result.cached,
            "tables": result.tables,
            "elapsed_ms": round(result.seconds * 1000, 3),
        },
        rows,
    )


def _run(state: Any, sql: str, options: dict[str, Any], flush_audit: bool) -> SafeResult:
    if flush_audit:
        state.audit.flush()
    result: SafeResult = state.lh.engine.safe_query(
        sql, timeout=state.settings.query_timeout, **options
    )
    return result
