"""Every API call goes to the audit log: who, what, on what, outcome, status, duration."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from lakehouse.access import AuditLog

# Assets of the web UI are not API calls.
UNRECORDED = ("/static/", "/vendor/", "/favicon")


class AuditMiddleware:
    """Plain ASGI (no per-request task or body copy): it sees the response status and the
    principal and target the endpoint left in the request state."""

    def __init__(self, app: Any, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNRECORDED):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state = scope.get("state") or {}
            who = state.get("principal")
            route = scope.get("route")
            action = f"{scope['method']} {getattr(route, 'path', scope['path'])}"
            outcome = (
                "denied"
                if state.get("denied")  # a hidden table: answered 404, or inside a panel
                else "ok"
                if status < 400
                else "unauthenticated"
                if status == 401
                else "denied"
                if status == 403
                else "throttled"
                if status == 429
                else "error"
            )
            client = scope.get("client")
            self.audit.record(
                principal=who.name if who is not None else None,
                role=who.role if who is not None else None,
                action=action,
                target=state.get("target") or scope["path"],
                outcome=outcome,
                status=status,
                duration_ms=(time.perf_counter() - started) * 1000,
                detail=state.get("detail"),
                client=client[0] if client else None,
            )
