"""Size samples of every table (``system.table_sizes``), at most one per table an hour,
taken when the health report is computed; a table's growth per day is read from them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.quoting import string

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

SIZES = "system.table_sizes"
EVERY = timedelta(hours=1)  # one sample per table at most this often
WINDOW = timedelta(hours=25)  # growth is measured against the oldest sample this recent
SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),
        ("size_bytes", pa.int64()),
        ("sampled_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _stamp(when: datetime) -> str:
    return string(when.isoformat())


def growth_per_day(lh: Lakehouse, sizes: dict[str, int], now: datetime) -> dict[str, float]:
    """Bytes a day each table grew: its size now against its oldest sample of the last
    25 hours that is at least an hour old (tables without one are left out)."""
    if lh.catalog.get(SIZES) is None:
        return {}
    rows = lh.sql(
        "SELECT table_name, arg_min(size_bytes, sampled_at), min(sampled_at) "
        f"FROM {SIZES} WHERE sampled_at >= CAST({_stamp(now - WINDOW)} AS TIMESTAMPTZ) "
        f"AND sampled_at <= CAST({_stamp(now - EVERY)} AS TIMESTAMPTZ) GROUP BY table_name"
    ).rows()
    out = {}
    for name, then_size, then in rows:
        if name not in sizes:
            continue
        seconds = (now - then).total_seconds()
        if seconds > 0:
            out[name] = round((sizes[name] - int(then_size)) / seconds * 86400, 1)
    return out


def record_sizes(lh: Lakehouse, sizes: dict[str, int], now: datetime) -> int:
    """Append a sample for each table whose latest is an hour old or more; how many."""
    latest: dict[str, datetime] = {}
    if lh.catalog.get(SIZES) is not None:
        latest = {
            r[0]: r[1]
            for r in lh.sql(
                f"SELECT table_name, max(sampled_at) FROM {SIZES} GROUP BY table_name"
            ).rows()
        }
    due = [n for n in sizes if n not in latest or now - latest[n] >= EVERY]
    if not due:
        return 0
    rows = [{"table_name": n, "size_bytes": sizes[n], "sampled_at": now} for n in due]
    lh.write(
        SIZES,
        pa.Table.from_pylist(rows, schema=SCHEMA),
        description="Size samples of every table, one an hour at most (health: growth per day)",
    )
    return len(due)
