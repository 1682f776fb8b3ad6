"""A local Kafka-protocol broker, so the real-time path runs with nothing else installed.

The broker is the Rust binary of the ``noida-db`` package (from pip), started by itself on
a loopback port: killing a Python wrapper around it would leave it running. Everything
else in the platform speaks to a bootstrap address with the standard Kafka client, so a
real Kafka cluster replaces this one by giving its address instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from lakehouse.errors import LakehouseError

HOW_TO_INSTALL = "install it with `pip install noida-db` (scripts/demo.sh does)"


def broker_binary() -> Path:
    try:
        import noida_db
    except ImportError as exc:
        raise LakehouseError("the local Kafka broker is not installed", HOW_TO_INSTALL) from exc
    path = Path(noida_db.__file__).parent / "noida-db"
    if not path.is_file():
        raise LakehouseError(f"the local broker's program is missing: {path}", HOW_TO_INSTALL)
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``process`` listens on ``host:port`` within ``timeout`` seconds (False as
    soon as it exits)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), 0.5).close()
            return True
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)


class LocalBroker:
    """A broker process on ``host:port`` keeping its data under ``data_dir`` (messages
    survive a restart). Use as a context manager, or ``start()`` and ``stop()``."""

    def __init__(self, data_dir: str | Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalBroker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "broker.log", "ab")  # noqa: SIM115 - the child owns it
        command = [str(broker_binary()), "start", "--only", "kafka", "--host", self.host]
        command += ["--kafka-port", str(self.port), "--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        if not wait_for_port(self.host, self.port, self.process, timeout):
            self.stop()
            tail = _tail(self.data_dir / "broker.log")
            raise LakehouseError(
                f"the local Kafka broker did not start on {self.bootstrap}: {tail}",
                "see broker.log in the data folder; is the port taken?",
            )
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalBroker:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(path: Path) -> str:
    try:
        lines = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if line.strip() and "GLIBC" not in line  # the binary's harmless libc notice
        ]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"
