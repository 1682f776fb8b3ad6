"""Who is calling: a bearer token, or the cookie the login URL set in a browser."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from lakehouse.errors import AuthenticationError

if TYPE_CHECKING:
    from lakehouse.access import Access, Principal

COOKIE = "lakehouse_token"


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError(
                "the Authorization header must be 'Bearer <token>'",
                "create a token with `lakehouse token create --name NAME --role ROLE`",
            )
        return value.strip()
    return request.cookies.get(COOKIE)


async def principal(request: Request) -> Principal:
    """The caller (a FastAPI dependency); remembered on the request for the audit log.
    Tokens are checked against an in-memory copy, so this runs on the event loop."""
    access: Access = request.app.state.access
    who = access.authenticate(token_of(request))
    request.state.principal = who
    return who
