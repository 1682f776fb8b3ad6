"""A panel added to a dashboard file: written as YAML at the end of its ``panels:`` list
(the rest of the file, comments too, left as it is), checked by the same reader as every
dashboard file before it replaces the file, placed by the grid's flow (no ``grid:``)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from lakehouse.dashboards.model import KINDS, Dashboard
from lakehouse.dashboards.reader import read_dashboard
from lakehouse.errors import LakehouseError


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def panel_id(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "panel"
    found, n = base, 2
    while found in taken:
        found, n = f"{base}-{n}", n + 1
    return found


def add_panel(path: Path, panel: dict[str, Any]) -> tuple[Dashboard, str]:
    """Add ``panel`` (title, kind, sql, and x, y, series as the kind needs) to the file at
    ``path``; the dashboard as read back and the new panel's id. ``LakehouseError`` when
    the file has no ``panels:`` list or the result would not read as a dashboard."""
    if panel.get("kind") not in KINDS:
        raise LakehouseError(f"unknown kind {panel.get('kind')!r}", f"one of {', '.join(KINDS)}")
    text = path.read_text(encoding="utf-8")
    before, problems = read_dashboard(path)
    if before is None or any(p.severity == "error" for p in problems):
        raise LakehouseError(f"{path.name} does not read as a dashboard", "fix the file first")
    pid = panel_id(str(panel.get("title") or "panel"), {p.id for p in before.panels})
    entry = {"id": pid, **{k: v for k, v in panel.items() if v not in (None, [], "")}}
    entry["sql"] = str(entry["sql"]).strip().rstrip(";").rstrip() + "\n"
    lines = text.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if re.match(r"panels:\s*(#.*)?$", line)), None)
    if at is None:
        raise LakehouseError(f"{path.name} has no panels: list", "add panels: to the file")
    end = next(
        (i for i in range(at + 1, len(lines)) if re.match(r"[A-Za-z_]", lines[i])), len(lines)
    )
    indent = next(
        (m.group(1) for line in lines[at + 1 : end] if (m := re.match(r"(\s*)- ", line))), "  "
    )
    dumped = yaml.dump([entry], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    block = "".join(f"{indent}{line}" if line.strip() else line for line in dumped.splitlines(True))
    while end > at + 1 and not lines[end - 1].strip():
        end -= 1  # after the last panel, before the blank lines that end the list
    head = "".join(lines[:end])
    if head and not head.endswith("\n"):
        head += "\n"
    new_text = head + "\n" + block + "".join(lines[end:])
    try:
        new_text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LakehouseError(
            "the panel holds characters a file cannot: lone surrogates",
            "send its text as UTF-8",
        ) from exc
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".", suffix=path.suffix, delete=False
    ) as out:
        out.write(new_text)
        staged = Path(out.name)
    try:
        after, problems = read_dashboard(staged)
        errors = [p for p in problems if p.severity == "error"]
        if after is None or errors:
            raise LakehouseError(
                f"the panel would not read in {path.name}: {errors[0] if errors else 'unreadable'}",
                "check its kind's columns (x, y) against the query",
            )
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    after.name = path.stem
    return after, pid
