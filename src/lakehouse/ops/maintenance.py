"""Table maintenance: what each table's policy and figures call for (``plan``), and doing
it (``execute``).

The actions, in the order they run on a table: ``retention`` (delete the rows older than
the table's retention days), ``compact`` or ``zorder`` (more small files than the policy
allows), ``vacuum`` (files removed longer ago than ``vacuum_after``), ``checkpoint``
(more versions since the last checkpoint than ``checkpoint_every``). Each goes through
``Table`` and so through the table's format. An action refused because another writer
committed meanwhile is tried once more; if refused again it is reported as failed, the
table stays at its last good version and the next run does it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError
from lakehouse.ops.stats import table_stats
from lakehouse.tables.format import CommitConflict

if TYPE_CHECKING:
    from lakehouse.settings.model import MaintenancePolicy
    from lakehouse.tables.table import Table
    from lakehouse.warehouse import Lakehouse

# Files no version references may belong to a writer that has not committed yet: they are
# removed only once this old, whatever the policy's vacuum_after.
UNREFERENCED_HOURS = 1.0


@dataclass
class Action:
    table: str
    action: str  # retention, compact, zorder, vacuum, checkpoint, none
    reason: str
    status: str = "planned"  # planned, done, skipped, failed
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "action": self.action,
            "status": self.status,
            "reason": self.reason,
            **self.figures,
            "seconds": round(self.seconds, 3),
        }


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def tables_to_maintain(lh: Lakehouse, only: str | None = None) -> list[tuple[str, str | None]]:
    """Every table (or ``only``) with why it is left alone, if it is: views have no files,
    system tables wait for ``maintenance.system_tables``."""
    settings = lh.settings.maintenance
    if only is not None:
        lh.table(only)  # the table exists, or TableNotFoundError with suggestions
        names = [only]
    else:
        names = sorted(lh.catalog.names())
    out: list[tuple[str, str | None]] = []
    for name in names:
        info = lh.catalog.get(name)
        if info is not None and info.format == "view":
            if only is not None:
                raise LakehouseError(
                    f"{name} is a view: it has no files to maintain",
                    "maintain the tables it reads",
                )
            continue
        why = None
        if name.startswith("system.") and not settings.system_tables:
            why = "system tables are left alone (maintenance.system_tables is false)"
        elif not settings.policy_for(name).enabled:
            why = "maintenance is disabled for it (enabled: false)"
        out.append((name, why))
    return out


def plan_table(lh: Lakehouse, name: str) -> list[Action]:
    """What ``name``'s policy and figures call for now, each with its reason."""
    policy = lh.settings.maintenance.policy_for(name)
    table = lh.table(name)
    actions = _retention(table, name)
    actions += _compaction(lh, table, name, policy)
    vacuum = _vacuum(table, name, policy)
    if vacuum is not None:
        actions.append(vacuum)
    checkpoint = _checkpoint(table, name, policy)
    if checkpoint is not None:
        actions.append(checkpoint)
    return actions


def _retention(table: Table, name: str) -> list[Action]:
    policy_days = table.info.retention_days
    found = table.expired()
    if found is None or not policy_days:
        return []
    predicate, cutoff = found
    view = table.engine.prepare(f"SELECT count(*) FROM {name} WHERE {predicate}")[0]
    old = int(table.engine.cursor().sql(view).fetchall()[0][0])
    if not old:
        return []
    return [
        Action(
            name,
            "retention",
            f"{old:,} row{'s' if old != 1 else ''} older than {policy_days} days "
            f"(before {cutoff} UTC)",
            figures={"rows_expired": old},
        )
    ]


def _compaction(lh: Lakehouse, table: Table, name: str, policy: MaintenancePolicy) -> list[Action]:
    assert policy.small_files is not None and policy.small_file_size is not None
    stats = table_stats(lh, name, int(policy.small_file_size))
    if stats.small_files <= policy.small_files:
        return []
    reason = f"{stats.small_files} small files > {policy.small_files}"
    figures = {"files_before": stats.files}
    if policy.zorder:
        missing = [c for c in policy.zorder if c not in table.schema.names]
        if missing:
            return [
                Action(
                    name,
                    "zorder",
                    f"{reason}, but no column {', '.join(missing)} to z-order by: fix "
                    f"maintenance.tables.{name}.zorder",
                    status="failed",
                    figures=figures,
                )
            ]
        return [Action(name, "zorder", f"{reason}; by {', '.join(policy.zorder)}", figures=figures)]
    return [Action(name, "compact", reason, figures=figures)]


def _vacuum_hours(policy: MaintenancePolicy) -> float:
    assert policy.vacuum_after is not None
    return policy.vacuum_after / 3600


def _vacuum(table: Table, name: str, policy: MaintenancePolicy) -> Action | None:
    hours = _vacuum_hours(policy)
    files = table.vacuum(hours, dry_run=True, unreferenced_hours=UNREFERENCED_HOURS)
    if not files:
        return None
    after = _duration(math.ceil(hours) * 3600.0)
    return Action(name, "vacuum", f"{len(files)} files removed more than {after} ago", figures={})


def _checkpoint(table: Table, name: str, policy: MaintenancePolicy) -> Action | None:
    assert policy.checkpoint_every is not None
    last = table.last_checkpoint()
    since = table.version - (last if last is not None else -1)
    if since <= policy.checkpoint_every:
        return None
    at = f"the last at version {last}" if last is not None else "none yet"
    return Action(
        name,
        "checkpoint",
        f"{since} versions since the last checkpoint ({at}) > {policy.checkpoint_every}",
    )


def execute(lh: Lakehouse, action: Action) -> Action:
    """Do ``action``; once more if another writer's commit got in the way. Errors become
    a failed action with the reason; the table is left at its last good version."""
    if action.status != "planned":
        return action
    started = time.perf_counter()
    for attempt in (1, 2):
        try:
            action.figures.update(_run(lh, action))
            action.status = "done"
            break
        except CommitConflict as exc:
            if attempt == 2:
                action.status = "failed"
                action.reason += f"; refused twice: {exc.message} (the next run does it)"
        except LakehouseError as exc:
            action.status = "failed"
            action.reason += f"; failed: {exc.message}"
            break
        except Exception as exc:  # noqa: BLE001 - one table's failure does not stop the rest
            action.status = "failed"
            action.reason += f"; failed: {type(exc).__name__}: {exc}"
            break
    action.seconds = time.perf_counter() - started
    return action


def _run(lh: Lakehouse, action: Action) -> dict[str, Any]:
    table = lh.table(action.table)
    policy = lh.settings.maintenance.policy_for(action.table)
    if action.action == "retention":
        found = table.expired()
        if found is None:
            return {"rows_deleted": 0}
        metrics = table.delete(found[0])
        return {"rows_deleted": int(metrics.get("num_deleted_rows", 0))}
    if action.action in ("compact", "zorder"):
        if action.action == "zorder":
            metrics = table.zorder(list(policy.zorder or []))
        else:
            target = int(policy.target_file_size) if policy.target_file_size else None
            metrics = table.optimize(target)
        return {"files_after": len(table.files()), "version": table.version} | {
            "files_rewritten": int(metrics.get("numFilesRemoved", 0))
        }
    if action.action == "vacuum":
        removed = table.vacuum(_vacuum_hours(policy), unreferenced_hours=UNREFERENCED_HOURS)
        return {"files_removed": len(removed)}
    if action.action == "checkpoint":
        return {"version": table.checkpoint()}
    raise LakehouseError(f"unknown maintenance action {action.action!r}")


def maintain_table(lh: Lakehouse, name: str, dry_run: bool = False) -> list[Action]:
    """Plan ``name``'s actions and, unless ``dry_run``, do them in order. The vacuum is
    planned again after the others: a compaction or retention delete leaves files to
    remove once they are older than ``vacuum_after``."""
    try:
        planned = plan_table(lh, name)
    except Exception as exc:  # noqa: BLE001 - one table's failure does not stop the rest
        why = exc.message if isinstance(exc, LakehouseError) else f"{type(exc).__name__}: {exc}"
        return [Action(name, "plan", f"cannot plan: {why}", status="failed")]
    if dry_run:
        return planned or [_nothing(name)]
    done: list[Action] = []
    for action in planned:
        if action.action in ("vacuum", "checkpoint"):
            continue
        done.append(execute(lh, action))
    policy = lh.settings.maintenance.policy_for(name)
    table = lh.table(name)
    for check in (_vacuum, _checkpoint):
        try:
            follow = check(table, name, policy)
        except LakehouseError as exc:
            follow = Action(name, check.__name__[1:], f"cannot plan: {exc.message}", "failed")
        if follow is not None:
            done.append(execute(lh, follow))
    return done or [_nothing(name)]


def _nothing(name: str) -> Action:
    return Action(name, "none", "nothing to do", status="skipped")
