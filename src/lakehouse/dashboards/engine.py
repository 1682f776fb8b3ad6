"""Which engine reads a panel, the one place that choice is made, and the serving
store's reading of it.

A panel reads the serving store (ClickHouse) when every table it names is mirrored
there, the caller may read each of them with no column masked, and it travels to no
older version; otherwise, or when the serving store cannot answer, the lakehouse's own
engine reads it through the same access rules, masking and audit as ``POST /query``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.serving.dialect import to_clickhouse
from lakehouse.sql.names import find_references

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

LAKEHOUSE = "lakehouse"
SERVING = "serving"


def choose_engine(lh: Lakehouse, sql: str, tables: list[str], plain_for_caller: bool) -> str:
    """The engine that answers a panel's ``sql`` reading ``tables`` for a caller who may
    read all of them with nothing masked (``plain_for_caller``)."""
    if not plain_for_caller or not tables:
        return LAKEHOUSE
    if any(ref.version is not None or ref.timestamp is not None for ref in find_references(sql)):
        return LAKEHOUSE  # time travel: only the lakehouse keeps old versions
    return SERVING if lh.serving.covers(tables) else LAKEHOUSE


def read_serving(
    lh: Lakehouse, sql: str, values: Mapping[str, Any], limit: int, fresh: bool = False
) -> tuple[pa.Table, bool]:
    """The panel's rows from the serving store (at most ``limit``) and whether there
    were more; ``values`` fill its ``$name`` parameters; ``fresh``: read now, not an
    answer kept from a moment ago."""
    text, bound = to_clickhouse(sql, dict(values))
    table = lh.serving.sql(f"SELECT * FROM ({text}) LIMIT {int(limit) + 1}", bound, fresh=fresh)
    if table.num_rows <= limit:
        return table, False  # the kept answer itself, when it was kept (see api/dashboards)
    return table.slice(0, limit), True
