"""Roles, grants and the checks the API makes on every request.

A role's defaults (``ROLES``) say which layers it reads, whether it sees PII and which
actions it may take; grants add ``read`` or ``pii`` on a layer or a table to a role or to
one token. Columns tagged ``pii`` in the catalog are masked for callers without the PII
right. The checks read an in-memory snapshot (``cache.py``), so they cost microseconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from lakehouse.access.cache import Cache, Holder
from lakehouse.access.tokens import (
    HOW_TO_GET_ONE,
    Principal,
    aware,
    check_name,
    find_token,
    hash_token,
    insert_token,
    list_tokens,
    mark_used,
    now,
    revoke_token,
)
from lakehouse.catalog import schema as cs
from lakehouse.errors import AccessDeniedError, AuthenticationError, LakehouseError
from lakehouse.names import LAYERS, parse_table_name

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.access")

ACTIONS: dict[str, str] = {
    "query": "run SQL queries",
    "run_pipeline": "run pipelines",
    "manage_access": "manage tokens and grants",
    "read_audit": "read the audit log",
    "ingest": "push rows into bronze tables",
}
PRIVILEGES: dict[str, str] = {
    "read": "read the tables",
    "pii": "see the values of columns tagged pii",
}
# A token's last use is written to the catalog at most this often (it is shown by
# `lakehouse token list`; writing it on every request would cost a write per request).
USAGE_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class Role:
    name: str
    reads: tuple[str, ...]  # layers
    pii: bool
    actions: frozenset[str]


ROLES: dict[str, Role] = {
    "admin": Role("admin", LAYERS, True, frozenset(ACTIONS)),
    "engineer": Role("engineer", LAYERS, True, frozenset({"query", "run_pipeline", "ingest"})),
    "analyst": Role("analyst", ("silver", "gold", "realtime"), False, frozenset({"query"})),
    "viewer": Role("viewer", ("gold", "realtime"), False, frozenset({"query"})),
}


def check_role(role: str) -> Role:
    found = ROLES.get(role)
    if found is None:
        raise LakehouseError(f"unknown role {role!r}", f"the roles are {_list(ROLES)}")
    return found


class Access:
    """Tokens, roles and grants of one warehouse, and the checks made with them."""

    def __init__(self, lh: Lakehouse) -> None:
        self.lh = lh
        self.catalog = lh.catalog
        self._cache = Cache(lh.catalog)
        self._sessions: dict[str, Principal] = {}

    # -- tokens ----------------------------------------------------------------------------
    def create_token(self, name: str, role: str) -> str:
        """A new token; the secret is returned here and never again."""
        check_role(role)
        check_name(name, list(ROLES))
        secret = insert_token(self.catalog, name, role)
        self._cache.changed()
        return secret

    def revoke_token(self, name: str) -> None:
        revoke_token(self.catalog, name)
        self._cache.changed()

    def list_tokens(self) -> list[dict[str, Any]]:
        return list_tokens(self.catalog)

    def add_session_token(self, token: str, principal: Principal) -> None:
        """A token that lives in this process only (the server's login token)."""
        check_role(principal.role)
        self._sessions[hash_token(token)] = principal

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationError("no token given", HOW_TO_GET_ONE)
        digest = hash_token(token)
        session = self._sessions.get(digest)
        if session is not None:
            return session
        snap = self._cache.get()
        holder = snap.tokens.get(digest)
        if holder is None:
            row = find_token(self.catalog, digest)  # created since the last load?
            if row is None:
                raise AuthenticationError(
                    "unknown token", HOW_TO_GET_ONE + "; check that it was copied whole"
                )
            holder = Holder(
                Principal(row.name, row.role),
                aware(row.revoked_at),
                aware(row.last_used_at),
            )
            snap.tokens[digest] = holder
        if holder.revoked_at is not None:
            when = holder.revoked_at.strftime("%Y-%m-%d %H:%M:%S UTC")
            raise AuthenticationError(
                f"token {holder.principal.name!r} was revoked at {when}",
                "ask an admin for a new token: lakehouse token create --name NAME --role ROLE",
            )
        self._note_use(digest, holder)
        return holder.principal

    def _note_use(self, digest: str, holder: Holder) -> None:
        at = now()
        if holder.last_used_at is not None and at - holder.last_used_at < USAGE_RESOLUTION:
            return
        holder.last_used_at = at

        def write() -> None:
            try:
                mark_used(self.catalog, digest, at)
            except Exception as exc:  # noqa: BLE001 - a missed usage time is no reason to fail
                log.warning("could not record the use of token %s: %s", holder.principal.name, exc)

        threading.Thread(target=write, name="lakehouse-token-use", daemon=True).start()

    # -- checks ----------------------------------------------------------------------------
    def can_read(self, p: Principal, table: str) -> bool:
        role = ROLES.get(p.role)
        if role is None:
            return False
        layer = table.partition(".")[0]
        if layer in role.reads:
            return True
        return self._granted("read", layer, table, p)

    def readable(self, p: Principal, names: list[str]) -> list[str]:
        return [n for n in names if self.can_read(p, n)]

    def masked_columns(self, p: Principal, table: str) -> list[str]:
        """The columns of ``table`` tagged pii, or inheriting it (``lineage/tags.py``: from
        the columns they are computed from, or from the table a quarantine belongs to),
        that ``p`` may not see."""
        role = ROLES.get(p.role)
        if role is not None and role.pii:
            return []
        snap = self._cache.get()
        columns = snap.pii.get(table)
        if columns is None:  # a table registered since the last load: load again
            if self.catalog.get(table) is None:
                return []
            self._cache.changed()
            columns = self._cache.get().pii.get(table, ())
        if not columns or self.sees_pii(p, table):
            return []
        return list(columns)

    def sees_pii(self, p: Principal, table: str) -> bool:
        """Whether ``p`` sees the values of the pii columns of ``table``."""
        role = ROLES.get(p.role)
        if role is not None and role.pii:
            return True
        return self._granted("pii", table.partition(".")[0], table, p)

    def _granted(self, privilege: str, layer: str, table: str, p: Principal) -> bool:
        grants = self._cache.get().grants
        return bool(grants) and (
            (privilege, table, p.role) in grants
            or (privilege, layer, p.role) in grants
            or (privilege, table, p.name) in grants
            or (privilege, layer, p.name) in grants
        )

    def can(self, p: Principal, action: str) -> bool:
        if action not in ACTIONS:
            raise LakehouseError(f"unknown action {action!r}", f"the actions are {_list(ACTIONS)}")
        role = ROLES.get(p.role)
        return role is not None and action in role.actions

    def require(self, p: Principal, action: str) -> None:
        if self.can(p, action):
            return
        allowed = [r.name for r in ROLES.values() if action in r.actions]
        raise AccessDeniedError(
            f"{p.name} ({p.role}) may not {action} ({ACTIONS[action]})",
            f"{action} is for the role{'s' if len(allowed) > 1 else ''} {_list(allowed)}; "
            f"ask an admin for such a token: "
            f"lakehouse token create --name NAME --role {allowed[-1]}",
        )

    # -- grants ----------------------------------------------------------------------------
    def grant(self, privilege: str, on: str, to: str) -> None:
        """Give ``to`` (a role or a token name) ``privilege`` on a layer or a table."""
        on = self._check_grant(privilege, on, to)
        if to not in ROLES and not self._live_token(to):
            raise LakehouseError(
                f"cannot grant to {to!r}: no role or live token has that name",
                f"the roles are {_list(ROLES)}; lakehouse token list shows the tokens",
            )
        g = cs.grants

        def go() -> None:
            with self.catalog.engine.begin() as conn:
                held = conn.execute(
                    select(g.c.privilege).where(
                        g.c.privilege == privilege, g.c.target == on, g.c.grantee == to
                    )
                ).first()
                if held is None:
                    try:
                        conn.execute(
                            insert(g).values(
                                privilege=privilege, target=on, grantee=to, granted_at=now()
                            )
                        )
                    except IntegrityError:
                        pass  # granted by another process in the meantime

        self.catalog._retry(go)
        self._cache.changed()

    def revoke(self, privilege: str, on: str, to: str) -> None:
        """Take back a grant; a role's defaults are not grants and stay."""
        on = self._check_grant(privilege, on, to)
        g = cs.grants

        def go() -> int:
            with self.catalog.engine.begin() as conn:
                return conn.execute(
                    delete(g).where(g.c.privilege == privilege, g.c.target == on, g.c.grantee == to)
                ).rowcount

        removed = self.catalog._retry(go)
        self._cache.changed()
        if removed:
            return
        hint = "lakehouse grants lists the grants"
        role = ROLES.get(to)
        layer = on.partition(".")[0]
        if role is not None and (
            (privilege == "read" and layer in role.reads) or (privilege == "pii" and role.pii)
        ):
            hint = f"{to} has it by the role's defaults, which grants do not change; " + hint
        raise LakehouseError(f"there is no grant of {privilege} on {on} to {to}", hint)

    def grants(self) -> list[dict[str, Any]]:
        g = cs.grants

        def go() -> list[dict[str, Any]]:
            with self.catalog.engine.connect() as conn:
                rows = conn.execute(select(g).order_by(g.c.grantee, g.c.target, g.c.privilege))
                return [
                    dict(
                        privilege=r.privilege,
                        on=r.target,
                        to=r.grantee,
                        granted_at=aware(r.granted_at),
                    )
                    for r in rows
                ]

        listed: list[dict[str, Any]] = self.catalog._retry(go)
        return listed

    def _check_grant(self, privilege: str, on: str, to: str) -> str:
        """The grant's target in its canonical form, or an error saying what is allowed."""
        if privilege not in PRIVILEGES:
            raise LakehouseError(
                f"unknown privilege {privilege!r}",
                "the privileges are " + "; ".join(f"{k} ({v})" for k, v in PRIVILEGES.items()),
            )
        if not isinstance(to, str) or not to:
            raise LakehouseError("a grant needs a role or a token name to give it to")
        if on in LAYERS:
            return on
        try:
            return str(parse_table_name(on))
        except LakehouseError as exc:
            raise LakehouseError(
                f"cannot grant on {on!r}: neither a layer nor a table name ({exc.message})",
                f"give a layer ({_list(LAYERS)}) or a table such as silver.users",
            ) from exc

    def _live_token(self, name: str) -> bool:
        t = cs.tokens

        def go() -> bool:
            with self.catalog.engine.connect() as conn:
                query = select(t.c.id).where(t.c.name == name, t.c.revoked_at.is_(None))
                return conn.execute(query).first() is not None

        live: bool = self.catalog._retry(go)
        return live


def _list(items: Iterable[str]) -> str:
    names = list(items)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
