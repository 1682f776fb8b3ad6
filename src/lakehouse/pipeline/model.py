"""What a pipeline is once read: its datasets (one table or view each) and its variables."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.quality import Expectation


@dataclass
class Dataset:
    name: str  # layer.table
    kind: str
    file: Path
    line: int = 1  # where the definition starts
    sql: str | None = None
    sql_line: int = 1  # the file line of the SQL's first line
    function: Callable[..., Any] | None = None
    inputs: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    sequence_by: str | None = None
    delete_when: str | None = None
    scd: int = 1
    valid_time: str | None = None
    except_columns: list[str] = field(default_factory=list)
    stream: list[str] | None = None
    refresh: str = "auto"  # materialized views: auto (incremental where possible) | full
    engine: str | None = None  # duckdb | spark | auto (unset: the pipeline's, the settings')
    expectations: list[Expectation] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    format: str | None = None
    source_system: str | None = None
    api: dict[str, Any] | None = None  # api datasets: the REST source (docs/SOURCES.md)
    database: dict[str, Any] | None = None  # database datasets: url, table, ...
    lines: dict[str, int] = field(default_factory=dict)  # header key -> file line

    @property
    def layer(self) -> str:
        return self.name.split(".")[0]

    @property
    def stored(self) -> bool:
        return self.kind != "view"

    @property
    def quarantine(self) -> str:
        return f"{self.name}_quarantine"

    @property
    def depends_on(self) -> list[str]:
        """Tables that must be ready before this one: its inputs and check references."""
        refs = [t for e in self.expectations for t in e.references]
        return list(dict.fromkeys(self.inputs + refs))

    @property
    def streaming_inputs(self) -> list[str]:
        """Inputs read incrementally (append and CDC datasets): the ``stream`` list, else
        the first input."""
        if self.kind not in ("append", "cdc"):
            return []
        if self.stream is not None:
            return self.stream
        return self.inputs[:1]

    def at(self, key: str) -> int:
        return self.lines.get(key, self.line)


@dataclass
class Pipeline:
    name: str
    folder: Path
    datasets: dict[str, Dataset]
    vars: dict[str, str] = field(default_factory=dict)
    description: str | None = None

    def expand(self, text: str, warehouse: str) -> str:
        values = {"warehouse": warehouse, "pipeline": str(self.folder), **self.vars}

        def sub(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise LakehouseError(
                    f"pipeline {self.name}: ${{{key}}} is not defined",
                    "define it under vars: in pipeline.yml or pass --var name=value",
                )
            return values[key]

        for _ in range(10):  # variables may name other variables
            expanded = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, text)
            if expanded == text:
                break
            text = expanded
        return text
