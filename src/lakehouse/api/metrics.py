"""``GET /metrics``: the warehouse's figures and every server process's counts in
Prometheus' text format (``ops/metrics.py``, ``ops/process_metrics.py``).

Prometheus scrapes without a user's token, and table names may be sensitive: with
``metrics.token`` set the caller sends it as a bearer token; without it only callers on the
loopback interface are answered. ``metrics.enabled: false`` turns it off (404)."""

from __future__ import annotations

import hmac
import ipaddress
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from lakehouse.api.responses import NotFound
from lakehouse.errors import AccessDeniedError, AuthenticationError

router = APIRouter(tags=["health"])
_lock = threading.Lock()


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed(request: Request) -> None:
    settings = request.app.state.lh.settings.metrics
    if not settings.enabled:
        raise NotFound("metrics are turned off (metrics.enabled: false)")
    if settings.token is not None:
        given = request.headers.get("authorization", "")
        expected = "Bearer " + settings.token.get_secret_value()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationError(
                "GET /metrics needs the metrics token", "send Authorization: Bearer <metrics.token>"
            )
        return
    if not _loopback(request.client.host if request.client else None):
        raise AccessDeniedError(
            "GET /metrics answers callers on this machine only",
            "set metrics.token and send it as a bearer token to scrape from elsewhere",
        )


def _render(app: Any) -> tuple[bytes, str]:
    from lakehouse.ops.metrics import WarehouseCollector
    from lakehouse.ops.process_metrics import registry, render

    with _lock:  # one computation at a time per process; the collector keeps its caches
        collector = getattr(app.state, "metrics_collector", None)
        if collector is None:
            collector = app.state.metrics_collector = WarehouseCollector(app.state.lh)
        return render(registry(collector))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus' text format; see docs/OPERATIONS.md for the names."""
    _allowed(request)
    body, content_type = await run_in_threadpool(_render, request.app)
    return Response(body, media_type=content_type)
