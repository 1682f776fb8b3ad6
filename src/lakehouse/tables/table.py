"""A handle on one table: its schema, versions and the operations users run on it."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

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
from lakehouse.tables.commits import commit_properties, input_mark
from lakehouse.tables.delta_format import DELTA
from lakehouse.tables.registration import after_commit

REPLAYED = "lakehouse.replayed"  # on a quarantine: the version its last finished replay read


def replay_mark(quarantine: str) -> str:
    """The transaction identifier a table's replay write carries: the version of its
    quarantine the replay read."""
    return f"lakehouse.replay:{quarantine}"


def _held(value: int | None) -> int | None:
    """A transaction number as held (a reset one, -1, is as if never committed)."""
    return value if value is not None and value >= 0 else None


def _transactions_after(dt: DeltaTable, version: int) -> set[str]:
    """The application ids of the transaction identifiers committed after ``version``
    (read from the log's commits; a table elsewhere than on a local disk, or whose commits
    were cleaned up, gives what it can)."""
    from lakehouse.tables.snapshot import is_local, local_path

    if not is_local(dt.table_uri):
        return set()
    log = Path(local_path(dt.table_uri)) / "_delta_log"
    found: set[str] = set()
    for number in range(version + 1, dt.version() + 1):
        try:
            text = (log / f"{number:020d}.json").read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            if '"txn"' in line:
                txn = json.loads(line).get("txn")
                if txn and txn.get("appId"):
                    found.add(txn["appId"])
    return found


class Table:
    """A table of the warehouse ``storage``, read through ``engine``."""

    def __init__(self, storage: Storage, engine: Engine, name: TableName) -> None:
        self.storage = storage
        self.engine = engine
        self.name = name

    def __repr__(self) -> str:
        return f"<Table {self.name} v{self.version}>"

    def __str__(self) -> str:
        return str(self.name)

    # -- state ----------------------------------------------------------------------------
    def _delta(self) -> DeltaTable:
        dt = DELTA.open(self.storage, self.name)
        if dt is None:
            raise TableNotFoundError(str(self.name), self.engine.suggest(str(self.name)))
        return dt

    @property
    def info(self) -> TableInfo:
        """The catalog's entry, brought up to date first if the table moved on without it
        (a writer killed between its commit and its catalog update)."""
        info = self.storage.catalog.get(str(self.name), with_history=True)
        dt = self._delta()
        if info is None or info.version != dt.version():
            after_commit(self.storage, self.name, dt)
            info = self.storage.catalog.get(str(self.name), with_history=True)
        assert info is not None
        return info

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(self._delta().schema().to_arrow())

    @property
    def version(self) -> int:
        return self._delta().version()

    @property
    def location(self) -> str:
        return self.storage.table_uri(self.name)

    @property
    def partition_by(self) -> list[str]:
        return list(self._delta().metadata().partition_columns)

    @property
    def constraints(self) -> dict[str, str]:
        config = self._delta().metadata().configuration
        return {
            k.removeprefix("delta.constraints."): v
            for k, v in config.items()
            if k.startswith("delta.constraints.")
        }

    def transaction_version(self, app_id: str) -> int | None:
        """The last transaction number committed for ``app_id`` (see ``write(txn=...)``);
        None if none is, or a restore took it back to before the first."""
        return _held(self._delta().transaction_version(app_id))

    def input_versions(self, inputs: list[str]) -> dict[str, int | None]:
        """The version of each input this table's rows were last computed from (see
        ``write(input_versions=...)``); None for an input never recorded."""
        dt = self._delta()
        out: dict[str, int | None] = {}
        for name in inputs:
            found = dt.transaction_version(input_mark(name))
            out[name] = found if found is not None and found >= 0 else None
        return out

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first: version, timestamp, operation, parameters, metrics."""
        out = []
        for entry in DELTA.history(self._delta(), limit):
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
        return after_commit(self.storage, self.name, self._delta())

    def _compression(self) -> str:
        info = self.storage.catalog.get(str(self.name))
        return str((info.options.get("compression") if info else None) or "zstd")

    def delete(self, predicate: str | None = None) -> dict[str, Any]:
        """Delete the rows matching a SQL predicate (all rows when none is given)."""
        dt = self._delta()
        try:
            metrics = DELTA.delete(dt, predicate, self._compression())
        except DeltaError as exc:
            raise LakehouseError(
                f"{self.name}: delete failed: {exc}", "check the predicate's SQL"
            ) from exc
        self._committed()
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
        dt = self._delta()
        target = self._version_of(dt, version)
        if inputs is None:
            inputs = self._lineage_inputs()
        companion = self._companion() if companions else None
        apps = [input_mark(n) for n in inputs]
        if companion is not None:
            apps += [input_mark(str(companion.name)), replay_mark(str(companion.name))]
        marks = self._marks_at(dt, target, apps)
        new = self._restore(dt, target, marks, version)
        if companion is not None:
            companion._follow(
                marks[input_mark(str(companion.name))],
                marks[replay_mark(str(companion.name))],
                {n: marks[input_mark(n)] for n in inputs},
            )
        return new

    def _version_of(self, dt: DeltaTable, version: int | str | datetime) -> int:
        """A version number, a version as text or a timestamp (the version then current)."""
        target: Any = version
        if isinstance(version, str) and not version.isdigit():
            target = parse_timestamp(version)
        elif isinstance(version, str):
            target = int(version)
        if isinstance(target, int):
            if not 0 <= target <= dt.version():
                raise VersionNotFoundError(
                    f"{self.name} has no version {target} (latest is {dt.version()})",
                    f"see `lakehouse history {self.name}`",
                )
            return target
        old = DeltaTable(dt.table_uri, storage_options=self.storage.storage_options)
        try:
            old.load_as_version(target)
        except DeltaError as exc:
            raise VersionNotFoundError(
                f"{self.name} has no version at {version}: {exc}",
                f"see `lakehouse history {self.name}`",
            ) from exc
        return old.version()

    def _marks_at(self, dt: DeltaTable, version: int, apps: list[str]) -> dict[str, int | None]:
        """The transaction numbers the table held for ``apps`` at ``version`` (None: none,
        -1: reset)."""
        if not apps:
            return {}
        old = DeltaTable(dt.table_uri, storage_options=self.storage.storage_options)
        old.load_as_version(version)
        return {app: old.transaction_version(app) for app in apps}

    def _restore(
        self, dt: DeltaTable, target: int, marks: dict[str, int | None], asked: Any
    ) -> int:
        """Restore to ``target`` with, in the same commit, the transaction identifiers
        ``marks`` (None or negative: as if never committed) and every other identifier
        committed after ``target`` set back to its value then: a source's files, offsets
        or batches the restore took away are not skipped as already written."""
        later = sorted(_transactions_after(dt, target) - set(marks))
        if later:
            marks = {**marks, **self._marks_at(dt, target, later)}
        txns: list[tuple[str, int]] = []
        for app, n in marks.items():
            if n is not None and n >= 0:
                txns.append((app, n))
            elif dt.transaction_version(app) not in (None, -1):
                txns.append((app, -1))
        try:
            DELTA.restore(dt, target, DELTA.commit("restore", txns))
        except DeltaError as exc:
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
        found = self.storage.catalog.get(str(name)) is not None or self.storage.holds_table(name)
        return Table(self.storage, self.engine, name) if found else None

    def _follow(
        self, paired: int | None, replayed: int | None, inputs: dict[str, int | None]
    ) -> int | None:
        """Restore this quarantine to match its table restored to a version that was
        written with quarantine version ``paired`` (-1: before the quarantine had rows)
        and holds replay ``replayed``. Returns the new version, or None if there was
        nothing to do."""
        dt = self._delta()
        latest = dt.version()
        replayed = _held(replayed)
        old = DeltaTable(dt.table_uri, storage_options=self.storage.storage_options)

        def load(version: int) -> dict[str, int | None] | None:
            try:
                old.load_as_version(version)
            except DeltaError:
                return None  # the log of that version is gone
            apps = [input_mark(n) for n in inputs] + [REPLAYED]
            return {app: old.transaction_version(app) for app in apps}

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
        return self._restore(dt, match, held, match)

    def optimize(self, target_size: int | None = None) -> dict[str, Any]:
        """Compact small files into larger ones (of up to 1 GiB unless ``target_size``)."""
        metrics = DELTA.optimize(self._delta(), target_size, self._compression())
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
        metrics = DELTA.zorder(self._delta(), columns, self._compression())
        self._committed()
        return metrics

    def vacuum(self, retain_hours: float = 168, dry_run: bool = False) -> list[str]:
        """Remove data files no version within ``retain_hours`` needs. Time travel to older
        versions stops working."""
        if retain_hours < 0:
            raise LakehouseError("retain_hours must be zero or more")
        # delta-rs counts whole hours: round up, so a file the user asked to keep is kept.
        removed = DELTA.vacuum(self._delta(), math.ceil(retain_hours), dry_run)
        if not dry_run:
            removed += self._remove_partial_uploads(retain_hours)
            self._committed()
        return removed

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

    def apply_retention(self, vacuum_hours: float = 168) -> dict[str, Any]:
        """Delete the rows older than the table's retention (by its date column, or the
        ingestion time in bronze), then vacuum files older than ``vacuum_hours``."""
        info = self.info
        days = info.retention_days
        column = info.options.get("date_column") or (
            "_ingested_at" if "_ingested_at" in self.schema.names else None
        )
        if not days or not column:
            raise LakehouseError(
                f"{self.name}: no retention to apply "
                f"({'no retention days' if not days else 'no date column'})",
                "set retention_days and a date_column for the table",
            )
        cutoff = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
        field = self.schema.field(column)
        literal = f"'{cutoff[:10]}'" if pa.types.is_date(field.type) else f"'{cutoff}'"
        metrics = self.delete(f"`{column}` < {literal}")
        removed = self.vacuum(vacuum_hours)
        return {
            "cutoff": cutoff,
            "deleted_rows": metrics.get("num_deleted_rows", 0),
            "removed_files": len(removed),
        }

    def add_constraint(self, name: str, expression: str) -> None:
        """A CHECK constraint every existing and future row must satisfy."""
        try:
            self._delta().alter.add_constraint(
                {name: expression}, commit_properties=commit_properties("constraint")
            )
        except DeltaError as exc:
            raise ConstraintViolationError(
                f"{self.name}: cannot add constraint {name} ({expression}): {exc}",
                "existing rows must satisfy it; fix them first",
            ) from exc
        self._committed()

    def drop_constraint(self, name: str) -> None:
        self._delta().alter.drop_constraint(name, raise_if_not_exists=True)
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
