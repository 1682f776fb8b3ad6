"""A chart of the SQL editor added as a panel to a dashboard file of a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakehouse.dashboards.add_panel import add_panel
from lakehouse.dashboards.reader import find_file


def add_chart(folder: Path, dashboard: str, panel: dict[str, Any]) -> dict[str, Any]:
    """Add ``panel`` (title, kind, sql, x, y, series) to the dashboard named ``dashboard``
    in ``folder``; its file, the new panel's id and how many panels it now has."""
    path = find_file(folder, dashboard)
    after, pid = add_panel(path, panel)
    return {"dashboard": dashboard, "file": path.name, "panel": pid, "panels": len(after.panels)}
