"""ASGI middleware that every request passes: JSON bodies nested too deeply are refused
before a parser sees them, and every answer carries the browser security headers."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from lakehouse import nesting
from lakehouse.api.responses import JSON, error_body

INDEX = Path(__file__).resolve().parent.parent / "web" / "static" / "index.html"


def import_map_hash(index: Path = INDEX) -> str:
    """The CSP source of the page's inline import map (which names the editor's modules
    under /vendor): its SHA-256, so that no other inline script runs."""
    try:
        html = index.read_text(encoding="utf-8")
    except OSError:
        return ""
    found = re.search(r'<script type="importmap">(.*?)</script>', html, re.DOTALL)
    if found is None:
        return ""
    digest = hashlib.sha256(found.group(1).encode()).digest()
    return f" 'sha256-{base64.b64encode(digest).decode()}'"


# What the web UI needs: its own scripts (and its import map), styles and images, calls to
# its own server; inline style attributes too (its charts' tooltips and graph labels are
# built with them, the editor styles itself).
CSP = (
    f"default-src 'self'; script-src 'self'{import_map_hash()}; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
# The interactive API documentation loads its page's script, styles and fonts from CDNs.
DOCS = ("/docs", "/redoc")
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: "
    "https://fastapi.tiangolo.com https://cdn.redoc.ly; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# Bodies read as JSON lines, line by line, with their own depth check.
OWN_READING = ("/ingest/",)


class SecurityHeaders:
    """Content-Security-Policy, no framing, no referrer, no type sniffing, on every answer
    (HSTS too when served over HTTPS)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(SECURITY_HEADERS)
        if scope["path"].startswith(DOCS):
            headers[0] = (b"content-security-policy", DOCS_CSP.encode())
        if scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", b"max-age=31536000"))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, sending)


class JSONDepthLimit:
    """A JSON request body nested deeper than ``nesting.MAX_DEPTH`` levels is answered
    with 400 before any parser reads it (parsers recurse once per level). The body is
    read here and handed on unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or scope["path"].startswith(OWN_READING)
            or not _json_body(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        depth = nesting.document_depth(body) if body else 0
        if depth > nesting.MAX_DEPTH:
            message_text = nesting.too_deep_message(depth, "the request body")
            scope.setdefault("state", {})["detail"] = message_text
            answer = JSON(
                error_body(400, message_text, "send a flatter JSON body, as /docs describes"),
                400,
            )
            await answer(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _json_body(scope: Scope) -> bool:
    """Whether FastAPI would read the body as JSON: no Content-Type, or a JSON type."""
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            media: bytes = value.split(b";")[0].strip().lower()
            return media.endswith((b"/json", b"+json"))
    return True
