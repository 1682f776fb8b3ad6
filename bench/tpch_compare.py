"""Row-by-row comparison of two engines' query results."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

# Decimal and floating aggregates may be computed in different orders or types; six
# significant digits is plenty to catch a wrong answer.
REL_TOL = 1e-6


def same_value(a: Any, b: Any) -> bool:
    numeric = (int, float, Decimal)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return math.isclose(fa, fb, rel_tol=REL_TOL, abs_tol=1e-9)
    if isinstance(a, datetime | date) and isinstance(b, datetime | date):
        return type(a) is type(b) and a == b
    return a == b


def compare(expected: pa.Table, actual: pa.Table) -> str | None:
    """None when equal row by row in returned order, else what differs first."""
    if expected.column_names != actual.column_names:
        return f"columns {expected.column_names} != {actual.column_names}"
    if expected.num_rows != actual.num_rows:
        return f"{expected.num_rows} rows != {actual.num_rows} rows"
    for i, (want, got) in enumerate(zip(expected.to_pylist(), actual.to_pylist(), strict=True)):
        bad = [c for c in want if not same_value(want[c], got[c])]
        if bad:
            diffs = ", ".join(f"{c}: duckdb {want[c]!r} != lakehouse {got[c]!r}" for c in bad)
            return f"row {i}: {diffs}"
    return None
