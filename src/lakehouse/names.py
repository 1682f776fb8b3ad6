"""Table names: ``layer.name`` with lower-case letters, digits and underscores."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakehouse.errors import InvalidNameError

LAYERS: tuple[str, ...] = ("bronze", "silver", "gold", "system", "realtime")
_PART = re.compile(r"[a-z][a-z0-9_]{0,127}")


@dataclass(frozen=True, order=True)
class TableName:
    layer: str
    name: str

    def __str__(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def path(self) -> str:
        """Location of the table relative to the warehouse root."""
        return f"{self.layer}/{self.name}"


def parse_table_name(text: str) -> TableName:
    """Parse and validate ``layer.name``; anything else is refused with the reason."""
    if not isinstance(text, str):
        raise InvalidNameError(f"table name must be a string, got {type(text).__name__}")
    parts = text.split(".")
    if len(parts) != 2:
        raise InvalidNameError(
            f"invalid table name {text!r}: expected layer.name",
            f"use one of the layers {', '.join(LAYERS)}, e.g. silver.users",
        )
    layer, name = parts
    if layer not in LAYERS:
        raise InvalidNameError(
            f"invalid table name {text!r}: unknown layer {layer!r}",
            f"the layers are {', '.join(LAYERS)}",
        )
    if not _PART.fullmatch(name):
        raise InvalidNameError(
            f"invalid table name {text!r}: {name!r} must start with a lower-case letter and "
            "hold only lower-case letters, digits and underscores",
            "e.g. silver.user_sessions",
        )
    return TableName(layer, name)
