"""Change rows: the one shape every change data capture source writes into bronze.

PostgreSQL capture (``postgres_cdc``) and Debezium events (``debezium``) both land their
changes as rows of ``CHANGE_SCHEMA``, that of the demo's ``bronze.cdc_changes``, so a
pipeline's ``kind: cdc`` datasets apply them unchanged. A row is one insert, update,
delete or truncate of one source row; its images and key are JSON text.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

CHANGE_SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),  # "customers", schema-qualified unless public
        ("operation", pa.string()),  # insert, update, delete, truncate
        ("primary_key", pa.string()),  # JSON object of the key columns: {"id": 5}
        ("before", pa.string()),  # JSON object of the row before the change, or null
        ("after", pa.string()),  # JSON object of the row after the change, or null
        ("sequence", pa.int64()),  # orders the changes of a key: the change's LSN (text
        # for Debezium events, whose positions do not fit one number: debezium_order)
        ("changed_at", pa.string()),  # ISO 8601 commit time
        ("schema_name", pa.string()),
        ("database_name", pa.string()),
        ("transaction_id", pa.string()),
        ("lsn", pa.string()),  # the change's LSN as PostgreSQL writes it: 0/16B3748
        ("unchanged_columns", pa.string()),  # JSON array of columns absent from after
    ]
)
OPERATIONS = ("insert", "update", "delete", "truncate")


def change_row(
    table_name: str,
    operation: str,
    *,
    primary_key: dict[str, Any] | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    sequence: int | str | None,
    changed_at: str | None,
    schema_name: str | None,
    database_name: str | None,
    transaction_id: str | None,
    lsn: int | None,
    unchanged: list[str] | None = None,
) -> dict[str, Any]:
    """One change row: the key and the images as JSON text, the LSN as PostgreSQL writes
    it, the columns left out of ``after`` (unchanged, not sent) as a JSON array."""
    return {
        "table_name": table_name,
        "operation": operation,
        "primary_key": json_text(primary_key) if primary_key is not None else None,
        "before": json_text(before) if before is not None else None,
        "after": json_text(after) if after is not None else None,
        "sequence": sequence,
        "changed_at": changed_at,
        "schema_name": schema_name,
        "database_name": database_name,
        "transaction_id": transaction_id,
        "lsn": lsn_text(lsn) if lsn is not None else None,
        "unchanged_columns": json_text(unchanged) if unchanged else None,
    }


def change_table(rows: list[dict[str, Any]], schema: pa.Schema = CHANGE_SCHEMA) -> pa.Table:
    """Change rows as Arrow, in ``CHANGE_SCHEMA`` (columns a row lacks are null), or in
    another source's variant of it (Debezium's sequence is text)."""
    return pa.Table.from_pylist(rows, schema=schema)


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def qualified(schema: str | None, table: str) -> str:
    """The table_name of a change: the table, prefixed by its schema unless that is public."""
    return table if schema in (None, "", "public") else f"{schema}.{table}"


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_number(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
