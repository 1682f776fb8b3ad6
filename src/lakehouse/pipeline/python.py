"""Python datasets: a function decorated with ``@dataset`` that returns a dataframe.

```python
from lakehouse.pipeline import dataset

@dataset("gold.user_features", inputs=["silver.users"], keys=["user_id"])
def user_features(ctx):
    return ctx.sql("SELECT user_id, events / sessions AS events_per_session FROM silver.users")
```

The function gets a context whose ``sql`` reads the inputs as the run pins them (for an
append dataset, only the rows that arrived since the last run); it may return Arrow, pandas,
Polars, a DuckDB relation or a query result. ``spark_sql`` (and ``spark_read``) give a
Spark DataFrame over the same input versions instead; the function may return it.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.pipeline.errors import PipelineError, Problem

if TYPE_CHECKING:
    from lakehouse.pipeline.model import Dataset
    from lakehouse.warehouse import Lakehouse

_collected: list[tuple[dict[str, Any], Callable[..., Any]]] | None = None


def dataset(name: str, **header: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as a dataset of the pipeline folder it is in. The
    keywords are the header keys of a SQL dataset; ``inputs`` lists the tables it reads."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if _collected is not None:
            _collected.append(({"name": name, **header}, fn))
        return fn

    return register


def collect(path: Path) -> list[tuple[dict[str, Any], Callable[..., Any]]]:
    """The header and function of each ``@dataset`` of a Python file, in order."""
    global _collected
    _collected = []
    module_name = f"lakehouse_pipeline_{abs(hash(str(path.resolve())))}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's file: report where it broke
            tb = exc.__traceback__
            line = 0
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == str(path):
                    line = tb.tb_lineno
                tb = tb.tb_next
            if isinstance(exc, SyntaxError):
                line = exc.lineno or 0
            raise PipelineError([Problem(path, line, f"{type(exc).__name__}: {exc}")]) from exc
        return list(_collected)
    finally:
        _collected = None


class Context:
    """What a Python dataset's function receives."""

    def __init__(
        self, lh: Lakehouse, ds: Dataset, tables: dict[str, str], spark: Any = None
    ) -> None:
        self.lh = lh
        self.dataset = ds
        self._tables = tables
        self._spark = spark  # makes the run's Spark engine (None: a new one)
        self.spark_views: list[str] = []  # Spark views its frames read, dropped after

    def spark_sql(self, query: str) -> Any:
        """A Spark DataFrame of ``query`` (the platform's SQL, translated) with the inputs as
        this run reads them: Spark reads their files."""
        if self._spark is not None:
            engine = self._spark()
        else:
            from lakehouse.spark.engine import SparkEngine

            engine = SparkEngine(self.lh.engine, self.lh.settings.spark)
        frame, views = engine.frame(query, self._tables)
        self.spark_views += views
        return frame

    def spark_read(self, table: str) -> Any:
        """One input as a Spark DataFrame (for an append dataset: the rows that are new)."""
        return self.spark_sql(f"SELECT * FROM {table}")

    def sql(self, query: str) -> Any:
        """Run SQL with the inputs as this run reads them; returns Arrow."""
        return self.lh.engine.query(query, self._tables).to_arrow()

    def read(self, table: str) -> Any:
        """One input as Arrow (for an append dataset: the rows that are new)."""
        return self.sql(f"SELECT * FROM {table}")
