"""Arrow tables and temporary tables under a name that SQL on a DuckDB connection reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from lakehouse.quoting import ident


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, rows: Any) -> Iterator[str]:
    """``rows`` readable as ``name`` while the block runs; yields the name quoted for SQL."""
    con.register(name, rows)
    try:
        yield ident(name)
    finally:
        con.unregister(name)


@contextmanager
def temp_table(con: duckdb.DuckDBPyConnection, name: str, sql: str) -> Iterator[str]:
    """A temporary table of ``sql``'s rows while the block runs; yields its quoted name."""
    quoted = ident(name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {quoted} AS {sql}")
    yield quoted
    con.execute(f"DROP TABLE {quoted}")
