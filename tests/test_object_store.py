"""A warehouse on S3-compatible object storage, served by a real moto server on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from lakehouse import Lakehouse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint():
    port = free_port()
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert server, "moto_server comes with the test dependencies"
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.kill()
        proc.wait()


def s3_warehouse(endpoint: str, tmp_path) -> Lakehouse:
    """A warehouse in a new bucket of the loopback S3 server, its catalog in tmp_path."""
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket="lake")
    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "conditional_put": "etag",
    }
    return Lakehouse(
        "s3://lake/warehouse",
        storage_options=options,
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
    )


def test_warehouse_on_object_storage(s3_endpoint, tmp_path):
    lh = s3_warehouse(s3_endpoint, tmp_path)
    lh.write("silver.users", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    lh.write("silver.users", [{"id": 3, "name": "c"}])
    lh.write("silver.users", [{"id": 2, "name": "B"}], mode="merge", keys=["id"])
    lh.write("gold.t", [{"id": 1, "score": 5}], partition_by=["id"])
    assert lh.sql("SELECT id, name FROM silver.users ORDER BY id").rows() == [
        (1, "a"),
        (2, "B"),
        (3, "c"),
    ]
    assert lh.sql("SELECT count(*) FROM silver.users VERSION AS OF 1").scalar() == 2
    joined = lh.sql("SELECT u.name, g.score FROM silver.users u JOIN gold.t g USING (id)")
    assert joined.rows() == [("a", 5)]
    info = lh.table("silver.users").info
    assert info.location == "s3://lake/warehouse/silver/users"
    assert info.row_count == 3 and info.version == 3
    lh.table("silver.users").restore(1)
    assert lh.sql("SELECT count(*) FROM silver.users").scalar() == 2
