"""What a dashboard file holds once read: the dashboard, its variables, its panels, its
time range, and the problems found in it (each with its file and line)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

KINDS = ("stat", "line", "bar", "area", "table", "pie")
VARIABLE_KINDS = ("select", "text", "date")
FORMATS = ("number", "percent", "currency", "duration", "bytes", "text")
COLUMNS = 12  # the grid's width
TIME_PARAMETERS = ("from", "to")
UNITS = {"minutes": "m", "hours": "h", "days": "d"}
_RANGE = re.compile(r"^last\s+(\d+)\s+(minute|hour|day)s?$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a dashboard file: where, what, and what to do. A warning does
    not stop the dashboard (a real-time table that exists only once a stream ran)."""

    file: str
    line: int
    message: str
    hint: str | None = None
    panel: str | None = None
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        level = "warning: " if self.severity == "warning" else ""
        panel = f"panel {self.panel}: " if self.panel else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}: {level}{panel}{self.message}{hint}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "panel": self.panel,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class TimeRange:
    """``last N minutes|hours|days``, or ``all``."""

    text: str
    amount: int | None = None  # None: all
    unit: str | None = None  # minutes, hours or days

    @classmethod
    def parse(cls, text: str) -> TimeRange | None:
        """The range ``text`` names; None when it names none."""
        clean = " ".join(str(text).lower().split())
        if clean == "all":
            return cls("all")
        match = _RANGE.match(clean)
        if match is None or int(match.group(1)) < 1:
            return None
        amount, unit = int(match.group(1)), match.group(2) + "s"
        return cls(f"last {amount} {unit}", amount, unit)

    def bounds(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """``$from`` and ``$to`` (UTC) at ``now``: whole seconds, so that the same range
        asked within a second is the same statement for the result cache."""
        to = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        if self.amount is None or self.unit is None:
            return EPOCH, to
        return to - timedelta(**{self.unit: self.amount}), to

    def grafana(self) -> str:
        """Grafana's ``time.from``: ``now-7d``; the epoch for ``all``."""
        if self.amount is None or self.unit is None:
            return "1970-01-01T00:00:00.000Z"
        return f"now-{self.amount}{UNITS[self.unit]}"


@dataclass(frozen=True)
class Grid:
    x: int
    y: int
    w: int
    h: int

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}


@dataclass(frozen=True)
class Threshold:
    value: float
    color: str


@dataclass
class Variable:
    name: str
    label: str
    kind: str
    default: Any = None
    options: list[Any] | None = None
    options_sql: str | None = None
    line: int = 0
    sql_line: int = 0


@dataclass
class Panel:
    id: str
    title: str
    sql: str
    kind: str
    grid: Grid
    x: str | None = None
    y: list[str] = field(default_factory=list)
    series: str | None = None
    unit: str | None = None
    format: str | None = None
    thresholds: list[Threshold] = field(default_factory=list)
    description: str | None = None
    line: int = 0
    sql_line: int = 0
    lines: dict[str, int] = field(default_factory=dict)  # key -> line

    def at(self, key: str) -> int:
        return self.lines.get(key, self.line)


@dataclass
class Dashboard:
    name: str  # the file's name without .yaml
    file: str  # as found in the folder
    title: str
    refresh: int = 10
    time_range: TimeRange = field(default_factory=lambda: TimeRange("last 7 days", 7, "days"))
    variables: list[Variable] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    description: str | None = None
    problems: list[Problem] = field(default_factory=list)

    def panel(self, panel_id: str) -> Panel | None:
        return next((p for p in self.panels if p.id == panel_id), None)

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def folder_file(path: Path) -> str:
    """How a file is named in problems: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
