"""The serving store as the CLI and the API use it: each mirror's state, a refresh now,
a statement in ClickHouse's dialect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def status(lh: Lakehouse) -> list[dict[str, Any]]:
    """Each mirror: its table's version, the version it holds, rows, lag in seconds."""
    return lh.serving.status()


def refresh(lh: Lakehouse, table: str | None = None) -> list[dict[str, Any]]:
    """Bring every mirror (or ``table``'s) to its table's newest version; what changed."""
    return lh.serving.refresh(table)


def sql(lh: Lakehouse, statement: str, params: dict[str, Any] | None = None) -> pa.Table:
    """A statement in ClickHouse's dialect over the mirrors."""
    return lh.serving.sql(statement, params)


def health(lh: Lakehouse) -> dict[str, Any]:
    """``ok`` or ``degraded`` (with why) for the health endpoint."""
    return lh.serving.health()
