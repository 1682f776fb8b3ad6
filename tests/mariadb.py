"""Start a throwaway MariaDB server (Debian's) on a free loopback port for a test."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.postgres import _free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if not found:
        raise RuntimeError(
            f"MariaDB's {name} is not installed: run `apt-get install mariadb-server` "
            "(scripts/test.sh does this)"
        )
    return found


@contextmanager
def mariadb_server() -> Iterator[str]:
    """Yields the URL of a fresh database ``test`` (user root, no password); the server is
    stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="lh-maria-"))
    data = root / "data"
    port = _free_port()
    user: list[str] = []
    if os.geteuid() == 0:  # mariadbd runs as an unprivileged user
        account = pwd.getpwnam("mysql")
        os.chown(root, account.pw_uid, account.pw_gid)
        user = ["--user=mysql"]
    subprocess.run(
        [
            _bin("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        check=True,
        capture_output=True,
    )
    socket = root / "mariadb.sock"
    proc = subprocess.Popen(
        [
            _bin("mariadbd"),
            "--no-defaults",
            f"--datadir={data}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={socket}",
            f"--pid-file={root / 'mariadb.pid'}",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",  # a throwaway server
            *user,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import pymysql

        deadline = time.time() + 60
        while True:
            try:
                con = pymysql.connect(host="127.0.0.1", port=port, user="root")
                break
            except pymysql.err.OperationalError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("MariaDB did not start") from None
                time.sleep(0.2)
        with con.cursor() as cur:
            cur.execute("CREATE DATABASE test")
        con.close()
        yield f"mysql://root@127.0.0.1:{port}/test"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
