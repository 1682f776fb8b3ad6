"""``POST /ingest/{table}``: JSON lines pushed into a bronze table, once per
Idempotency-Key (the landing itself is ``lakehouse.ingest.push``)."""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from starlette.concurrency import run_in_threadpool

from lakehouse.access import Principal
from lakehouse.api.auth import principal
from lakehouse.api.responses import JSON, error_body
from lakehouse.ingest import push

router = APIRouter(tags=["ingest"])
Who = Annotated[Principal, Depends(principal)]
log = logging.getLogger("lakehouse.api")

MEDIA_TYPES = ("application/x-ndjson", "application/jsonl", "application/json", "text/plain")
MAX_BYTES_ENV = "LAKEHOUSE_INGEST_MAX_BYTES"
DEFAULT_MAX_BYTES = 16 << 20
MAX_LINES_SHOWN = 100
# What the endpoint accepts, told in the OpenAPI document (the checks themselves are in
# ``push``, which answers 400 with the reason).
TABLE_PATTERN = r"^bronze\.[a-z][a-z0-9_]{0,116}$"
PRINTABLE = r"^[ -~]{1,255}$"
EXAMPLE = '{"order_id": 1, "amount": 9.5}\n{"order_id": 2, "amount": 12}\n'

_BODY = {
    "requestBody": {
        "required": True,
        "description": "JSON lines: one JSON object per line",
        # One example, on the type every HTTP tool can send as it is.
        "content": {
            m: {"schema": {"type": "string"}, **({"example": EXAMPLE} if m == "text/plain" else {})}
            for m in MEDIA_TYPES
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every line landed (or the key's push had: `duplicate` is true)"},
    400: {
        "description": "Not a bronze landing table (another layer, a quarantine table), "
        "an invalid key, an empty body"
    },
    401: {"description": "No or unknown token"},
    403: {"description": "The caller may not ingest"},
    413: {"description": "The body is larger than the server's limit"},
    415: {"description": "The body is not JSON lines"},
    422: {
        "description": "Some lines are not JSON objects: they were quarantined, the rest "
        "landed; `lines` says which"
    },
}


@cache
def max_bytes(raw: str | None) -> int:
    """The body size limit from ``LAKEHOUSE_INGEST_MAX_BYTES``; a value that is not a
    positive whole number is reported in the server log once, and the default used."""
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        log.warning(
            "%s=%r is not a positive number of bytes; the limit is %d (e.g. %s=%d)",
            MAX_BYTES_ENV,
            raw,
            DEFAULT_MAX_BYTES,
            MAX_BYTES_ENV,
            DEFAULT_MAX_BYTES,
        )
        return DEFAULT_MAX_BYTES
    return value


def _error(request: Request, status: int, message: str, hint: str | None, **extra: Any) -> JSON:
    request.state.detail = message[:2000]
    return JSON({**error_body(status, message, hint), **extra}, status)


def _refused_media(request: Request) -> str | None:
    """What is wrong with the body's declared type or encoding, if anything. A body
    without a Content-Type is taken as JSON lines."""
    declared = request.headers.get("content-type")
    media = (declared or "").split(";")[0].strip().lower()
    if declared is not None and media not in MEDIA_TYPES:
        return f"a body of type {media or declared!r} cannot be ingested"
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return f"a body with Content-Encoding {encoding!r} cannot be ingested"
    return None


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is over ``limit`` bytes (by its Content-Length, or
    while it streams in when there is none): it is then not read on."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/ingest/{table}", response_class=JSON, openapi_extra=_BODY, responses=_RESPONSES)
async def ingest(
    request: Request,
    who: Who,
    table: Annotated[
        str,
        Path(
            description="A bronze table, created on the first push",
            examples=["bronze.events"],
            json_schema_extra={"pattern": TABLE_PATTERN},
        ),
    ],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1 to 255 printable ASCII characters; a retry with the same key "
            "lands nothing and answers duplicate",
            json_schema_extra={"pattern": PRINTABLE},
        ),
    ] = None,
    source_system: Annotated[
        str | None,
        Header(
            alias="X-Source-System",
            description="Kept in _source_system (default http)",
            json_schema_extra={"pattern": PRINTABLE},
        ),
    ] = None,
) -> Any:
    """Land JSON lines (one object per line) in a bronze table, with the bronze metadata
    columns; new fields become new columns, values that do not fit a column's type go to
    `_rescued_data`. Lines that are not JSON objects go to `<table>_quarantine` and the
    answer is 422 listing them (the other lines landed). With an `Idempotency-Key` a push
    lands exactly once, however often it is retried."""
    state = request.app.state
    request.state.target = table[:2000]
    state.access.require(who, "ingest")
    name = push.bronze_table(table)
    key = None if idempotency_key is None else push.check_key(idempotency_key)
    system = push.SOURCE_SYSTEM if source_system is None else source_system
    push.check_source_system(system)
    refused = _refused_media(request)
    if refused is not None:
        return _error(
            request,
            415,
            refused,
            "send JSON lines, one object per line, uncompressed, as Content-Type "
            + ", ".join(MEDIA_TYPES),
        )
    limit = max_bytes(os.environ.get(MAX_BYTES_ENV))
    data = await _read_body(request, limit)
    if data is None:
        return _error(
            request,
            413,
            f"the body is larger than the limit of {limit} bytes",
            "split the lines into several pushes, each under the limit "
            f"(the server's {MAX_BYTES_ENV} sets it)",
        )
    result = await run_in_threadpool(
        push.land, state.lh, str(name), data, key=key, source_system=system
    )
    answer = {
        "table": result.table,
        "accepted": result.accepted,
        "rescued": result.rescued,
        "quarantined": result.quarantined,
        "version": result.version,
        "request_id": result.request_id,
        "duplicate": result.duplicate,
    }
    if result.duplicate:
        request.state.detail = f"duplicate of {result.request_id}: nothing landed"
    elif result.bad:
        lines = [{"line": b.index + 1, "reason": b.reason} for b in result.bad]
        return _error(
            request,
            422,
            f"{len(result.bad)} line(s) are not JSON objects: they went to "
            f"{result.table}{push.QUARANTINE}; the other {result.accepted} landed",
            "fix the lines listed and push only them again (with a new Idempotency-Key)",
            **answer,
            lines=lines[:MAX_LINES_SHOWN],
        )
    else:
        request.state.detail = f"{result.accepted} rows landed ({result.request_id})"
    return JSON(answer)
