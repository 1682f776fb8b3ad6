"""A handle on one table: its schema, versions and the operations users run on it."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse.catalog.store import TableInfo
from lakehouse.errors import (
    ConstraintViolationError,
    LakehouseError,
    TableNotFoundError,
    VersionNotFoundError,
)
from lakehouse.names import TableName
from lakehouse.sql.engine_api import Engine
from lakehouse.sql.names import parse_timestamp
from lakehouse.storage import Storage
from lakehouse.tables.commits import input_mark
from lakehouse.tables.format import CommitConflict, FormatError, TableFormat
from lakehouse.tables.formats import format_of, holds_table
from lakehouse.tables.registration import after_commit
from lakehouse.tables.snapshot import DataFile
from lakehouse.tables.write_lock import writing

REPLAYED = "lakehouse.replayed"  # on a quarantine: the version its last finished replay read


def replay_mark(quarantine: str) -> str:
    """The transaction identifier a table's replay write carries: the version of its
    quarantine the replay read."""
    return f"lakehouse.replay:{quarantine}"


def _held(value: int | None) -> int | None:
    """A transaction number as held (a reset one, -1, is as if never committed)."""
    return value if value is not None and value >= 0 else None


class Table:
    """A table of the warehouse ``storage``, read through ``engine``."""

    def __init__(self, storage: Storage, engine: Engine, name: TableName) -> None:
        self.storage = storage
        self.engine = engine
        self.name = name

    @property
    def format(self) -> TableFormat[Any, Any]:
        """The table's format, found at each use: a table converted meanwhile is in the
        other one."""
        return format_of(self.storage, self.name)

    def __repr__(self) -> str:
        return f"<Table {self.name} v{self.version}>"

    def __str__(self) -> str:
        return str(self.name)

    # -- state ----------------------------------------------------------------------------
    def _open(self) -> Any:
        """The table at its latest version, through its format."""
        handle = self.format.open(self.storage, self.name)
        if handle is None:
            raise TableNotFoundError(str(self.name), self.engine.suggest(str(self.name)))
        return handle

    @property
    def info(self) -> TableInfo:
        """The catalog's entry, brought up to date first if the table moved on without it
        (a writer killed between its commit and its catalog update)."""
        info = self.storage.catalog.get(str(self.name), with_history=True)
        handle = self._open()
        if info is None or info.version != self.format.version(handle):
            after_commit(self.storage, self.name, handle)
            info = self.storage.catalog.get(str(self.name), with_history=True)
        assert info is not None
        return info

    @property
    def schema(self) -> pa.Schema:
        return self.format.schema(self._open())

    @property
    def version(self) -> int:
        return self.format.version(self._open())

    @property
    def location(self) -> str:
        return self.storage.table_uri(self.name)

    @property
    def partition_by(self) -> list[str]:
        return self.format.partition_columns(self._open())

    @property
    def constraints(self) -> dict[str, str]:
        return self.format.constraints(self._open())

    def files(self) -> tuple[DataFile, ...]:
        """The data files of the latest version: path, partition values, rows, size."""
        return self.format.snapshot(self._open()).files

    def transaction_version(self, app_id: str) -> int | None:
        """The last transaction number committed for ``app_id`` (see ``write(txn=...)``);
        None if none is, or a restore took it back to before the first."""
        return _held(self.format.transaction_version(self._open(), app_id))

    def input_versions(self, inputs: list[str]) -> dict[str, int | None]:
        """The version of each input this table's rows were last computed from (see
        ``write(input_versions=...)``); None for an input never recorded."""
        handle = self._open()
        out: dict[str, int | None] = {}
        for name in inputs:
            found = self.format.transaction_version(handle, input_mark(name))
            out[name] = found if found is not None and found >= 0 else None
        return out

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first: version, timestamp, operation, parameters, metrics."""
        out = []
        for entry in self.format.history(self._open(), limit):
            ts = entry.get("timestamp")
            out.append(
                {
                    "version": entry.get("version"),
                    "timestamp": datetime.fromtimestamp(ts / 1000).astimezone().isoformat()
                    if ts
                    else None,
                    "operation": entry.get("operation"),
                    "parameters": entry.get("operationParameters", {}),
                    "metrics": entry.get("operationMetrics", {}),
                    "user": (entry.get("lakehouse.user") or entry.get("userName")),
                }
            )
        return out

    def schema_history(self) -> list[dict[str, Any]]:
        return self.info.schema_history

    # -- reading --------------------------------------------------------------------------
    def to_arrow(
        self, version: int | None = None, timestamp: str | datetime | None = None
    ) -> pa.Table:
        if timestamp is not None:
            ts = parse_timestamp(timestamp) if isinstance(timestamp, str) else timestamp
            version = self.engine.resolve_version(str(self.name), None, ts)
        return self.engine.read(str(self.name), version)

    def to_pandas(self, version: int | None = None) -> Any:
        return self.to_arrow(version).to_pandas()

    def to_polars(self, version: int | None = None) -> Any:
        import polars as pl

        return pl.from_arrow(self.to_arrow(version))

    def count(self) -> int:
        return self.engine.snapshot(str(self.name)).row_count

    # -- changes --------------------------------------------------------------------------
    def _committed(self) -> int:
        """Record the table's new version and figures in the catalog; return the version."""
        return after_commit(self.storage, self.name, self._open())

    def _compression(self) -> str:
        info = self.storage.catalog.get(str(self.name))
        return str((info.options.get("compression") if info else None) or "zstd")

    def delete(self, predicate: str | None = None) -> dict[str, Any]:
        """Delete the rows matching a SQL predicate (all rows when none is given)."""
        try:
            with writing(self.storage, self.name):
                metrics = self.format.delete(self._open(), predicate, self._compression())
                self._committed()
        except CommitConflict:
            raise  # another writer committed meanwhile: the caller may try again
        except FormatError as exc:
            raise LakehouseError(
                f"{self.name}: delete failed: {exc}", "check the predicate's SQL"
            ) from exc
        return metrics

    def restore(
        self,
        version: int | str | datetime,
        inputs: list[str] | None = None,
        *,
        companions: bool = True,
    ) -> int:
        """Make the table's content what it was at an earlier version (a new commit).

        The versions of ``inputs`` the table records (see ``input_versions``) go back to
        what they were at that version, in the same commit, so a pipeline recomputes what
        the restore took away. ``inputs`` defaults to the tables the catalog's lineage says
        this one is computed from.

        With ``companions``, the table's quarantine (``<table>_quarantine``, written by the
        same runs) goes back too: to the version the restored version was written with
        (pipeline writes record it), moved on to the end of a replay the restored version
        holds. Every row is then where the next run expects it: neither lost nor
        quarantined twice."""
        handle = self._open()
        target = self._version_of(handle, version)
        if inputs is None:
            inputs = self._lineage_inputs()
        companion = self._companion() if companions else None
        apps = [input_mark(n) for n in inputs]
        if companion is not None:
            apps += [input_mark(str(companion.name)), replay_mark(str(companion.name))]
        marks = self._marks_at(target, apps)
        new = self._restore(handle, target, marks, version)
        if companion is not None:
            companion._follow(
                marks[input_mark(str(companion.name))],
                marks[replay_mark(str(companion.name))],
                {n: marks[input_mark(n)] for n in inputs},
            )
        return new

    def _version_of(self, handle: Any, version: int | str | datetime) -> int:
        """A version number, a version as text or a timestamp (the version then current)."""
        target: Any = version
        if isinstance(version, str) and not version.isdigit():
            target = parse_timestamp(version)
        elif isinstance(version, str):
            target = int(version)
        if isinstance(target, int):
            latest = self.format.version(handle)
            if not 0 <= target <= latest:
                raise VersionNotFoundError(
                    f"{self.name} has no version {target} (latest is {latest})",
                    f"see `lakehouse history {self.name}`",
                )
            return target
        return self.engine.resolve_version(str(self.name), None, target)

    def _marks_at(self, version: int, apps: list[str]) -> dict[str, int | None]:
        """The transaction numbers the table held for ``apps`` at ``version`` (None: none,
        -1: reset)."""
        if not apps:
            return {}
        held = self.format.transactions_at(self.storage, self.name, version, apps)
        if held is None:
            raise VersionNotFoundError(
                f"{self.name} version {version} cannot be read any more",
                "its log was cleaned up; restore to a later version",
            )
        return held

    def _restore(self, handle: Any, target: int, marks: dict[str, int | None], asked: Any) -> int:
        """Restore to ``target`` with, in the same commit, the transaction identifiers
        ``marks`` (None or negative: as if never committed) and every other identifier
        committed after ``target`` set back to its value then: a source's files, offsets
        or batches the restore took away are not skipped as already written."""
        later = sorted(self.format.transactions_after(handle, target) - set(marks))
        if later:
            marks = {**marks, **self._marks_at(target, later)}
        txns: list[tuple[str, int]] = []
        for app, n in marks.items():
            if n is not None and n >= 0:
                txns.append((app, n))
            elif self.format.transaction_version(handle, app) not in (None, -1):
                txns.append((app, -1))
        try:
            with writing(self.storage, self.name):
                self.format.restore(handle, target, self.format.commit("restore", txns))
        except FormatError as exc:
            raise LakehouseError(f"{self.name}: restore to {asked} failed: {exc}") from exc
        return self._committed()

    def _lineage_inputs(self) -> list[str]:
        """The tables this one is computed from, as the catalog's lineage records them."""
        name = str(self.name)
        return sorted(
            {
                e["source_table"]
                for e in self.storage.catalog.lineage_edges(name)
                if e["target_table"] == name and e.get("source_column") is None
            }
        )

    def _companion(self) -> Table | None:
        """The table's quarantine, if it has one."""
        if self.name.name.endswith("_quarantine"):
            return None
        name = TableName(self.name.layer, self.name.name + "_quarantine")
        found = self.storage.catalog.get(str(name)) is not None or holds_table(self.storage, name)
        return Table(self.storage, self.engine, name) if found else None

    def _follow(
        self, paired: int | None, replayed: int | None, inputs: dict[str, int | None]
    ) -> int | None:
        """Restore this quarantine to match its table restored to a version that was
        written with quarantine version ``paired`` (-1: before the quarantine had rows)
        and holds replay ``replayed``. Returns the new version, or None if there was
        nothing to do."""
        handle = self._open()
        latest = self.format.version(handle)
        replayed = _held(replayed)
        apps = [input_mark(n) for n in inputs] + [REPLAYED]

        def load(version: int) -> dict[str, int | None] | None:
            # None: the log of that version is gone
            return self.format.transactions_at(self.storage, self.name, version, apps)

        match = None
        if paired is not None and paired <= latest:
            match = max(paired, 0)
            held = load(match)
            if held is None:
                return None
            if replayed is not None and _held(held[REPLAYED]) != replayed:
                # The restored version is (or follows) a replay: the quarantine as that
                # replay left it.
                for version in range(match + 1, latest + 1):
                    found = load(version)
                    if found is not None and _held(found[REPLAYED]) == replayed:
                        match, held = version, found
                        break
        else:
            # Written before tables recorded their quarantine's version: the latest one
            # holding no input version beyond the table's, and the same replays.
            for version in range(latest, -1, -1):
                held = load(version)
                if held is None:
                    return None
                if _held(held[REPLAYED]) != replayed:
                    continue
                if all(
                    _held(held[input_mark(n)]) is None
                    or (v is not None and v >= 0 and held[input_mark(n)] <= v)  # type: ignore[operator]
                    for n, v in inputs.items()
                ):
                    match = version
                    break
        if match is None or match == latest:
            return None
        held = load(match)
        assert held is not None
        return self._restore(handle, match, held, match)

    def optimize(self, target_size: int | None = None) -> dict[str, Any]:
        """Compact small files into larger ones (of up to 1 GiB unless ``target_size``)."""
        with writing(self.storage, self.name):
            metrics = self.format.optimize(self._open(), target_size, self._compression())
            self._committed()
        return metrics

    def zorder(self, columns: list[str]) -> dict[str, Any]:
        """Rewrite the files clustered on ``columns`` so filters on them skip more data."""
        unknown = [c for c in columns if c not in self.schema.names]
        if unknown:
            raise LakehouseError(
                f"{self.name}: no column {', '.join(unknown)} to z-order by",
                f"the columns are {', '.join(self.schema.names)}",
            )
        with writing(self.storage, self.name):
            metrics = self.format.zorder(self._open(), columns, self._compression())
            self._committed()
        return metrics

    def vacuum(
        self,
        retain_hours: float = 168,
        dry_run: bool = False,
        unreferenced_hours: float | None = None,
    ) -> list[str]:
        """Remove data files no version within ``retain_hours`` needs. Time travel to older
        versions stops working.

        Files no version ever referenced (left by a killed write, or being written by a
        writer that has not committed yet) are removed once older than
        ``unreferenced_hours`` (default ``retain_hours``): give more to leave a concurrent
        writer's files alone."""
        if retain_hours < 0:
            raise LakehouseError("retain_hours must be zero or more")
        # delta-rs counts whole hours: round up, so a file the user asked to keep is kept.
        hours = math.ceil(retain_hours)
        floor = hours if unreferenced_hours is None else max(hours, math.ceil(unreferenced_hours))
        with writing(self.storage, self.name):  # not while the table is converted
            return self._vacuum(hours, floor, dry_run)

    def _vacuum(self, hours: int, floor: int, dry_run: bool) -> list[str]:
        if floor == hours:
            removed = self.format.vacuum(self._open(), hours, dry_run)
        else:
            removed = self.format.vacuum(self._open(), hours, dry_run, full=False)
            stray = self.format.vacuum(self._open(), floor, True)
            if stray and not dry_run:
                stray = self.format.vacuum(self._open(), floor, False)
            removed += [f for f in stray if f not in set(removed)]
        if not dry_run:
            removed += self._remove_partial_uploads(floor)
            self._committed()
        return removed

    def checkpoint(self) -> int:
        """Write a checkpoint of the latest version (readers then load the table without
        replaying its log); returns that version."""
        handle = self._open()
        self.format.checkpoint(handle)
        return self.format.version(handle)

    def last_checkpoint(self) -> int | None:
        """The version of the table's latest checkpoint, if it has one."""
        return self.format.last_checkpoint(self.storage, self.name)

    def _remove_partial_uploads(self, retain_hours: float) -> list[str]:
        """A write killed while a data file was being written leaves it under a temporary
        name (``part-...parquet#1``) that no vacuum of delta-rs looks at."""
        if not self.storage.local:
            return []
        cutoff = time.time() - math.ceil(retain_hours) * 3600
        removed = []
        for path in Path(self.location).rglob("*.parquet#*"):
            if path.is_file() and path.stat().st_mtime <= cutoff:
                path.unlink(missing_ok=True)
                removed.append(str(path))
        return removed

    def expired(self) -> tuple[str, str] | None:
        """The predicate matching the rows older than the table's retention (by its date
        column, or the ingestion time in bronze) and the cutoff; None when the table has
        no retention days or no such column."""
        info = self.info
        days = info.retention_days
        schema = self.schema
        column = info.options.get("date_column") or (
            "_ingested_at" if "_ingested_at" in schema.names else None
        )
        if not days or not column or column not in schema.names:
            return None
        cutoff = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
        literal = (
            f"'{cutoff[:10]}'" if pa.types.is_date(schema.field(column).type) else f"'{cutoff}'"
        )
        return f"`{column}` < {literal}", cutoff

    def apply_retention(self, vacuum_hours: float = 168) -> dict[str, Any]:
        """Delete the rows older than the table's retention (by its date column, or the
        ingestion time in bronze), then vacuum files older than ``vacuum_hours``."""
        found = self.expired()
        if found is None:
            info = self.info
            raise LakehouseError(
                f"{self.name}: no retention to apply "
                f"({'no retention days' if not info.retention_days else 'no date column'})",
                "set retention_days and a date_column for the table",
            )
        predicate, cutoff = found
        metrics = self.delete(predicate)
        removed = self.vacuum(vacuum_hours)
        return {
            "cutoff": cutoff,
            "deleted_rows": metrics.get("num_deleted_rows", 0),
            "removed_files": len(removed),
        }

    def add_constraint(self, name: str, expression: str) -> None:
        """A CHECK constraint every existing and future row must satisfy."""
        try:
            self.format.add_constraint(self._open(), name, expression)
        except FormatError as exc:
            raise ConstraintViolationError(
                f"{self.name}: cannot add constraint {name} ({expression}): {exc}",
                "existing rows must satisfy it; fix them first",
            ) from exc
        self._committed()

    def drop_constraint(self, name: str) -> None:
        try:
            self.format.drop_constraint(self._open(), name)
        except FormatError as exc:
            raise LakehouseError(
                f"{self.name}: no constraint {name} to drop",
                f"its constraints are {', '.join(self.constraints) or 'none'}",
            ) from exc
        self._committed()

    def set(
        self,
        *,
        owner: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        column_tags: dict[str, list[str]] | None = None,
        retention_days: int | None = None,
    ) -> None:
        """Change what the catalog says of the table."""
        fields: dict[str, Any] = {}
        for key, value in dict(
            owner=owner,
            description=description,
            tags=tags,
            column_tags=column_tags,
            retention_days=retention_days,
        ).items():
            if value is not None:
                fields[key] = value
        if column_tags:
            unknown = [c for c in column_tags if c not in self.schema.names]
            if unknown:
                raise LakehouseError(f"{self.name}: no column {', '.join(unknown)} to tag")
        self.storage.catalog.update_info(str(self.name), **fields)
