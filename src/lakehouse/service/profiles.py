"""A table's data profile and facets, as a caller may see them.

The profile gives, per column, its null share, distinct count, least and greatest value,
its most frequent values and (for numbers) a histogram. It is computed on demand through
the SQL sandbox, so pii columns are profiled as their pseudonyms for a caller who sees
them masked (their top values are pseudonyms), and kept per table version and mask.
Facets are Datasette's: the most frequent values of a few columns among the rows that
match the chosen values, with those rows."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.quoting import ident

if TYPE_CHECKING:
    from lakehouse.service.reader import Reader
    from lakehouse.warehouse import Lakehouse

TOP_VALUES = 10
BINS = 10
KEPT = 64  # profiles kept per process
FACET_ROWS = 50
EXACT_DISTINCT = 1_000_000  # rows up to which distinct counts are exact

_profiles: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_temporal(dtype):
        return "time"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "text"
    return "other"


def _query(lh: Lakehouse, reader: Reader, sql: str, **params: Any) -> pa.Table:
    result = lh.engine.safe_query(
        sql,
        limit=10_000,
        masked=reader.masked,
        can_read=reader.can_read,
        params=params or None,
    )
    table: pa.Table = result.table
    return table


def _json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def profile(lh: Lakehouse, reader: Reader, table: str) -> dict[str, Any]:
    """The profile of ``table`` (its newest version) for ``reader``; ``cached`` says
    whether it was computed before for this version and these masked columns."""
    info = lh.catalog.get(table)
    version = info.version if info is not None else None
    masks = tuple(sorted(reader.masked(table)))
    key = (str(lh.root), table, version, masks)
    if info is not None and info.format != "view":
        with _lock:
            kept = _profiles.get(key)
            if kept is not None:
                _profiles.move_to_end(key)
                return {**kept, "cached": True}
    started = time.perf_counter()
    computed = _compute(lh, reader, table)
    computed.update(version=version, seconds=round(time.perf_counter() - started, 3))
    with _lock:
        _profiles[key] = computed
        while len(_profiles) > KEPT:
            _profiles.popitem(last=False)
    return {**computed, "cached": False}


def _compute(lh: Lakehouse, reader: Reader, table: str) -> dict[str, Any]:
    """The counts, least and greatest of every column in one pass, then a grouping per
    column for its top values and (numbers) its histogram. Distinct counts are exact up
    to ``EXACT_DISTINCT`` rows, HyperLogLog estimates (``distinct_exact`` false) beyond;
    there, a column whose values are (nearly) all distinct gets no top values
    (``unique``)."""
    schema = _query(lh, reader, f"SELECT * FROM {table} LIMIT 0").schema
    columns = [(f.name, f.type, _kind(f.type)) for f in schema]
    rows = int(_query(lh, reader, f"SELECT count(*) AS n FROM {table}").column(0)[0].as_py())
    exact = rows <= EXACT_DISTINCT
    parts = ["count(*)"]
    for name, _, kind in columns:
        col = ident(name)
        parts.append(f"count({col})")
        if kind == "other":
            parts += ["NULL", "NULL", "NULL"]
        else:
            distinct = f"count(DISTINCT {col})" if exact else f"approx_count_distinct({col})"
            parts += [distinct, f"min({col})", f"max({col})"]
    stats = _query(lh, reader, f"SELECT {', '.join(parts)} FROM {table}").to_pylist()
    values = list(stats[0].values()) if stats else []
    rows = int(values[0] or 0) if values else 0
    masked = {m.lower() for m in reader.masked(table)}
    out: list[dict[str, Any]] = []
    for i, (name, dtype, kind) in enumerate(columns):
        non_null, distinct, low, high = values[1 + 4 * i : 5 + 4 * i]
        non_null = int(non_null or 0)
        # A (nearly) unique column of a large table: its top values say nothing.
        unique = not exact and kind != "other" and (distinct or 0) >= 0.95 * non_null
        out.append(
            {
                "name": name,
                "type": str(dtype),
                "kind": kind,
                "masked": name.lower() in masked,
                "nulls": rows - non_null,
                "null_share": (rows - non_null) / rows if rows else 0.0,
                "distinct": distinct,
                "distinct_exact": exact,
                "unique": unique,
                "min": _json(low),
                "max": _json(high),
                "top_values": [],
                "histogram": None,
            }
        )
    _groups(lh, reader, table, out, values)
    return {"table": table, "rows": rows, "columns": out}


def _groups(
    lh: Lakehouse, reader: Reader, table: str, out: list[dict[str, Any]], stats: list[Any]
) -> None:
    """Fill in the top values and histograms of ``out``: one grouping a column (one query
    of several GROUPING SETS was measured three times slower in DuckDB)."""
    for i, column in enumerate(out):
        if column["kind"] == "other":
            continue
        if not column["unique"]:
            column["top_values"] = _top_values(lh, reader, table, column["name"])
        low, high = stats[3 + 4 * i], stats[4 + 4 * i]
        if column["kind"] == "number" and _finite(low) and _finite(high):
            column["histogram"] = _histogram(
                lh, reader, table, column["name"], float(low), float(high)
            )


def _histogram(
    lh: Lakehouse, reader: Reader, table: str, column: str, low: float, high: float
) -> list[dict[str, Any]]:
    """Equal-width bins from ``low`` to ``high`` (the last one holds ``high``)."""
    col = ident(column)
    width = (high - low) / BINS if high > low else 1.0
    found = _query(
        lh,
        reader,
        f"SELECT least(CAST(floor((CAST({col} AS DOUBLE) - $low) / $width) AS INTEGER), "
        f"{BINS - 1}) AS bin, count(*) AS count FROM {table} "
        f"WHERE isfinite(CAST({col} AS DOUBLE)) GROUP BY 1 ORDER BY 1",
        low=low,
        width=width,
    ).to_pylist()
    counts = {r["bin"]: r["count"] for r in found}
    bins = BINS if high > low else 1
    return [
        {"from": low + b * width, "to": low + (b + 1) * width, "count": counts.get(b, 0)}
        for b in range(bins)
    ]


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _top_values(
    lh: Lakehouse, reader: Reader, table: str, column: str, where: str = "", **params: Any
) -> list[dict[str, Any]]:
    col = ident(column)
    found = _query(
        lh,
        reader,
        f"SELECT {col} AS value, count(*) AS count FROM {table}{where} "
        f"GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST LIMIT {TOP_VALUES}",
        **params,
    ).to_pylist()
    return [{"value": _json(r["value"]), "count": r["count"]} for r in found]


def facets(
    lh: Lakehouse,
    reader: Reader,
    table: str,
    columns: list[str],
    chosen: dict[str, str | None],
    rows: int = FACET_ROWS,
) -> dict[str, Any]:
    """The most frequent values of ``columns`` among the rows where every ``chosen``
    column has its value (None: is null), with the first ``rows`` of those rows and
    how many there are. Values are compared as the caller sees them (pseudonyms)."""
    schema = _query(lh, reader, f"SELECT * FROM {table} LIMIT 0").schema
    names = {n.lower(): n for n in schema.names}
    for column in [*columns, *chosen]:
        if column.lower() not in names:
            raise LakehouseError(
                f"{table} has no column {column!r}", f"its columns are {', '.join(schema.names)}"
            )
    conditions, params = [], {}
    for i, (column, value) in enumerate(sorted(chosen.items())):
        col = ident(names[column.lower()])
        if value is None:
            conditions.append(f"{col} IS NULL")
        else:
            conditions.append(f"CAST({col} AS VARCHAR) = $facet_{i}")
            params[f"facet_{i}"] = value
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    found = {c: _top_values(lh, reader, table, names[c.lower()], where, **params) for c in columns}
    count = _query(lh, reader, f"SELECT count(*) AS n FROM {table}{where}", **params)
    sample = _query(lh, reader, f"SELECT * FROM {table}{where} LIMIT {int(rows)}", **params)
    return {
        "table": table,
        "chosen": chosen,
        "facets": [{"column": c, "values": v} for c, v in found.items()],
        "count": count.column(0)[0].as_py(),
        "columns": sample.column_names,
        "types": [str(t) for t in sample.schema.types],
        "rows": [[_json(v) for v in r.values()] for r in sample.to_pylist()],
    }


def suggested_facets(profiled: dict[str, Any], most: int = 4) -> list[str]:
    """Columns worth a facet: text or boolean ones with few distinct values."""
    picks = [
        c["name"]
        for c in profiled["columns"]
        if c["kind"] in ("text", "boolean") and c["distinct"] and 1 < c["distinct"] <= 50
    ]
    return picks[:most]
