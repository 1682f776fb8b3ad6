"""API tokens and grants of a warehouse: create, list and revoke tokens; grant, revoke
and list privileges. Changes reach running servers within seconds (see ``Access``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.access.policy import Access

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def _access(lh: Lakehouse | Access) -> Access:
    return lh if isinstance(lh, Access) else Access(lh)


def create_token(lh: Lakehouse | Access, name: str, role: str) -> str:
    """A new token for ``name`` with ``role``; its secret is returned here and never
    again."""
    return _access(lh).create_token(name, role)


def list_tokens(lh: Lakehouse | Access) -> list[dict[str, Any]]:
    """The tokens, live and revoked, with their role and times; never the secrets."""
    return _access(lh).list_tokens()


@dataclass
class RevokedToken:
    name: str
    kept_grants: list[dict[str, Any]] = field(default_factory=list)
    """The grants to the token's name: they stay, for a new token of that name."""


def revoke_token(lh: Lakehouse | Access, name: str) -> RevokedToken:
    """Revoke the live token named ``name``."""
    control = _access(lh)
    control.revoke_token(name)
    return RevokedToken(name, [g for g in control.grants() if g["to"] == name])


def grant(lh: Lakehouse | Access, privilege: str, on: str, to: str) -> None:
    """Give a role or a token ``privilege`` (read or pii) on a layer or a table."""
    _access(lh).grant(privilege, on, to)


def revoke(lh: Lakehouse | Access, privilege: str, on: str, to: str) -> None:
    """Take a grant back."""
    _access(lh).revoke(privilege, on, to)


def list_grants(lh: Lakehouse | Access) -> list[dict[str, Any]]:
    """The grants (``privilege``, ``on``, ``to``, ``granted_at``), added to the roles'
    defaults."""
    return _access(lh).grants()


def readers(lh: Lakehouse | Access, table: str, with_grants: bool) -> dict[str, Any]:
    """Who may read ``table``: per role whether it reads it and sees its pii values by
    default, and (``with_grants``: for whoever manages access) the grants that add ``read``
    or ``pii`` on it or its layer."""
    from lakehouse.access.policy import ROLES

    layer = table.partition(".")[0]
    roles = [
        {"role": r.name, "reads": layer in r.reads, "pii": r.pii and layer in r.reads}
        for r in ROLES.values()
    ]
    out: dict[str, Any] = {"table": table, "roles": roles}
    if with_grants:
        out["grants"] = [
            {**g, "granted_at": g["granted_at"].isoformat()}
            for g in _access(lh).grants()
            if g["on"] in (table, layer)
        ]
    return out
