"""PII masking: a column's values replaced by a stable pseudonym.

The pseudonym is ``pii:`` and the first 12 hex digits of the HMAC-SHA256 of the value as
text, keyed with the warehouse's own secret (``warehouse_key``: made once, kept in the
catalog, never returned by the API). Equal values stay equal within a warehouse (joins,
counts and group-bys still work), but nobody without the key can compute the pseudonym of a
value of their choice, so a pseudonym cannot be reversed by trying values. NULL stays NULL.

In SQL the key lives in a one-row DuckDB table (``KEY_TABLE``) that only the masked views
read: the sandbox refuses any other table, and the key is no literal of any view or plan.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from lakehouse.catalog import schema as cs

if TYPE_CHECKING:
    from lakehouse.catalog import Catalog

PREFIX = "pii:"
DIGITS = 12
KEY_NAME = "pii_pseudonym_key"
KEY_SCHEMA = "__lh_secret"
KEY_TABLE = f'memory."{KEY_SCHEMA}"."pseudonym_key"'
_BLOCK = 64  # SHA-256's block size: HMAC's pads


def warehouse_key(catalog: Catalog) -> bytes:
    """The warehouse's pseudonym key: read from the catalog, or made (32 random bytes) by
    the first process that needs it; processes racing to make it all end with the winner's."""
    table = cs.secrets

    def read() -> bytes | None:
        with catalog.engine.connect() as conn:
            row = conn.execute(select(table.c.value).where(table.c.name == KEY_NAME)).first()
        return bytes.fromhex(row.value) if row is not None else None

    def go() -> bytes:
        found = read()
        if found is not None:
            return found
        try:
            with catalog.engine.begin() as conn:
                conn.execute(
                    insert(table).values(
                        name=KEY_NAME,
                        value=secrets.token_hex(32),
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            pass  # made by another process meanwhile
        found = read()
        assert found is not None
        return found

    return catalog._retry(go)


def pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonym_sql(column: str, key: str = "__lh_key") -> str:
    """The SQL expression masking ``column`` (an already quoted identifier): HMAC-SHA256
    written out over the ``ipad`` and ``opad`` pads of the key relation aliased ``key``."""
    text = f"encode(CAST({column} AS VARCHAR))"
    digest = f"sha256({key}.opad || unhex(sha256({key}.ipad || {text})))"
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE '{PREFIX}' || left({digest}, {DIGITS}) END"


def pseudonym(value: Any, key: bytes) -> str | None:
    """What ``pseudonym_sql`` gives for a value whose text is ``str(value)`` (DuckDB's text
    of a boolean is lower case), in Python."""
    if value is None:
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    digest = hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGITS]


def masked_select(source: str, columns: Iterable[str]) -> str:
    """Every column of ``source``, in its place and under its name, with the given (quoted)
    columns masked."""
    replaced = ", ".join(f"{pseudonym_sql('__lh_row.' + c)} AS {c}" for c in columns)
    return (
        f"SELECT __lh_row.* REPLACE ({replaced}) "
        f"FROM {source} AS __lh_row CROSS JOIN {KEY_TABLE} AS __lh_key"
    )


def mask_digest(columns: Iterable[str]) -> str:
    """A short name for a set of masked columns, part of the masked view's schema name."""
    text = "\x00".join(sorted(columns))
    return hashlib.sha256(text.encode()).hexdigest()[:10]
