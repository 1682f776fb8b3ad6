"""Who hears of each finished table write: a list of callbacks a higher layer (metrics)
registers. The write path calls them after its commit; a callback that fails is ignored,
a write never fails because of what observes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class WriteEvent:
    table: str
    mode: str  # append | overwrite | merge
    rows: int
    seconds: float


WRITE_OBSERVERS: list[Callable[[WriteEvent], None]] = []


def written(event: WriteEvent) -> None:
    for observer in list(WRITE_OBSERVERS):
        try:
            observer(event)
        except Exception:  # noqa: BLE001, S112 - observers never break a write
            continue
