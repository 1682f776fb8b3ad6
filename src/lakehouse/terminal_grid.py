"""Rows as a grid that fits the terminal: column names are never cut (a value is wrapped,
and a very long one shortened, instead); when even the names do not fit side by side, each
row is shown as name: value lines. Times with a zone are shown in the user's time zone
(``TZ``, else the system's), to the second, zone named."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table as RichTable

LONGEST_VALUE = 120  # characters a cell shows before it is shortened with "…"
GAP = 3  # a column's border and padding
NARROWEST = 10  # a value column narrower than this: rows are shown as name: value lines


def readable_time(value: datetime, zone: tzinfo | None = None) -> str:
    """``2026-12-06 06:05:07 CET``: a time with a zone in ``zone`` (by default the
    user's); a time without one as it is, without a zone; to the second."""
    if value.tzinfo is not None:
        value = value.astimezone(zone)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.tzinfo is not None:
        text += " " + (value.strftime("%Z") or value.strftime("%z"))
    return text


def cell_text(value: Any, zone: tzinfo | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return readable_time(value, zone)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if len(text) > LONGEST_VALUE:
        text = text[: LONGEST_VALUE - 1] + "…"
    return text


def _numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def print_grid(
    console: Console, table: pa.Table, title: str | None = None, zone: tzinfo | None = None
) -> None:
    """``table`` (its nested values already text) on ``console``, fitting its width."""
    names = table.column_names
    rows = [[cell_text(v, zone) for v in r.values()] for r in table.to_pylist()]
    natural = [
        max([len(n), *(len(line) for r in rows for line in r[i].splitlines() or [""])])
        for i, n in enumerate(names)
    ]
    widths = fitted_widths(names, natural, console.width - GAP * len(names) - 1)
    if names and widths is None:
        _print_records(console, names, rows, title)
        return
    grid = RichTable(title=title, show_lines=False, header_style="bold cyan")
    for name, field, width in zip(names, table.schema, widths or [], strict=True):
        grid.add_column(
            name,
            justify="right" if _numeric(field.type) else "left",
            overflow="fold",
            width=width,
        )
    for row in rows:
        grid.add_row(*row)
    console.print(grid)


def fitted_widths(names: list[str], natural: list[int], room: int) -> list[int] | None:
    """Each column's width so that all fit in ``room`` characters: the widest values are
    narrowed first, to one cap, never below their column's name; None when that cap would
    be under ``NARROWEST`` (the rows read better as name: value lines)."""
    if sum(natural) <= room:
        return natural
    floor = [len(n) for n in names]
    for cap in range(max(natural), 0, -1):
        widths = [max(f, min(w, cap)) for f, w in zip(floor, natural, strict=True)]
        if sum(widths) <= room:
            return widths if cap >= NARROWEST else None
    return None


def _print_records(
    console: Console, names: list[str], rows: list[list[str]], title: str | None
) -> None:
    """One block per row, one ``name  value`` line per column (names too wide to sit side
    by side); a long value wraps beside its name."""
    if title:
        console.print(f"[bold]{title}[/bold]")
    for i, row in enumerate(rows):
        console.print(f"[dim]-- row {i + 1} --[/dim]")
        block = RichTable.grid(padding=(0, 2))
        block.add_column(style="bold cyan", no_wrap=True)
        block.add_column(overflow="fold")
        for name, value in zip(names, row, strict=True):
            block.add_row(name, value)
        console.print(block)
