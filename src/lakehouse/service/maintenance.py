"""Table maintenance as the CLI, the API and the scheduler run it: what each table needs
(``dry_run``) and doing it, one record per action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.ops.maintenance import Action, maintain_table, tables_to_maintain

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def maintain(
    lh: Lakehouse, table: str | None = None, dry_run: bool = False
) -> list[dict[str, Any]]:
    """Maintain every table (or ``table``) as its policy says; with ``dry_run`` only say
    what each needs and why. One record per action: table, action, status (planned, done,
    skipped, failed), reason, figures (files before and after, rows deleted, files
    removed) and seconds. A failed action leaves its table at its last good version."""
    records: list[dict[str, Any]] = []
    for name, left_alone in tables_to_maintain(lh, table):
        if left_alone is not None:
            records.append(Action(name, "none", left_alone, status="skipped").as_dict())
            continue
        records += [a.as_dict() for a in maintain_table(lh, name, dry_run)]
    return records


def failed(records: list[dict[str, Any]]) -> bool:
    """Whether an action of a run failed (the CLI then exits with 1)."""
    return any(r["status"] == "failed" for r in records)
