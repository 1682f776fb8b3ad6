"""Who owns the serving store.

Embedded ClickHouse (chDB) lets one process open a data folder. The owner is the process
holding an exclusive lock on ``owner.lock`` in the serving folder: ``lakehouse serve``'s
main process for as long as it runs, or a command (``lakehouse serving refresh``, a
notebook's ``lh.serving.sql``) for one call when no server runs. The owner keeps the
store open, refreshes the mirrors (the server's owner pulls new table versions itself,
so writers never touch the store), and answers the other processes (the server's
workers, commands) on a loopback HTTP endpoint named, with a secret, in ``owner.json``
(readable by the warehouse's user only). The lock dies with its process, so a killed
owner never blocks the next one."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from lakehouse.errors import LakehouseError
from lakehouse.serving.store import ServingError

LOCK = "owner.lock"
ADDRESS = "owner.json"
IDLE_SECONDS = 120.0  # a kept connection the owner closes after this long unused


class _Server(ThreadingHTTPServer):
    # The standard library listens with a backlog of 5: with a worker's forty threads
    # asking at once the kernel drops connections, and each drop costs the asker a second
    # (the SYN retried). Kept connections make new ones rare; the backlog covers a burst.
    request_queue_size = 1024
    daemon_threads = True


class Lock:
    """The owner lock of a serving folder (not held until ``take`` succeeds)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def take(self) -> bool:
        if self._fd is not None:
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            (self.folder / ADDRESS).unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


class Endpoint:
    """The owner's answers to other processes: ``POST /query`` (Arrow IPC stream back)
    and ``POST /refresh`` (JSON back), on 127.0.0.1 with a bearer secret."""

    def __init__(
        self,
        folder: Path,
        query: Callable[[str, dict[str, Any], bool], pa.Table],
        refresh: Callable[[str | None], list[dict[str, Any]]],
    ) -> None:
        secret = secrets.token_urlsafe(24)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the asker keeps its connection
            timeout = IDLE_SECONDS
            # On a kept connection Nagle's algorithm holds a small answer until the asker
            # acknowledges the last one, which it delays: 40 ms an answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)  # read whole, so the connection stays usable
                if self.headers.get("Authorization") != f"Bearer {secret}":
                    self._answer(403, b'{"message": "not the owner\'s secret"}', "json")
                    return
                try:
                    body = json.loads(data or b"{}")
                    if self.path == "/query":
                        sql, params = str(body["sql"]), dict(body.get("params") or {})
                        table = query(sql, params, bool(body.get("fresh")))
                        sink = pa.BufferOutputStream()
                        with ipc.new_stream(sink, table.schema) as writer:
                            writer.write_table(table)
                        self._answer(200, sink.getvalue().to_pybytes(), "arrow")
                    elif self.path == "/refresh":
                        done = refresh(body.get("table"))
                        self._answer(200, json.dumps(done).encode(), "json")
                    else:
                        self._answer(404, b'{"message": "no such call"}', "json")
                except LakehouseError as exc:
                    problem = {"message": exc.message, "hint": exc.hint}
                    self._answer(400, json.dumps(problem).encode(), "json")
                except Exception as exc:  # noqa: BLE001 - said to the caller, not lost
                    problem = {"message": f"{type(exc).__name__}: {exc}", "hint": None}
                    self._answer(500, json.dumps(problem).encode(), "json")

            def _answer(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                media = "application/json" if kind == "json" else "application/octet-stream"
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="serving-endpoint", daemon=True
        )
        self.thread.start()
        self.port = int(self.server.server_address[1])
        address = {"pid": os.getpid(), "port": self.port, "secret": secret}
        temporary = folder / f".{ADDRESS}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(address, out)
        os.replace(temporary, folder / ADDRESS)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OwnerGone(ServingError):
    """The owner named in the serving folder does not answer (it stopped or is stopping)."""


class OwnerClient:
    """Another process's way to the owner's store: one kept connection a thread, made
    again (to the owner named now) when the owner closed it or another took over."""

    def __init__(self, folder: Path, timeout: float = 60.0, starting: float = 10.0) -> None:
        self.folder = folder
        self.timeout = timeout
        self.starting = starting
        self._address: tuple[str, int, str] | None = None  # (pid, port, secret) as read
        self._local = threading.local()
        self.answered = False  # whether the owner answered the last call

    def _read_address(self, wait: bool) -> tuple[str, int, str]:
        """The owner's pid, port and secret. An owner writes them just after taking the
        lock: ``wait`` a little for them (when the lock was just found taken)."""
        deadline = time.monotonic() + (self.starting if wait else 0.0)
        while True:
            try:
                address = json.loads((self.folder / ADDRESS).read_text())
                return str(address["pid"]), int(address["port"]), str(address["secret"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                if time.monotonic() >= deadline:
                    if not wait:
                        raise OwnerGone(
                            "the process holding the serving store stopped",
                            "try again: the next call opens the store or asks its new owner",
                        ) from exc
                    raise ServingError(
                        "the serving store is held by another process that does not answer",
                        "try again in a moment; `lakehouse serving status` shows its state",
                    ) from exc
                time.sleep(0.02)

    def _connection(self, reread: bool) -> tuple[http.client.HTTPConnection, str, bool]:
        """This thread's connection, its secret, and whether it was used before
        (``reread``: the owner's address read again, without waiting for it)."""
        if reread or self._address is None:
            self._address = self._read_address(wait=not reread)
        _, port, secret = self._address
        kept: tuple[tuple[str, int, str], http.client.HTTPConnection] | None = getattr(
            self._local, "kept", None
        )
        if kept is not None and kept[0] == self._address:
            return kept[1], secret, True
        if kept is not None:
            kept[1].close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
        self._local.kept = (self._address, connection)
        return connection, secret, False

    def _drop(self) -> None:
        kept = getattr(self._local, "kept", None)
        if kept is not None:
            kept[1].close()
            self._local.kept = None

    def _post(self, path: str, body: dict[str, Any]) -> bytes:
        payload = json.dumps(body, default=str).encode()
        for attempt in (1, 2):
            try:
                connection, secret, _ = self._connection(reread=attempt == 2)
            except OwnerGone:
                self.answered = False
                raise
            headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            try:
                connection.request("POST", path, body=payload, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                # A kept connection the owner closed, or an owner that went away and
                # another that took over: once more, on a new connection to whoever owns
                # it now. Both calls are safe to repeat (a query; a refresh to a version).
                if attempt == 1 and not isinstance(exc, TimeoutError):
                    continue
                self.answered = False
                raise OwnerGone(
                    f"the process holding the serving store does not answer: {exc}",
                    "it may have stopped; try again (a new owner takes over)",
                ) from exc
            self.answered = True
            if answer.status >= 400:
                try:
                    problem = json.loads(data)
                except ValueError:
                    problem = {"message": f"HTTP {answer.status}", "hint": None}
                raise ServingError(
                    problem.get("message", f"HTTP {answer.status}"), problem.get("hint")
                )
            return data
        raise AssertionError("unreachable")

    def query(
        self, sql: str, params: dict[str, Any] | None = None, fresh: bool = False
    ) -> pa.Table:
        data = self._post("/query", {"sql": sql, "params": params or {}, "fresh": fresh})
        return ipc.open_stream(pa.BufferReader(data)).read_all()

    def refresh(self, table: str | None) -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = json.loads(self._post("/refresh", {"table": table}))
        return done
