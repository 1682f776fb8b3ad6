"""API tokens in the catalog: the secret is shown once and only its SHA-256 hash is kept."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from lakehouse.catalog import schema as cs
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.catalog import Catalog

PREFIX = "lh_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")
HOW_TO_GET_ONE = (
    "send 'Authorization: Bearer <token>'; an admin creates tokens with "
    "`lakehouse token create --name NAME --role ROLE`"
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name (the server's login token is "admin (login)") and its
    role."""

    name: str
    role: str


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite gives timestamps back without their time zone; they are stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def check_name(name: str, roles: list[str]) -> None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise LakehouseError(
            f"invalid token name {name!r}",
            "use up to 100 letters, digits, '_', '.', '@' or '-', starting with a letter or "
            "digit, e.g. alice",
        )
    if name in roles:
        raise LakehouseError(
            f"a token cannot be named {name!r}: it is the name of a role",
            "grants name roles and tokens alike; choose a person's or a service's name",
        )


def insert_token(catalog: Catalog, name: str, role: str) -> str:
    """Store a new token and return its secret, which nothing keeps."""
    secret = new_secret()
    row = dict(name=name, role=role, token_hash=hash_token(secret), created_at=now())

    def go() -> None:
        with catalog.engine.begin() as conn:
            live = conn.execute(
                select(cs.tokens.c.id).where(
                    cs.tokens.c.name == name, cs.tokens.c.revoked_at.is_(None)
                )
            ).first()
            if live is not None:
                raise _duplicate(name)
            try:
                conn.execute(insert(cs.tokens).values(**row))
            except IntegrityError as exc:  # created by another process in the meantime
                raise _duplicate(name) from exc

    catalog._retry(go)
    return secret


def _duplicate(name: str) -> LakehouseError:
    return LakehouseError(
        f"a token named {name!r} exists already",
        f"choose another name, or revoke it first: lakehouse token revoke {name}",
    )


def revoke_token(catalog: Catalog, name: str) -> None:
    t = cs.tokens

    def go() -> None:
        with catalog.engine.begin() as conn:
            done = conn.execute(
                update(t).where(t.c.name == name, t.c.revoked_at.is_(None)).values(revoked_at=now())
            )
            if done.rowcount:
                return
            known = conn.execute(select(t.c.id).where(t.c.name == name)).first()
        if known is not None:
            raise LakehouseError(
                f"token {name!r} is revoked already", "lakehouse token list shows the tokens"
            )
        raise LakehouseError(f"no token named {name!r}", "lakehouse token list shows the tokens")

    catalog._retry(go)


def list_tokens(catalog: Catalog) -> list[dict[str, Any]]:
    t = cs.tokens
    query = select(t.c.name, t.c.role, t.c.created_at, t.c.revoked_at, t.c.last_used_at)

    def go() -> list[dict[str, Any]]:
        with catalog.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.created_at, t.c.id)).all()
        return [
            dict(
                name=r.name,
                role=r.role,
                created_at=aware(r.created_at),
                revoked_at=aware(r.revoked_at),
                last_used_at=aware(r.last_used_at),
            )
            for r in rows
        ]

    listed: list[dict[str, Any]] = catalog._retry(go)
    return listed


def find_token(catalog: Catalog, token_hash: str) -> Any:
    """The row of one token (live or revoked), or None."""
    t = cs.tokens
    query = select(t.c.name, t.c.role, t.c.token_hash, t.c.revoked_at, t.c.last_used_at)

    def go() -> Any:
        with catalog.engine.connect() as conn:
            return conn.execute(query.where(t.c.token_hash == token_hash)).first()

    return catalog._retry(go)


def mark_used(catalog: Catalog, token_hash: str, at: datetime) -> None:
    t = cs.tokens

    def go() -> None:
        with catalog.engine.begin() as conn:
            conn.execute(update(t).where(t.c.token_hash == token_hash).values(last_used_at=at))

    catalog._retry(go)
