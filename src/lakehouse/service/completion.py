"""What an SQL editor completes from: the layers, the tables a caller may read with their
columns and types, and the functions a statement may call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.names import LAYERS
from lakehouse.sql.functions import function_names

if TYPE_CHECKING:
    from lakehouse.service.reader import Reader
    from lakehouse.warehouse import Lakehouse


def schema_for(lh: Lakehouse, reader: Reader) -> dict[str, Any]:
    """``{layers, tables: [{name, layer, description, columns: [{name, type, masked}]}],
    functions}``, only what ``reader`` may read."""
    tables = []
    for info in lh.catalog.list():
        if not reader.can_read(info.name):
            continue
        masked = {c.lower() for c in reader.masked(info.name)}
        tables.append(
            {
                "name": info.name,
                "layer": info.layer,
                "description": info.description,
                "columns": [
                    {
                        "name": c["name"],
                        "type": c.get("type"),
                        "masked": c["name"].lower() in masked,
                    }
                    for c in info.columns
                ],
            }
        )
    layers = [layer for layer in LAYERS if any(t["layer"] == layer for t in tables)]
    return {"layers": layers, "tables": tables, "functions": list(function_names())}
