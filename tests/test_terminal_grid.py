"""The CLI's grid: names never cut at any width, long values wrapped or shortened, rows
as name: value lines when names do not fit side by side, times in the user's zone."""

from __future__ import annotations

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
