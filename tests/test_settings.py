"""The settings: lakehouse.yaml, profiles, LAKEHOUSE_* variables, secrets, errors with
their key path and line, and the `lakehouse config` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.settings import SettingsError, load_settings
from lakehouse.settings.commands import template
from lakehouse.warehouse import Lakehouse

BASE = """\
warehouse: data
layers:
  gold: {compression: gzip, sla: 15m}
pipelines:
  demo:
    path: pipelines/demo
    schedule: "*/5 * * * *"
    timezone: Europe/Paris
serving:
  url: env:TEST_CH_URL
auth:
  admin_token: file:token.txt
profiles:
  staging:
    logging: {format: json}
    server: {port: 9000}
  prod:
    inherits: staging
    server: {workers: 4}
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "lakehouse.yaml"
    path.write_text(text)
    return path


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        cwd=cwd,
        env={**clean, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_file_profiles_env_and_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    (tmp_path / "token.txt").write_text("s3cret-token\n")
    env = {"TEST_CH_URL": "http://u:pw@127.0.0.1:8123", "LAKEHOUSE_SERVER__HOST": "127.0.0.2"}
    loaded = load_settings(path, "prod", env=env)
    s = loaded.settings
    assert s.warehouse == str(tmp_path / "data")  # relative to the file
    assert s.pipelines["demo"].path == str(tmp_path / "pipelines" / "demo")
    assert s.pipelines["demo"].schedule == "*/5 * * * *"
    assert s.layers["gold"].sla == 900.0
    assert s.sla_of("gold.daily") == 900.0 and s.sla_of("silver.x") is None
    assert s.logging.format == "json"  # inherited from staging
    assert (s.server.port, s.server.workers, s.server.host) == (9000, 4, "127.0.0.2")
    assert s.serving.url is not None
    assert s.serving.url.get_secret_value() == "http://u:pw@127.0.0.1:8123"
    assert s.auth.admin_token is not None
    assert s.auth.admin_token.get_secret_value() == "s3cret-token"
    assert loaded.source_of("server.port") == "lakehouse.yaml:16 (profile staging)"
    assert loaded.source_of("server.workers") == "lakehouse.yaml:19 (profile prod)"
    assert loaded.source_of("server.host") == "env LAKEHOUSE_SERVER__HOST"
    assert loaded.source_of("serving.url") == "lakehouse.yaml:10 via env:TEST_CH_URL"
    assert loaded.source_of("logging.level") == "default"
    # without a profile: the base only
    base = load_settings(path, None, env=env).settings
    assert (base.server.port, base.logging.format) == (8888, "auto")


def test_every_problem_named_with_its_key_and_line(tmp_path: Path) -> None:
    text = """\
warehouse: data
pipelines:
  demo:
    path: p
    schedule: "every five minutes"
    timezone: Mars/Olympus
    overlap: maybe
server: {port: 99999, wrkers: 2}
alerts:
  rules:
    - {name: a, when: stale}
maintenance:
  policy: {vacuum_after: soon}
"""
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, None, env={})
    found = {p.path: p for p in caught.value.problems}
    assert found["pipelines.demo.schedule"].where == "lakehouse.yaml:5"
    assert "not a cron expression" in found["pipelines.demo.schedule"].message
    assert "not a time zone" in found["pipelines.demo.timezone"].message
    assert "'skip' or 'queue'" in found["pipelines.demo.overlap"].message
    assert found["server.port"].where == "lakehouse.yaml:8"
    assert "unknown key 'wrkers'" in found["server.wrkers"].message
    assert "workers" in found["server.wrkers"].message  # what is allowed
    assert "needs 'after'" in found["alerts.rules"].message
    assert "not a duration" in found["maintenance.policy.vacuum_after"].message


def test_bad_yaml_missing_secret_and_unknown_profile(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 1\n  port: 2\n")
    with pytest.raises(SettingsError, match=r"lakehouse.yaml:3: not valid YAML.*twice"):
        load_settings(path, None, env={})
    path = write(tmp_path, "auth: {admin_token: env:NOT_SET_HERE}\n")
    with pytest.raises(SettingsError, match="NOT_SET_HERE is not set"):
        load_settings(path, None, env={})
    path = write(tmp_path, "warehouse: x\n")
    with pytest.raises(SettingsError, match="no profile 'nope'"):
        load_settings(path, "nope", env={})
    assert load_settings(path, "local", env={}).profile == "local"
    with pytest.raises(Exception, match="no configuration file"):
        load_settings(tmp_path / "missing.yaml", None, env={})


def test_layer_defaults_reach_new_tables(tmp_path: Path) -> None:
    path = write(tmp_path, "warehouse: wh\nlayers:\n  silver: {retention_days: 30}\n")
    lh = Lakehouse.from_settings(load_settings(path, None, env={}).settings)
    assert lh.root == str(tmp_path / "wh")
    lh.write("silver.t", {"a": [1, 2]})
    assert lh.catalog.get("silver.t").retention_days == 30
    lh.write("gold.t", {"a": [1]})
    assert lh.catalog.get("gold.t").retention_days == 2555


def test_config_commands(tmp_path: Path) -> None:
    done = cli("config", "init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lakehouse.yaml").read_text() == template()
    assert cli("config", "init", cwd=tmp_path).returncode == 1  # not replaced
    done = cli("config", "validate", cwd=tmp_path)
    assert done.returncode == 0 and "valid" in done.stdout, done.stderr
    token = "do-not-print-me"
    env = {"LAKEHOUSE_ADMIN_TOKEN": token}
    done = cli("--profile", "prod", "config", "show", "-f", "json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    rows = {r["key"]: r for r in json.loads(done.stdout)}
    assert rows["server.workers"]["value"] == 4
    assert rows["server.workers"]["source"].endswith("(profile prod)")
    assert rows["auth.admin_token"] == {
        "key": "auth.admin_token",
        "value": "********",
        "source": "env LAKEHOUSE_ADMIN_TOKEN",
    }
    assert token not in done.stdout
    table = cli("config", "show", cwd=tmp_path, env=env)
    assert table.returncode == 0 and token not in table.stdout
    (tmp_path / "lakehouse.yaml").write_text("server: {port: many}\nlogging: {format: xml}\n")
    done = cli("config", "validate", "-f", "json", cwd=tmp_path)
    assert done.returncode == 1
    problems = json.loads(done.stdout)["problems"]
    assert {p["key"] for p in problems} == {"server.port", "logging.format"}
    assert {p["where"] for p in problems} == {"lakehouse.yaml:1", "lakehouse.yaml:2"}
    # every command reads the same settings: a bad file stops them with the same report
    done = cli("tables", cwd=tmp_path)
    assert done.returncode == 1 and "server.port" in done.stderr


def test_the_cli_uses_the_settings_warehouse(tmp_path: Path) -> None:
    write(tmp_path, "warehouse: elsewhere\n")
    Lakehouse(tmp_path / "elsewhere").write("bronze.t", {"a": [1]})
    done = cli("tables", "-f", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [t["table"] for t in json.loads(done.stdout)] == ["bronze.t"]
    other = tmp_path / "other"
    done = cli("-w", str(other), "tables", "-f", "json", cwd=tmp_path)
    assert json.loads(done.stdout) == []  # the command line wins


def test_the_server_reads_the_settings(tmp_path: Path) -> None:
    """`lakehouse serve` with two workers: its admin token, its limits and its dashboards
    folder come from lakehouse.yaml (with a profile), in every worker process."""
    from tests.helpers.server import start_server

    (tmp_path / "boards").mkdir()
    (tmp_path / "admin.txt").write_text("lh_fixed_admin_token_for_tests\n")
    write(
        tmp_path,
        "warehouse: wh\nserver: {dashboards: boards, max_rows: 5}\n"
        "auth: {admin_token: file:admin.txt}\n"
        "profiles:\n  two: {server: {workers: 2}}\n",
    )
    Lakehouse(tmp_path / "wh").write("gold.numbers", {"n": list(range(20))})
    server = start_server(tmp_path / "wh", cwd=tmp_path, env={"LAKEHOUSE_PROFILE": "two"})
    try:
        assert server.login_token == "lh_fixed_admin_token_for_tests"
        assert any("2 worker process(es)" in line for line in server.output)
        with server.client(server.login_token) as client:
            for _ in range(4):  # answered by either worker: both read the settings
                done = client.post("/query", json={"sql": "SELECT n FROM gold.numbers"})
                assert done.status_code == 200, done.text
                assert len(done.json()["rows"]) == 5
    finally:
        server.stop()
