"""The FastAPI application: routers, error handling, audit, the web UI's files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lakehouse.access.policy import ACTIONS
from lakehouse.api import (
    dashboards,
    ingest,
    maintenance,
    metrics,
    pipelines,
    query,
    schedules,
    serving,
    tables,
    workbench,
)
from lakehouse.api import health as health_api
from lakehouse.api.audit import AuditMiddleware
from lakehouse.api.auth import COOKIE, authenticate, presents_token, principal
from lakehouse.api.guards import JSONDepthLimit, SecurityHeaders
from lakehouse.api.ratelimit import FailedAuthentications, TooManyFailures, from_environment
from lakehouse.api.responses import JSON, error_body, status_of
from lakehouse.errors import AuthenticationError, LakehouseError
from lakehouse.service.launcher import Launches

if TYPE_CHECKING:
    from lakehouse.access import Access, AuditLog, Principal
    from lakehouse.warehouse import Lakehouse

log = logging.getLogger("lakehouse.api")
WEB = Path(__file__).resolve().parent.parent / "web"


@dataclass
class Settings:
    pipelines: Path | None = None
    dashboards: Path | None = None  # the folder of dashboard files
    query_timeout: float = 30.0
    max_rows: int = 100_000


def create_app(
    lh: Lakehouse,
    access: Access,
    audit: AuditLog,
    settings: Settings | None = None,
    failures: FailedAuthentications | None = None,
) -> FastAPI:
    """The application; ``failures`` counts wrong tokens per client address (by default
    as the environment says, in a file every server process of the warehouse shares)."""
    from lakehouse import __version__

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.launches.stop()
        audit.close()  # what is buffered goes to system.audit_log

    app = FastAPI(
        lifespan=lifespan,
        title="Lakehouse",
        version=__version__,
        description="Tables, SQL, lineage, pipelines and quality of a Lakehouse warehouse. "
        "Send `Authorization: Bearer <token>` (lakehouse token create).",
        default_response_class=JSON,
    )
    app.state.lh = lh
    app.state.access = access
    app.state.audit = audit
    app.state.settings = settings or Settings()
    app.state.launches = Launches(lh.root if lh.local else None)
    app.state.failures = failures or from_environment(lh)
    _errors(app)
    _routes(app)
    # The last added runs first: every call is audited, whatever the inner ones answer.
    app.add_middleware(JSONDepthLimit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AuditMiddleware, audit=audit)
    if lh.settings.metrics.enabled:  # outermost: the latency of everything inside
        from lakehouse.ops.process_metrics import RequestTimer, watch_writes

        watch_writes()
        app.add_middleware(RequestTimer)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(LakehouseError)
    async def lakehouse_error(request: Request, exc: LakehouseError) -> JSON:
        status = status_of(exc)
        request.state.detail = exc.message[:2000]
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, TooManyFailures):
            status, headers = 429, {"Retry-After": str(exc.retry_after)}
        return JSON(error_body(status, exc.message, exc.hint), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSON:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        message = "invalid request: " + "; ".join(problems)
        request.state.detail = message[:2000]
        return JSON(error_body(422, message, "see /docs for the expected request"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        message = str(exc.detail) if exc.detail else "error"
        hint = "see /docs for the endpoints" if exc.status_code in (404, 405) else None
        return JSON(error_body(exc.status_code, message, hint), exc.status_code)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSON:
        # The checks on depth come first; this answers what nests deeply elsewhere.
        log.warning("recursion limit on %s %s", request.method, request.url.path)
        message = "the request nests too deeply to be processed"
        request.state.detail = message
        return JSON(error_body(400, message, "send a flatter request"), 400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSON:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        request.state.detail = f"{type(exc).__name__}: {exc}"[:2000]
        return JSON(
            error_body(500, "internal error: the server logged it", "try again or report it"),
            500,
        )


def _routes(app: FastAPI) -> None:
    app.include_router(tables.router)
    app.include_router(workbench.router)
    app.include_router(query.router)
    app.include_router(pipelines.router)
    app.include_router(ingest.router)
    app.include_router(serving.router)
    app.include_router(dashboards.router)
    app.include_router(schedules.router)
    app.include_router(maintenance.router)
    app.include_router(health_api.router)
    app.include_router(metrics.router)

    @app.get("/health", tags=["health"])
    async def health(request: Request) -> Any:
        """Liveness and a few figures; no token needed. The warehouse's location only
        for a caller with a token."""
        from lakehouse import __version__

        lh = request.app.state.lh
        known = presents_token(request) and await authenticate(request) is not None
        tables = await run_in_threadpool(lambda: len(lh.catalog.names()))
        body: dict[str, Any] = {"status": "ok", "version": __version__, "tables": tables}
        if known:  # the serving store's state: ok, or degraded and why
            body["serving"] = await run_in_threadpool(lh.serving.health)
        return JSON({**body, "warehouse": str(lh.root)} if known else body)

    @app.get("/me", tags=["health"])
    def me(request: Request, who: Principal = Depends(principal)) -> Any:  # noqa: B008
        """The caller and what it may do."""
        access = request.app.state.access
        actions = tuple(ACTIONS)
        return JSON(
            {"name": who.name, "role": who.role, "can": {a: access.can(who, a) for a in actions}}
        )

    @app.get("/", include_in_schema=False)
    async def index(request: Request, token: str | None = None) -> Any:
        """The web UI. ``?token=`` (the login URL) logs the browser in with a cookie
        (sent back only over HTTPS when the server is reached over HTTPS)."""
        if token is not None:
            try:
                await authenticate(request, token)
            except AuthenticationError:
                return RedirectResponse("/?login=failed", status_code=303)
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                COOKIE,
                token,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response
        return FileResponse(WEB / "static" / "index.html")

    static = WEB / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    vendor = WEB / "node_modules"
    if vendor.is_dir():
        app.mount("/vendor", StaticFiles(directory=vendor), name="vendor")
