"""A real ``lakehouse serve`` process for tests: started on a free loopback port, its login
URL read from its output, stopped (and killed if need be) at the end."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str  # http://127.0.0.1:PORT (https:// when served over TLS)
    login_token: str
    output: list[str] = field(default_factory=list)
    verify: ssl.SSLContext | bool = True  # what an HTTPS client trusts

    @property
    def login_url(self) -> str:
        return f"{self.base}/?token={self.login_token}"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60, verify=self.verify)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    warehouse: Path,
    *,
    pipelines: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    args: list[str] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> Server:
    command = [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), "serve"]
    command += ["--port", "0", *(args or [])]
    if pipelines is not None:
        command += ["--pipelines", str(pipelines)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    full_env.update({"NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=cwd or warehouse.parent,
    )
    assert proc.stdout is not None
    output: list[str] = []
    found: list[re.Match[str]] = []
    ready = threading.Event()

    def read() -> None:  # keeps draining the pipe so the server never blocks on it
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            match = re.search(r"(https?://[^/\s]+)/\?token=(\S+)", line)
            if match and not found:
                found.append(match)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(60)
    if not found:
        proc.kill()
        proc.wait()
        raise AssertionError("the server did not start:\n" + "".join(output))
    server = Server(proc, found[0].group(1), found[0].group(2), output, verify)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"{server.base}/health", timeout=2, verify=verify).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError("the server did not answer /health:\n" + "".join(output))
