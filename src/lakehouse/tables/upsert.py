"""What an upsert means in every table format: how a matched row's value combines with
the incoming one, and which of several incoming rows with one key wins."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# How a merge combines a matched row's value {t} with the incoming one {s}.
COMBINE = {
    "sum": "coalesce({t}, 0) + coalesce({s}, 0)",
    "min": "CASE WHEN {t} IS NULL OR {s} < {t} THEN {s} ELSE {t} END",
    "max": "CASE WHEN {t} IS NULL OR {s} > {t} THEN {s} ELSE {t} END",
}


def last_per_key(source: pa.Table, keys: list[str]) -> pa.Table:
    """Upsert semantics: of several source rows with one key, the last one wins."""
    if source.num_rows == 0:
        return source
    indexed = source.append_column("__row", pa.array(range(source.num_rows), pa.int64()))
    last = indexed.group_by(keys, use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == source.num_rows:
        return source
    return source.take(np.sort(last.column("__row_max").to_numpy()))
