"""``lakehouse serve``: the API, its documentation and the web UI, from one or several
worker processes sharing one listening socket."""

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


def build_app(lh: Lakehouse, pipelines: Path | None, login_token: str) -> Any:
    """The application of one server process: the engine locked down, the login token
    known, the audit log open (closed when the app shuts down)."""
    from lakehouse.access import Access, AuditLog, Principal
    from lakehouse.api.app import Settings, create_app

    lh.engine.lock_down()
    access = Access(lh)
    access.add_session_token(login_token, Principal(LOGIN, "admin"))
    settings = Settings(
        pipelines=pipelines,
        query_timeout=_env_float("LAKEHOUSE_QUERY_TIMEOUT", 30.0),
        max_rows=int(_env_float("LAKEHOUSE_MAX_ROWS", 100_000)),
    )
    return create_app(lh, access, AuditLog(lh), settings)


def worker_app() -> Any:
    """The application of one worker process when the server runs several: everything it
    needs comes from the environment the server process set before starting them."""
    from lakehouse.warehouse import Lakehouse

    env = os.environ
    pipelines = env.get(_PIPELINES_ENV)
    return build_app(
        Lakehouse(env["LAKEHOUSE_WAREHOUSE"]),
        Path(pipelines) if pipelines else None,
        env[_LOGIN_ENV],
    )


_LOGIN_ENV = "LAKEHOUSE_SERVE_LOGIN_TOKEN"
_PIPELINES_ENV = "LAKEHOUSE_SERVE_PIPELINES"


def serve(
    lh: Lakehouse, host: str, port: int, pipelines: Path | None, out: Any, workers: int = 1
) -> None:
    import uvicorn

    if workers < 1:
        raise LakehouseError(f"--workers must be 1 or more, got {workers}")
    sock = bind(host, port)
    port = sock.getsockname()[1]
    token = "lh_" + secrets.token_urlsafe(24)
    options: dict[str, Any] = dict(
        log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    if workers == 1:
        server = uvicorn.Server(uvicorn.Config(build_app(lh, pipelines, token), **options))
    else:
        # Worker processes are started fresh (spawned), each with its own engine, caches
        # and audit buffer, and share the listening socket.
        from uvicorn.supervisors import Multiprocess

        os.environ.update({"LAKEHOUSE_WAREHOUSE": str(lh.root), _LOGIN_ENV: token})
        if pipelines is not None:
            os.environ[_PIPELINES_ENV] = str(pipelines.resolve())
        config = uvicorn.Config(
            "lakehouse.api.serve:worker_app", factory=True, workers=workers, **options
        )
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    print(f"Lakehouse {lh.root} at {base}/ ({workers} worker process(es))", file=out)
    print("Open this URL to log in as admin (valid while this server runs):", file=out)
    print(f"    {base}/?token={token}", file=out)
    print(f"API documentation: {base}/docs", file=out, flush=True)
    if not _loopback(host):
        print(f"warning: listening on {host}, reachable from other machines", file=out)
    try:
        if workers == 1:
            server.run(sockets=[sock])
        else:
            Multiprocess(config, sockets=[sock]).run()
    finally:
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
        workers: Annotated[
            int, typer.Option(help="Server processes (default: one per core, at most 4).")
        ] = min(4, os.cpu_count() or 1),
    ) -> None:
        """Serve the REST API, its documentation (/docs) and the web UI (/)."""
        folder = Path(pipelines) if pipelines else Path("pipelines")
        if pipelines and not folder.is_dir():
            raise LakehouseError(f"no pipelines folder {folder}", "give a folder of pipelines")
        serve(lh_factory(), host, port, folder if folder.is_dir() else None, sys.stdout, workers)
