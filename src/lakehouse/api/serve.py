"""``lakehouse serve``: the API, its documentation and the web UI, from one or several
worker processes sharing one listening socket."""

from __future__ import annotations

import gc
import ipaddress
import os
import secrets
import shutil
import socket
import sys
import tempfile
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


def build_app(
    lh: Lakehouse, pipelines: Path | None, login_token: str, dashboards: Path | None = None
) -> Any:
    """The application of one server process: the engine locked down, the login token
    known, the audit log open (closed when the app shuts down)."""
    from lakehouse.access import Access, AuditLog, Principal
    from lakehouse.api.app import Settings, create_app

    lh.engine.lock_down()
    access = Access(lh)
    access.add_session_token(login_token, Principal(LOGIN, "admin"))
    server = lh.settings.server  # the settings (lakehouse.yaml); the variables win
    settings = Settings(
        pipelines=pipelines,
        dashboards=dashboards,
        query_timeout=_env_float("LAKEHOUSE_QUERY_TIMEOUT", server.query_timeout),
        max_rows=int(_env_float("LAKEHOUSE_MAX_ROWS", server.max_rows)),
    )
    return create_app(lh, access, AuditLog(lh), settings)


def worker_app() -> Any:
    """The application of one worker process when the server runs several: everything it
    needs comes from the environment the server process set before starting them, but the
    login token, which it reads from a file only the server's user may read (a process's
    environment is readable in /proc by anyone who may read its command line)."""
    from lakehouse.ops.logs import configure_from
    from lakehouse.warehouse import Lakehouse

    env = os.environ
    pipelines = env.get(_PIPELINES_ENV)
    dashboards = env.get(_DASHBOARDS_ENV)
    lh = Lakehouse.from_settings(warehouse=env["LAKEHOUSE_WAREHOUSE"])
    configure_from(lh.settings)
    app = build_app(
        lh,
        Path(pipelines) if pipelines else None,
        Path(env[_LOGIN_FILE_ENV]).read_text().strip(),
        Path(dashboards) if dashboards else None,
    )
    steady_collector()
    return app


def default_workers() -> int:
    """One worker process per core but one, at most 4 (and at least 1): the server's main
    process keeps a core's share for the serving store's queries and refreshes and the
    scheduler. On 2 cores, 50 dashboard readers were answered with a p99 of 190 ms by one
    worker and 270-470 ms by two (the kernel hands the kept connections to the workers
    unevenly: 37 and 13 of 50 in one run); see docs/BENCHMARKS.md."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def steady_collector() -> None:
    """The cycle collector of a server process, set for answering: what the process made
    to start (the app, its libraries' modules and tables) is moved out of the collector's
    sight, and it runs every 50,000 new objects rather than 700. Without it a full
    collection walked the whole heap every few seconds under load and held a worker for
    90-400 ms (the tail of the dashboard benchmark)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])


_LOGIN_FILE_ENV = "LAKEHOUSE_SERVE_LOGIN_TOKEN_FILE"
_PIPELINES_ENV = "LAKEHOUSE_SERVE_PIPELINES"
_DASHBOARDS_ENV = "LAKEHOUSE_SERVE_DASHBOARDS"


def _token_file(token: str) -> Path:
    """A file holding ``token``, readable by the owner only, in a folder of its own."""
    folder = Path(tempfile.mkdtemp(prefix="lakehouse-serve-"))  # mode 0700
    path = folder / "login-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    return path


def tls_options(cert: str | None, key: str | None) -> dict[str, str]:
    """uvicorn's options to serve HTTPS with a certificate and its private key (PEM)."""
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise LakehouseError(
            "--tls-cert and --tls-key go together", "give the certificate and its private key"
        )
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise LakehouseError(f"{flag} {path}: no such file", "give a PEM file")
    import ssl

    try:  # read here, so a bad pair gets a clear error rather than a worker's traceback
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise LakehouseError(
            f"cannot use the certificate {cert} with the key {key}: {exc}",
            "give a PEM certificate and the private key it was made for (unencrypted)",
        ) from exc
    return {"ssl_certfile": str(Path(cert).resolve()), "ssl_keyfile": str(Path(key).resolve())}


def serve(
    lh: Lakehouse,
    host: str,
    port: int,
    pipelines: Path | None,
    out: Any,
    workers: int = 1,
    tls: dict[str, str] | None = None,
    proxies: str | None = None,
    dashboards: Path | None = None,
) -> None:
    """``proxies``: the addresses of reverse proxies whose ``X-Forwarded-For`` names the
    client (for the audit log and the limit on wrong tokens); by default a forwarded
    address is believed from nobody, so a client cannot pick the address it is counted
    under."""
    import uvicorn

    if workers < 1:
        raise LakehouseError(f"--workers must be 1 or more, got {workers}")
    sock = bind(host, port)
    port = sock.getsockname()[1]
    fixed = lh.settings.auth.admin_token
    token = fixed.get_secret_value() if fixed else "lh_" + secrets.token_urlsafe(24)
    options: dict[str, Any] = dict(
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or "",
        **(tls or {}),
    )
    token_file = None
    metrics_folder = _metrics_folder(lh)
    if workers == 1:
        app = build_app(lh, pipelines, token, dashboards)
        steady_collector()
        server = uvicorn.Server(uvicorn.Config(app, **options))
    else:
        # Worker processes are started fresh (spawned), each with its own engine, caches
        # and audit buffer, and share the listening socket.
        from uvicorn.supervisors import Multiprocess

        token_file = _token_file(token)
        os.environ.update({"LAKEHOUSE_WAREHOUSE": str(lh.root), _LOGIN_FILE_ENV: str(token_file)})
        if pipelines is not None:
            os.environ[_PIPELINES_ENV] = str(pipelines.resolve())
        if dashboards is not None:
            os.environ[_DASHBOARDS_ENV] = str(dashboards.resolve())
        config = uvicorn.Config(
            "lakehouse.api.serve:worker_app", factory=True, workers=workers, **options
        )
    shown = f"[{host}]" if ":" in host else host
    base = f"{'https' if tls else 'http'}://{shown}:{port}"
    print(f"Lakehouse {lh.root} at {base}/ ({workers} worker process(es))", file=out)
    print("Open this URL to log in as admin (valid while this server runs):", file=out)
    print(f"    {base}/?token={token}", file=out)
    print(f"API documentation: {base}/docs", file=out, flush=True)
    if not _loopback(host):
        print(f"warning: listening on {host}, reachable from other machines", file=out)
        if not tls:
            print(
                "warning: without --tls-cert/--tls-key, tokens cross the network unencrypted",
                file=out,
            )
    # This process owns the serving store while it runs: it pulls new versions of the
    # mirrored tables and answers the workers' serving queries (see serving/owner.py).
    lh.serving.own()
    # It runs the schedules too (when the settings say so): one scheduler however many
    # workers, and one among several servers through the lease in the catalog.
    scheduler = _scheduler(lh, out)
    if workers > 1:
        steady_collector()  # this process answers the workers' serving queries
    try:
        if workers == 1:
            server.run(sockets=[sock])
        else:
            Multiprocess(config, sockets=[sock]).run()
    finally:
        if scheduler is not None:
            scheduler.stop()
        lh.serving.close()
        sock.close()
        if token_file is not None:
            shutil.rmtree(token_file.parent, ignore_errors=True)
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)


def _metrics_folder(lh: Lakehouse) -> Path | None:
    """The folder every server process writes its metric counts to (multiprocess mode),
    empty, named in the environment before any worker starts."""
    if not lh.settings.metrics.enabled:
        return None
    # Set before prometheus_client is imported: it chooses its mode at import.
    folder = Path(tempfile.mkdtemp(prefix="lakehouse-metrics-"))  # new, empty, mode 0700
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def _scheduler(lh: Lakehouse, out: Any) -> Any:
    """The scheduler, started in a thread of this process, if the settings want one."""
    if not lh.settings.server.scheduler:
        return None
    from lakehouse.ops.scheduler import Scheduler

    if not lh.local:
        print("the scheduler is off: it runs on a local warehouse only", file=out)
        return None
    scheduler = Scheduler(lh, say=lambda line: print(line, file=out, flush=True))
    print(f"Scheduler: {len(scheduler.jobs)} job(s) (lakehouse schedule list)", file=out)
    scheduler.start()
    return scheduler


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def register(app: typer.Typer, lh_factory: Any) -> None:
    @app.command("serve")
    def serve_command(
        host: Annotated[
            str | None, typer.Option(help="Address to listen on (default: server.host).")
        ] = None,
        port: Annotated[
            int | None, typer.Option(help="Port; 0 picks a free one (default: server.port).")
        ] = None,
        pipelines: Annotated[
            str | None,
            typer.Option(
                help="Folder of pipelines to list and run (default: server.pipelines, ./pipelines)."
            ),
        ] = None,
        dashboards: Annotated[
            str | None,
            typer.Option(
                help="Folder of dashboard files to serve (default: server.dashboards, "
                "./dashboards).",
            ),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(
                help="Server processes (default: server.workers, else one per core but one, "
                "1 to 4)."
            ),
        ] = None,
        tls_cert: Annotated[
            str | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")
        ] = None,
        tls_key: Annotated[
            str | None, typer.Option(help="The certificate's private key (PEM).")
        ] = None,
        forwarded_allow_ips: Annotated[
            str | None,
            typer.Option(
                help="Reverse proxies (comma-separated addresses) whose X-Forwarded-For "
                "names the client; by default none is believed."
            ),
        ] = None,
    ) -> None:
        """Serve the REST API, its documentation (/docs) and the web UI (/). Every option
        not given comes from the settings (lakehouse.yaml's ``server`` section)."""
        lh = lh_factory()
        given = lh.settings.server
        folder = Path(pipelines or given.pipelines)
        if pipelines and not folder.is_dir():
            raise LakehouseError(f"no pipelines folder {folder}", "give a folder of pipelines")
        boards = Path(dashboards or given.dashboards)
        if dashboards and not boards.is_dir():
            raise LakehouseError(
                f"no dashboards folder {boards}", "give a folder of dashboard files (.yaml)"
            )
        tls = tls_options(tls_cert or given.tls_cert, tls_key or given.tls_key)
        serve(
            lh,
            host or given.host,
            given.port if port is None else port,
            folder if folder.is_dir() else None,
            sys.stdout,
            workers or given.workers or default_workers(),
            tls,
            forwarded_allow_ips or given.forwarded_allow_ips,
            boards.resolve() if boards.is_dir() else None,
        )
