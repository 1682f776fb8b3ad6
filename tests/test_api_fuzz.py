"""Fuzz every operation of the API's own OpenAPI document against a real server with
schemathesis (its command line, as a user would run it): whatever it sends, the server
must never answer with a server error, and never print a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from tests.helpers.server import start_server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fuzz")
    lh = Lakehouse(root / "warehouse")
    lh.write(
        "silver.users",
        pa.table({"user_id": [1, 2], "email": ["a@example.com", None]}),
        column_tags={"email": ["pii"]},
    )
    lh.write("gold.totals", pa.table({"day": ["2026-11-01"], "users": [2]}))
    pipelines = root / "pipelines" / "empty"
    pipelines.mkdir(parents=True)
    (pipelines / "pipeline.yml").write_text("name: empty\n")
    server = start_server(
        root / "warehouse", pipelines=pipelines.parent, env={"LAKEHOUSE_QUERY_TIMEOUT": "2"}
    )
    try:
        yield server
    finally:
        server.stop()


def test_no_server_errors(fuzzed_server, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{fuzzed_server.base}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {fuzzed_server.login_token}",
            "--max-examples",
            "40",
            "--seed",
            "7",
            "--generation-deterministic",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "No issues found" in report or "passed" in report.lower(), report
    assert not any("Traceback" in line for line in fuzzed_server.output), "".join(
        fuzzed_server.output
    )
