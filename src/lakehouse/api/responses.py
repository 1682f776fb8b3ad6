"""Fast JSON answers and the one error shape of the API."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
from typing import Any

import orjson
import pyarrow as pa
from fastapi.responses import Response

from lakehouse.errors import (
    AccessDeniedError,
    AuthenticationError,
    LakehouseError,
    QueryTimeoutError,
    TableNotFoundError,
    VersionNotFoundError,
)


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def dumps(data: Any) -> bytes:
    return orjson.dumps(
        data, default=_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    )


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_body(status: int, message: str, hint: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "message": message, "hint": hint}}


def status_of(exc: LakehouseError) -> int:
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, AccessDeniedError):
        return 403
    if isinstance(exc, TableNotFoundError | VersionNotFoundError | NotFound):
        return 404
    if isinstance(exc, QueryTimeoutError):
        return 408
    return 400


class NotFound(LakehouseError):
    """A pipeline, run or other API object that does not exist."""


def rows_of(table: pa.Table) -> list[list[Any]]:
    columns = [c.to_pylist() for c in table.columns]
    return [list(r) for r in zip(*columns, strict=True)] if columns else []


def encode_table(table: pa.Table, fmt: str) -> tuple[bytes, str, str]:
    """A result as a file: bytes, media type, file extension."""
    sink = io.BytesIO()
    if fmt == "csv":
        import pyarrow.csv as csv

        csv.write_csv(table, sink)
        return sink.getvalue(), "text/csv; charset=utf-8", "csv"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue(), "application/vnd.apache.parquet", "parquet"
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue(), "application/vnd.apache.arrow.stream", "arrow"
