"""``lakehouse serve``: one process for the API, its documentation and the web UI."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

LOGIN = "admin (login)"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise LakehouseError(f"{name}={raw!r} is not a number", f"e.g. {name}={default}") from exc
    if value <= 0:
        raise LakehouseError(f"{name} must be positive, got {raw}")
    return value


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, made here so a busy port gets a clear error and port 0 gets a
    free port the login URL can name."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LakehouseError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            "pass another --port (0 picks a free one)",
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(lh: Lakehouse, host: str, port: int, pipelines: Path | None, out: Any) -> None:
    import uvicorn

    from lakehouse.access import Access, AuditLog, Principal
    from lakehouse.api.app import Settings, create_app

    sock = bind(host, port)
    port = sock.getsockname()[1]
    lh.engine.lock_down()
    access = Access(lh)
    audit = AuditLog(lh)
    token = "lh_" + secrets.token_urlsafe(24)
    access.add_session_token(token, Principal(LOGIN, "admin"))
    settings = Settings(
        pipelines=pipelines,
        query_timeout=_env_float("LAKEHOUSE_QUERY_TIMEOUT", 30.0),
        max_rows=int(_env_float("LAKEHOUSE_MAX_ROWS", 100_000)),
    )
    app = create_app(lh, access, audit, settings)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    print(f"Lakehouse {lh.root} at {base}/", file=out)
    print("Open this URL to log in as admin (valid while this server runs):", file=out)
    print(f"    {base}/?token={token}", file=out)
    print(f"API documentation: {base}/docs", file=out, flush=True)
    if not _loopback(host):
        print(f"warning: listening on {host}, reachable from other machines", file=out)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    )
    try:
        server.run(sockets=[sock])
    finally:
        app.state.launches.stop()
        audit.close()
        sock.close()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def register(app: typer.Typer, lh_factory: Any) -> None:
    @app.command("serve")
    def serve_command(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8888,
        pipelines: Annotated[
            str | None,
            typer.Option(help="Folder of pipelines to list and run (default: ./pipelines)."),
        ] = None,
    ) -> None:
        """Serve the REST API, its documentation (/docs) and the web UI (/)."""
        folder = Path(pipelines) if pipelines else Path("pipelines")
        if pipelines and not folder.is_dir():
            raise LakehouseError(f"no pipelines folder {folder}", "give a folder of pipelines")
        serve(lh_factory(), host, port, folder if folder.is_dir() else None, sys.stdout)
