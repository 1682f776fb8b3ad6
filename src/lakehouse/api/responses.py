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
    ConcurrentWriteError,
    LakehouseError,
    QueryTimeoutError,
    TableNotFoundError,
    VersionNotFoundError,
)
from lakehouse.sql.sandbox import ResultTooLargeError

SLICE = 4096  # rows encoded at once, the size checked after each


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
    if isinstance(exc, ResultTooLargeError):
        return 413
    if isinstance(exc, ConcurrentWriteError):
        return 409
    return 400


class NotFound(LakehouseError):
    """A pipeline, run or other API object that does not exist."""


def rows_of(table: pa.Table) -> list[list[Any]]:
    columns = [c.to_pylist() for c in table.columns]
    return [list(r) for r in zip(*columns, strict=True)] if columns else []


def _slices(table: pa.Table, rows: int = SLICE) -> Any:
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def rows_json(table: pa.Table, most: int) -> bytes:
    """The rows as a JSON array, built a slice at a time; ``ResultTooLargeError`` as soon
    as it is over ``most`` bytes."""
    parts: list[bytes] = []
    size = 2
    for part in _slices(table):
        rows = rows_of(part)
        if not rows:
            continue
        try:
            encoded = dumps(rows)[1:-1]
        except orjson.JSONEncodeError as exc:
            raise LakehouseError(
                f"the result cannot be written as JSON: {exc}",
                "ask for format parquet or arrow, which keep nested values of any depth",
            ) from exc
        size += len(encoded) + 1
        if size > most:
            raise ResultTooLargeError(most)
        parts.append(encoded)
    return b"[" + b",".join(parts) + b"]"


def json_answer(fields: dict[str, Any], rows: bytes) -> Response:
    """A JSON object of ``fields`` and ``rows`` (JSON already)."""
    head = dumps(fields)
    body = head[:-1] + (b',"rows":' if fields else b'"rows":') + rows + b"}"
    return Response(body, media_type="application/json")


def encode_table(table: pa.Table, fmt: str, most: int) -> tuple[bytes, str, str]:
    """A result as a file: bytes, media type, file extension. Written a slice at a time;
    ``ResultTooLargeError`` as soon as it is over ``most`` bytes."""
    if table.nbytes > most and fmt != "parquet":  # compression could bring it under
        raise ResultTooLargeError(most)
    try:
        return _encode(table, fmt, most)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LakehouseError(
            f"the result cannot be written as {fmt}: {exc}",
            "ask for format parquet or arrow, which hold lists and structs",
        ) from exc


def _encode(table: pa.Table, fmt: str, most: int) -> tuple[bytes, str, str]:
    sink = io.BytesIO()
    if fmt == "csv":
        import pyarrow.csv as csv

        writer: Any = csv.CSVWriter(sink, table.schema)
        media = "text/csv; charset=utf-8"
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        writer = pq.ParquetWriter(sink, table.schema, compression="zstd")
        media = "application/vnd.apache.parquet"
    else:
        writer = pa.ipc.new_stream(sink, table.schema)
        media, fmt = "application/vnd.apache.arrow.stream", "arrow"
    with writer:
        for part in _slices(table, SLICE * 16 if fmt == "parquet" else SLICE):
            writer.write_table(part)
            if sink.tell() > most:
                raise ResultTooLargeError(most)
    if sink.tell() > most:
        raise ResultTooLargeError(most)
    return sink.getvalue(), media, fmt
