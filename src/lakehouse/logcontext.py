"""What a log line is about: the run, pipeline, dataset, table and operation under way in
this thread (or task). The pipeline runner and the write path set them; the log
configuration (``ops/logs.py``) adds them to every record. Imports nothing of the
package, so the core may use it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

FIELDS = ("run_id", "pipeline", "dataset", "table", "operation")

_current: ContextVar[dict[str, Any] | None] = ContextVar("lakehouse_log_context", default=None)


def current() -> dict[str, Any]:
    """The fields set now (a copy)."""
    return dict(_current.get() or {})


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Set ``fields`` (None values are left out) for what runs inside."""
    merged = {**(_current.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _current.set(merged)
    try:
        yield
    finally:
        _current.reset(token)
