"""What every commit carries: the lakehouse operation and user that made it, and the
transaction identifiers that make writes idempotent and record their inputs."""

from __future__ import annotations

import getpass
import os
from typing import Any

from deltalake import CommitProperties, DeltaTable

# A Delta transaction identifier (app id, number), or several committed together.
Txn = tuple[str, int] | list[tuple[str, int]]


def txn_list(txn: Txn | None) -> list[tuple[str, int]]:
    """The transaction identifiers ``txn`` names, as a list."""
    return [txn] if isinstance(txn, tuple) else list(txn or [])


def holds(dt: DeltaTable, app_id: str, n: int) -> bool:
    """Whether the table holds transaction number ``n`` (or a later one) for ``app_id``."""
    done = dt.transaction_version(app_id)
    return done is not None and bool(done >= n)


def marks(
    given: list[tuple[str, int]], input_versions: dict[str, int] | None
) -> list[tuple[str, int]]:
    """The transaction identifiers a write commits: its own and its inputs' versions."""
    return given + [(input_mark(t), v) for t, v in (input_versions or {}).items()]


def input_mark(table: str) -> str:
    """The transaction identifier under which a table records the version of an input."""
    return f"lakehouse.input:{table}"


def commit_properties(
    operation: str, options: str | None = None, **properties: Any
) -> CommitProperties:
    """Every commit records which lakehouse operation made it, and who; a creation also
    records the table's options."""
    metadata = {"lakehouse.operation": operation, "lakehouse.user": user()}
    if options is not None:
        metadata["lakehouse.options"] = options
    return CommitProperties(custom_metadata=metadata, **properties)


def user() -> str:
    try:
        return os.environ.get("LAKEHOUSE_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"
