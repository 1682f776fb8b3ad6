"""Row counts of the data pages of a parquet column chunk, read from the page headers
(pyarrow exposes the footer only). A page header is a Thrift compact struct: field 1 the
page type, 3 the compressed size, 5 a v1 data page header, 8 a v2 one (both with the
value count first), 7 a dictionary page header."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(data: bytes, i: int, kind: int) -> tuple[Any, int]:
    if kind in (1, 2):  # booleans live in the field header
        return kind == 1, i
    if kind == 3:
        return data[i], i + 1
    if kind in (4, 5, 6):
        raw, i = _varint(data, i)
        return _zigzag(raw), i
    if kind == 7:
        return None, i + 8
    if kind == 8:
        size, i = _varint(data, i)
        return data[i : i + size], i + size
    if kind in (9, 10):
        head = data[i]
        i += 1
        count, item = head >> 4, head & 0x0F
        if count == 15:
            count, i = _varint(data, i)
        items = []
        for _ in range(count):
            value, i = _value(data, i, item)
            items.append(value)
        return items, i
    if kind == 12:
        return _struct(data, i)
    raise ValueError(f"thrift type {kind}")


def _struct(data: bytes, i: int) -> tuple[dict[int, Any], int]:
    fields: dict[int, Any] = {}
    last = 0
    while True:
        head = data[i]
        i += 1
        if head == 0:
            return fields, i
        kind, delta = head & 0x0F, head >> 4
        if delta:
            field = last + delta
        else:
            raw, i = _varint(data, i)
            field = _zigzag(raw)
        last = field
        fields[field], i = _value(data, i, kind)


def data_page_rows(path: str, column: str) -> list[list[int]]:
    """Per row group, the number of rows of each data page of ``column``."""
    meta = pq.ParquetFile(path).metadata
    data = open(path, "rb").read()
    out = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        chunk = next(
            group.column(i)
            for i in range(group.num_columns)
            if group.column(i).path_in_schema == column
        )
        start = chunk.dictionary_page_offset if chunk.has_dictionary_page else None
        i = start if start is not None else chunk.data_page_offset
        end = i + chunk.total_compressed_size
        pages = []
        while i < end:
            header, i = _struct(data, i)
            for kind in (5, 8):
                if kind in header:
                    pages.append(header[kind][1])
            i += header[3]
        out.append(pages)
    return out
