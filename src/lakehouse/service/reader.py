"""Who reads: a caller's name and what it may see, as the service's functions need it
(the API builds one from its access rules; the CLI reads as the warehouse's owner)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


def _everything(table: str) -> bool:
    return True


def _nothing(table: str) -> list[str]:
    return []


@dataclass(frozen=True)
class Reader:
    name: str
    can_read: Callable[[str], bool] = field(default=_everything)
    masked: Callable[[str], list[str]] = field(default=_nothing)  # pii columns read as pseudonyms
