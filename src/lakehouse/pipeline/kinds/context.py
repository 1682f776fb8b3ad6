"""What the datasets of one run share: the warehouse and plan, the versions of tables as
the run sees them, and the tables it wrote (with their versions before, to roll back)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name
from lakehouse.tables.format import NotAppendOnly
from lakehouse.tables.formats import format_of

if TYPE_CHECKING:
    from lakehouse.pipeline.model import Dataset, Pipeline
    from lakehouse.pipeline.plan import Plan
    from lakehouse.tables.table import Table
    from lakehouse.warehouse import Lakehouse

Progress = Callable[[str, str, dict[str, Any]], None]  # event, dataset, details


def _ignore(event: str, dataset: str, details: dict[str, Any]) -> None:
    return None


@dataclass
class RunContext:
    lh: Lakehouse
    plan: Plan
    full_refresh: bool = False
    notify: Progress = _ignore
    # tables written by this run -> (version before, inputs to reset on a rollback)
    written: dict[str, tuple[int | None, list[str]]] = field(default_factory=dict)
    versions: dict[str, int | None] = field(default_factory=dict)  # as this run sees them
    rebuild: set[str] = field(default_factory=set)  # datasets whose definition changed
    # while set, a dataset's quarantined rows are not written (they are there already)
    skip_quarantine: bool = False
    engine: str | None = None  # the run's --engine (None: per dataset, pipeline, settings)
    master: str | None = None  # the run's --master for Spark (None: the settings')
    _spark: Any = None  # the Spark engine, made when a dataset first runs on Spark

    def spark(self) -> Any:
        """The run's Spark engine (its session starts on first use)."""
        if self._spark is None:
            from lakehouse.spark.engine import SparkEngine

            self._spark = SparkEngine(self.lh.engine, self.lh.settings.spark, self.master)
        return self._spark

    @property
    def pipeline(self) -> Pipeline:
        return self.plan.pipeline

    # -- tables -------------------------------------------------------------------------
    def existing(self, name: str) -> Table | None:
        if not self.lh.exists(name):
            return None
        return self.lh.table(name)

    def version(self, name: str) -> int | None:
        """A table's version, read once per run unless the run writes the table (a view has
        none)."""
        if name not in self.versions:
            info = self.lh.catalog.get(name)
            if info is not None and info.format == "view":
                self.versions[name] = None
            else:
                parsed = parse_table_name(name)
                fmt = format_of(self.lh.storage, parsed)
                handle = fmt.open(self.lh.storage, parsed)
                self.versions[name] = fmt.version(handle) if handle is not None else None
        return self.versions[name]

    def forget(self, name: str) -> None:
        """The table is written outside the run's writes: its version is read again."""
        self.versions.pop(name, None)

    def remember(self, table: str, existing: Table | None, inputs: list[str]) -> None:
        """The table's version before the run's first write of it, to roll back to."""
        if table not in self.written:
            self.written[table] = (self.version(table) if existing is not None else None, inputs)

    # -- what a dataset reads -------------------------------------------------------------
    def full(self, ds: Dataset) -> bool:
        """Whether the dataset is computed from all of its input's rows this run."""
        return self.full_refresh or ds.name in self.rebuild

    def recomputed(self, ds: Dataset) -> str:
        return "recomputed" + (" (definition changed)" if ds.name in self.rebuild else "")

    def pins(self, current: dict[str, int | None]) -> dict[str, str]:
        """The view of each input at the version the run reads."""
        return {t: self.lh.engine.version_view(t, v) for t, v in current.items() if v is not None}

    def new_rows_pins(
        self, ds: Dataset, current: dict[str, int | None], recorded: dict[str, int | None]
    ) -> dict[str, str]:
        """``pins`` with each streaming input of ``ds`` narrowed to the rows it gained since
        the ``recorded`` version."""
        pins = self.pins(current)
        for table in ds.streaming_inputs:
            pins[table] = self.changes(ds, table, recorded.get(table), current[table])
        return pins

    def changes(self, ds: Dataset, table: str, since: int | None, until: int | None) -> str:
        """The view of the rows ``table`` gained after ``since`` (all of them: None) up to
        ``until``."""
        assert until is not None
        if since is None:
            return self.lh.engine.version_view(table, until)
        try:
            return self.lh.engine.changes_view(table, since, until)
        except NotAppendOnly as exc:
            raise LakehouseError(
                f"{ds.name} reads the new rows of {table}, but {exc}",
                f"rebuild it from all rows: lakehouse run ... --full-refresh --select {ds.name}+",
            ) from exc
