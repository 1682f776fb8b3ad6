"""Which engine reads a panel: the one place that choice is made."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

LAKEHOUSE = "lakehouse"


def choose_engine(lh: Lakehouse, tables: list[str], masked_for_caller: bool) -> str:
    """The engine that answers a panel reading ``tables`` for a caller who sees some of
    their columns masked (``masked_for_caller``). Every panel is read by the lakehouse's
    own engine, through the same access rules, masking and audit as ``POST /query``."""
    del lh, tables, masked_for_caller  # the inputs a serving store will be chosen by
    return LAKEHOUSE
