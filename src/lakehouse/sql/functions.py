"""The SQL functions a sandboxed statement may call, for an editor's completion: DuckDB's
scalar and aggregate functions without those the sandbox refuses."""

from __future__ import annotations

import re
from functools import cache

import duckdb

from lakehouse.sql.sandbox import REFUSED_FUNCTIONS, REFUSED_PREFIXES, TABLE_FUNCTIONS


@cache
def function_names() -> tuple[str, ...]:
    """Names of the callable functions, sorted (the same for every warehouse: asked once
    of a fresh in-memory database)."""
    with duckdb.connect() as db:
        rows = db.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() "
            "WHERE function_type IN ('scalar', 'aggregate', 'macro')"
        ).fetchall()
    names = {str(r[0]) for r in rows if re.fullmatch(r"[a-z][a-z0-9_]*", str(r[0]))}
    names = {
        n
        for n in names
        if n.lower() not in REFUSED_FUNCTIONS
        and not n.lower().startswith(REFUSED_PREFIXES)
        and n.lower() not in ("sleep_ms", "pg_sleep")
    }
    return tuple(sorted(names | set(TABLE_FUNCTIONS)))
