"""PII masking: a column's values replaced by a stable pseudonym.

The pseudonym is ``pii:`` and the first 12 hex digits of the SHA-256 of the value as text, so
equal values stay equal (joins, counts and group-bys still work) while the values themselves
do not leave the server. NULL stays NULL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PREFIX = "pii:"
DIGITS = 12


def pseudonym_sql(column: str) -> str:
    """The SQL expression masking ``column`` (an already quoted identifier)."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"ELSE '{PREFIX}' || left(sha256(CAST({column} AS VARCHAR)), {DIGITS}) END"
    )


def pseudonym(value: str | int | None) -> str | None:
    """What ``pseudonym_sql`` gives for a text or integer value, computed in Python."""
    if value is None:
        return None
    return PREFIX + hashlib.sha256(str(value).encode()).hexdigest()[:DIGITS]


def masked_select(source: str, columns: Iterable[str]) -> str:
    """Every column of ``source``, in its place and under its name, with the given (quoted)
    columns masked."""
    replaced = ", ".join(f"{pseudonym_sql(c)} AS {c}" for c in columns)
    return f"SELECT * REPLACE ({replaced}) FROM {source}"


def mask_digest(columns: Iterable[str]) -> str:
    """A short name for a set of masked columns, part of the masked view's schema name."""
    text = "\x00".join(sorted(columns))
    return hashlib.sha256(text.encode()).hexdigest()[:10]
