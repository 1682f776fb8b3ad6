"""Who is calling: a bearer token, or the cookie the login URL set in a browser. Wrong
tokens are counted per client address (``ratelimit``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from starlette.concurrency import run_in_threadpool

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


def presents_token(request: Request) -> bool:
    return bool(request.headers.get("authorization") or request.cookies.get(COOKIE))


async def authenticate(request: Request, token: str | None = None) -> Principal:
    """The principal of ``token`` (by default the request's); a wrong one is counted
    against the client's address, and past its limit answered 429 instead of 401."""
    access: Access = request.app.state.access
    try:
        who = access.authenticate(token if token is not None else token_of(request))
    except AuthenticationError:
        if token is not None or presents_token(request):
            client = request.client.host if request.client else "unknown"
            await run_in_threadpool(request.app.state.failures.failed, client)
        raise
    request.state.principal = who
    return who


async def principal(request: Request) -> Principal:
    """The caller (a FastAPI dependency); remembered on the request for the audit log.
    Tokens are checked against an in-memory copy, so this runs on the event loop."""
    return await authenticate(request)
