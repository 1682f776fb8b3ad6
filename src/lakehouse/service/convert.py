"""Converting a table to the other table format, as the CLI and the API do it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.names import parse_table_name

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def convert(lh: Lakehouse, table: str, to: str, wait: float = 0.0) -> dict[str, Any]:
    """Rewrite ``table`` in the format ``to`` (``delta`` or ``iceberg``), keeping its
    rows, schema, partitioning and catalog entry; waits up to ``wait`` seconds for its
    writers (then ``TableBusyError``). A failure leaves the table as it was."""
    from lakehouse.tables.reformat import convert_table

    name = parse_table_name(table)
    done = convert_table(lh.storage, name, to, wait)
    lh.engine.forget(str(name))
    return dict(done.__dict__)
