"""Start a throwaway PostgreSQL server (Debian's) on a free loopback port for a test."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: run `apt-get install postgresql` "
            "(scripts/test.sh does this)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server(*, wal_level: str = "logical") -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh database; the server is stopped afterwards.

    The server writes logical WAL by default (change data capture reads it through
    replication slots); ``wal_level="replica"`` starts one that cannot decode it."""
    root = Path(tempfile.mkdtemp(prefix="lh-pg-"))
    data = root / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, _bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N"],
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [
            *as_user,
            _bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(root),
            "-c",
            f"wal_level={wal_level}",
            "-c",
            "max_replication_slots=10",
            "-c",
            "max_wal_senders=10",
            "-c",
            "fsync=off",  # a throwaway server: its files need not survive a power cut
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while True:
            ready = subprocess.run(
                [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            )
            if ready.returncode == 0:
                break
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.2)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        # A fast shutdown: sessions still open are ended rather than waited for.
        subprocess.run(
            [*as_user, _bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "20", "stop"],
            capture_output=True,
        )
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _kill_postmaster(data)  # proc may be runuser, which would leave the server behind
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _kill_postmaster(data: Path) -> None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass  # no server left to stop
