"""The CLI's grid: names never cut at any width, long values wrapped or shortened, rows
as name: value lines when names do not fit side by side, times in the user's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
from rich.console import Console

from lakehouse.terminal_grid import LONGEST_VALUE, fitted_widths, print_grid, readable_time

NAMES = ["table_name_that_is_long", "layer", "rows", "updated_at"]


def _render(table: pa.Table, width: int) -> str:
    console = Console(width=width, record=True, no_color=True, force_terminal=False)
    with console.capture() as captured:
        print_grid(console, table, zone=ZoneInfo("America/New_York"))
    return captured.get()


def _table(value: str) -> pa.Table:
    stamp = datetime(2026, 12, 6, 5, 6, 7, 123456, tzinfo=UTC)
    return pa.table(
        {
            NAMES[0]: [value, "short"],
            NAMES[1]: ["gold", "silver"],
            NAMES[2]: [1234, 5],
            NAMES[3]: pa.array([stamp, None], pa.timestamp("us", tz="UTC")),
        }
    )


def test_names_are_whole_at_every_width():
    table = _table("gold.a_table_with_a_rather_long_name_indeed")
    for width in (40, 60, 80, 120, 200):
        out = _render(table, width)
        for name in NAMES:
            assert name in out, (width, out)
        assert max(len(line) for line in out.splitlines()) <= width, (width, out)


def test_values_wrap_in_a_grid_and_the_widest_narrows_first():
    out = _render(_table("gold." + "x" * 60), 80)
    assert "┃ layer" in out or "│ layer" in out or "layer " in out.splitlines()[1]
    assert fitted_widths(["a", "bb"], [50, 5], 30) == [25, 5]
    assert fitted_widths(["name", "x"], [40, 40], 12) is None  # too narrow: records


def test_narrow_terminals_show_rows_as_lines():
    out = _render(_table("gold.t"), 40)
    assert "-- row 1 --" in out
    assert "table_name_that_is_long  gold.t" in out


def test_very_long_values_are_shortened():
    out = _render(_table("v" * (LONGEST_VALUE * 2)), 200)
    assert "v" * (LONGEST_VALUE * 2) not in out.replace("\n", "")
    assert "…" in out


def test_times_in_the_users_zone_to_the_second():
    stamp = datetime(2026, 12, 6, 5, 6, 7, 123456, tzinfo=UTC)
    assert readable_time(stamp, ZoneInfo("America/New_York")) == "2026-12-06 00:06:07 EST"
    assert readable_time(stamp, ZoneInfo("Europe/Paris")) == "2026-12-06 06:06:07 CET"
    assert readable_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05"
    out = _render(_table("gold.t"), 200)
    assert "2026-12-06 00:06:07 EST" in out


def test_cli_history_in_the_users_zone_and_json_unchanged(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from lakehouse import Lakehouse

    warehouse = tmp_path / "warehouse"
    Lakehouse(warehouse).write("silver.t", pa.table({"a_rather_long_column_name": [1, 2]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env.update(TZ="Asia/Tokyo", COLUMNS="60", NO_COLOR="1")

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    shown = cli("history", "silver.t")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST", shown), shown
    stamps = [e["timestamp"] for e in json.loads(cli("history", "silver.t", "--format", "json"))]
    # For scripts: ISO 8601 with the offset, as before.
    assert stamps and all("T" in s and datetime.fromisoformat(s).tzinfo for s in stamps)
    rows = cli("sql", "SELECT a_rather_long_column_name FROM silver.t")
    assert "a_rather_long_column_name" in rows
