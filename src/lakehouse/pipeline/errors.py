"""Errors of pipeline definitions: each names the file and line it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lakehouse.errors import LakehouseError


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        tail = f" ({self.hint})" if self.hint else ""
        return f"{where}: {self.message}{tail}"


class PipelineError(LakehouseError):
    """A pipeline cannot run as defined; ``problems`` lists every place that is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(
            f"the pipeline has {head}:\n" + "\n".join(f"  {p}" for p in problems),
            "fix the definitions named above; nothing was run",
        )


class RunFailed(LakehouseError):
    """A run stopped on an error; every table it wrote is back at its version before."""

    def __init__(self, run_id: str, dataset: str, error: str, hint: str | None = None) -> None:
        self.run_id = run_id
        self.dataset = dataset
        super().__init__(
            f"run {run_id} failed at {dataset}: {error}",
            hint
            or "every table the run wrote is back at its last good version; "
            "fix the cause and run again",
        )
