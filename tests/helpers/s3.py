"""A real S3-compatible server for tests: moto's server on a free loopback port, stopped at
the end even when the test fails; a client of it, and the options that reach it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from lakehouse import Lakehouse

KEY = SECRET = "test"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server(*, checks_keys: bool = False) -> Iterator[str]:
    """The endpoint (``http://127.0.0.1:PORT``) of a moto server running until the end;
    ``checks_keys``: one that refuses keys its IAM does not know (all of them)."""
    port = free_port()
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert server, "moto_server comes with the test dependencies"
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if checks_keys else None,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                assert proc.poll() is None, "moto_server exited"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name=REGION,
    )


def options(endpoint: str) -> dict[str, str]:
    """The object-store options of a warehouse (or landing folder) on the server."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": REGION,
        "AWS_ALLOW_HTTP": "true",
        "conditional_put": "etag",
    }


def s3_warehouse(endpoint: str, tmp_path: Path) -> Lakehouse:
    """A warehouse in a new bucket of the loopback S3 server, its catalog in tmp_path."""
    client(endpoint).create_bucket(Bucket="lake")
    return Lakehouse(
        "s3://lake/warehouse",
        storage_options=options(endpoint),
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
    )
