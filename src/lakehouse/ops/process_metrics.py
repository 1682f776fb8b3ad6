"""The figures each server process counts itself: API request latency by route and status,
and the duration of the table writes the process makes. With several worker processes
they go through prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` is set
by ``lakehouse serve`` before any worker starts (``api/serve.py``), every process writes
its own files there, and a scrape answered by any worker adds them all up.

``prometheus_client`` decides at import whether it runs in multiprocess mode, so nothing
here is imported before ``lakehouse serve`` has set the folder."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import REGISTRY, Collector

from lakehouse.tables.observers import WRITE_OBSERVERS, WriteEvent

FOLDER_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WRITE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

REQUESTS = Histogram(
    "lakehouse_http_request_duration_seconds",
    "API request latency by method, route template and status code",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
WRITES = Histogram(
    "lakehouse_table_write_duration_seconds",
    "Duration of the table writes made by the server's processes (commit included)",
    ["table", "mode"],
    buckets=WRITE_BUCKETS,
)


def _observe_write(event: WriteEvent) -> None:
    WRITES.labels(event.table, event.mode).observe(event.seconds)


def watch_writes() -> None:
    """Count this process's table writes (once per process)."""
    if _observe_write not in WRITE_OBSERVERS:
        WRITE_OBSERVERS.append(_observe_write)


def forget_dead(folder: Path) -> None:
    """``mark_process_dead`` for every process that left files and is gone (a worker
    uvicorn replaced): its live gauges are dropped, its counts are kept."""
    pids: set[int] = set()
    for path in folder.glob("*.db"):
        tail = path.stem.rsplit("_", 1)[-1]
        if tail.isdigit():
            pids.add(int(tail))
    for pid in pids - {os.getpid()}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:
            continue


def registry(*collectors: Collector) -> CollectorRegistry:
    """What a scrape reads: every process's counts (multiprocess mode) or this process's,
    and ``collectors`` (the warehouse's figures)."""
    folder = os.environ.get(FOLDER_ENV)
    if folder and Path(folder).is_dir():
        forget_dead(Path(folder))
        found = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(found, folder)  # type: ignore[no-untyped-call]
    else:
        found = CollectorRegistry(auto_describe=False)
        found.register(_Forward(REGISTRY))
    for collector in collectors:
        found.register(collector)
    return found


class _Forward(Collector):
    """This process's default registry (process figures and our histograms)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Any:
        return self.source.collect()

    def describe(self) -> Any:
        return []


def render(reg: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(reg), CONTENT_TYPE_LATEST


class RequestTimer:
    """ASGI middleware: each HTTP request's latency by its route template (``/tables/{name}``,
    never the path a caller typed, so the series stay few) and status code."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope.get("method", ""), template, str(status[0])).observe(
                time.perf_counter() - started
            )
