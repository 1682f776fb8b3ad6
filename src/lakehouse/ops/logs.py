"""The logs of a process: the ``lakehouse`` loggers to stderr, as plain text for a person
at a terminal or as JSON lines for a log collector, configured once per process from
``--log-format`` / ``logging.format`` and ``logging.level``. Every record carries what it
is about (run id, pipeline, dataset, table, operation: ``lakehouse.logcontext``)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import lakehouse.logcontext as logcontext

FORMATS = ("auto", "text", "json")
_HANDLER_NAME = "lakehouse-logs"


class ContextFilter(logging.Filter):
    """Puts the context's fields on the record (``record.run_id`` and so on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = logcontext.current()
        for key in logcontext.FIELDS:
            if not hasattr(record, key):
                setattr(record, key, context.get(key))
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the context
    fields that are set, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in logcontext.FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        out["process"] = record.process
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO lakehouse.pipeline [run=… dataset=…] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{'run' if key == 'run_id' else key}={getattr(record, key)}"
            for key in logcontext.FIELDS
            if getattr(record, key, None) is not None and key != "pipeline"
        ]
        record.where = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (a test runner or
    a redirection may replace it after the logs were configured)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def resolve(fmt: str, stream: TextIO) -> str:
    """``text`` or ``json``: ``auto`` is text on a terminal, JSON otherwise."""
    if fmt not in FORMATS:
        from lakehouse.errors import LakehouseError

        raise LakehouseError(f"unknown log format {fmt!r}", "use auto, text or json")
    if fmt != "auto":
        return fmt
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def configure(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> str:
    """Send the ``lakehouse`` loggers to ``stream`` (stderr) in ``fmt``; configuring again
    replaces the handler this function installed before. Returns the format chosen."""
    out = stream or sys.stderr
    chosen = resolve(fmt, out)
    root = logging.getLogger("lakehouse")
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    handler: logging.Handler = _Stderr() if stream is None else logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter() if chosen == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    return chosen


def configure_from(settings: Any, fmt: str | None = None) -> str:
    """From the settings' ``logging`` section; ``fmt`` (``--log-format``) wins."""
    section = settings.logging
    return configure(fmt or section.format, section.level)
