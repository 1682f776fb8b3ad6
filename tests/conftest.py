from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse import Lakehouse


@pytest.fixture
def lh(tmp_path) -> Lakehouse:
    return Lakehouse(tmp_path / "warehouse")


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto) on a free loopback port, for this test only."""
    from tests.helpers.s3 import moto_server

    with moto_server() as endpoint:
        yield endpoint


def _built_demo(tmp_path_factory, folder: str, *options: str) -> Path:
    """A warehouse made by `lakehouse demo` with ``options``, in a new folder."""
    warehouse = tmp_path_factory.mktemp(folder) / "warehouse"
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), "demo", *options],
        cwd=Path(__file__).resolve().parents[1],
        env={k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return warehouse


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> Path:
    """A warehouse built by `lakehouse demo`, once per test session; tests that use it add
    only what they need (tokens, grants) and change no table."""
    return _built_demo(tmp_path_factory, "demo-session")


@pytest.fixture(scope="session")
def iceberg_demo_warehouse(tmp_path_factory) -> Path:
    """The same demo built on Iceberg (`lakehouse demo --format iceberg`), once per test
    session; tests that use it change no table."""
    return _built_demo(tmp_path_factory, "demo-iceberg", "--format", "iceberg")


@pytest.fixture(params=["delta", "iceberg"])
def table_format(request) -> str:
    """Each table format the platform writes: tests of the table API run once per format."""
    return str(request.param)


@pytest.fixture
def lh_formats(tmp_path, table_format) -> Lakehouse:
    """A warehouse whose new tables are in ``table_format``."""
    from lakehouse.settings.model import Settings

    return Lakehouse(tmp_path / "warehouse", settings=Settings(format=table_format))
