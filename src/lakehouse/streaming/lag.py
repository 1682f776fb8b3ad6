"""What a running stream publishes of its lag, for ``GET /metrics`` to read: per
partition, the last offset the table holds (committed with its rows) and the broker's high
watermark, in ``<warehouse>/_streams/<table>.json``, rewritten at most once a second and
removed when the stream stops. A file whose process is gone is not read (a stream that is
not running has no lag)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("lakehouse.stream")

FOLDER = "_streams"


@dataclass(frozen=True)
class PartitionLag:
    committed: int | None  # the last offset the table holds; None: none yet
    high: int  # the broker's high watermark (the offset the next message gets)

    @property
    def lag(self) -> int:
        return max(0, self.high - (self.committed + 1 if self.committed is not None else 0))


@dataclass(frozen=True)
class StreamLag:
    table: str
    topic: str
    pid: int
    at: float
    partitions: dict[int, PartitionLag]


class LagFile:
    """The state file of one stream, written by the stream's loop."""

    def __init__(self, root: Path, table: str, topic: str, every: float = 1.0) -> None:
        self.path = root / FOLDER / f"{table}.json"
        self.table, self.topic, self.every = table, topic, every
        self._last = 0.0

    def publish(self, marks: dict[int, int], highs: dict[int, int], force: bool = False) -> None:
        now = time.monotonic()
        if not highs or (not force and now - self._last < self.every):
            return
        self._last = now
        body = {
            "table": self.table,
            "topic": self.topic,
            "pid": os.getpid(),
            "at": time.time(),
            "partitions": {
                str(p): {"committed": marks.get(p), "high": high} for p, high in highs.items()
            },
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self.path)
        except OSError as exc:  # lag is a figure for monitoring; the stream goes on without it
            log.warning("stream lag not published to %s: %s", self.path, exc.strerror)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lags(root: Path) -> list[StreamLag]:
    """The lag of every stream of the warehouse whose process is running."""
    found: list[StreamLag] = []
    folder = root / FOLDER
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            body = json.loads(path.read_text())
            pid = int(body["pid"])
            if not _alive(pid):
                continue
            parts = {
                int(p): PartitionLag(
                    None if v.get("committed") is None else int(v["committed"]), int(v["high"])
                )
                for p, v in body["partitions"].items()
            }
            found.append(StreamLag(body["table"], body["topic"], pid, float(body["at"]), parts))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced, or not ours
    return found
