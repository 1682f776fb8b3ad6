"""A handle on one table: its schema, versions and the operations users run on it."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable, Transaction, WriterProperties
from deltalake.exceptions import DeltaError

from lakehouse.errors import (
    ConstraintViolationError,
    LakehouseError,
    TableNotFoundError,
    VersionNotFoundError,
)
from lakehouse.names import TableName
from lakehouse.sql.names import parse_timestamp
from lakehouse.tables.writer import (
    TARGET_FILE_BYTES,
    after_commit,
    commit_properties,
    input_mark,
    open_delta,
    writer_properties,
)

if TYPE_CHECKING:
    from lakehouse.catalog import TableInfo
    from lakehouse.warehouse import Lakehouse


class Table:
    def __init__(self, lh: Lakehouse, name: TableName) -> None:
        self._lh = lh
        self.name = name

    def __repr__(self) -> str:
        return f"<Table {self.name} v{self.version}>"

    def __str__(self) -> str:
        return str(self.name)

    # -- state ----------------------------------------------------------------------------
    def _delta(self) -> DeltaTable:
        dt = open_delta(self._lh, self.name)
        if dt is None:
            raise TableNotFoundError(str(self.name), self._lh.engine.suggest(str(self.name)))
        return dt

    @property
    def info(self) -> TableInfo:
        """The catalog's entry, brought up to date first if the table moved on without it
        (a writer killed between its commit and its catalog update)."""
        info = self._lh.catalog.get(str(self.name), with_history=True)
        dt = self._delta()
        if info is None or info.version != dt.version():
            after_commit(self._lh, self.name, dt)
            info = self._lh.catalog.get(str(self.name), with_history=True)
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
        return self._lh.table_uri(self.name)

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
        """The last transaction number committed for ``app_id`` (see ``write(txn=...)``)."""
        return self._delta().transaction_version(app_id)

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
        for entry in self._delta().history(limit):
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
            version = self._lh.engine._resolve_version(str(self.name), None, ts)
        return self._lh.engine.read(str(self.name), version)

    def to_pandas(self, version: int | None = None) -> Any:
        return self.to_arrow(version).to_pandas()

    def to_polars(self, version: int | None = None) -> Any:
        import polars as pl

        return pl.from_arrow(self.to_arrow(version))

    def count(self) -> int:
        return self._lh.engine.snapshot(str(self.name)).row_count

    # -- changes --------------------------------------------------------------------------
    def _committed(self) -> int:
        """Record the table's new version and figures in the catalog; return the version."""
        return after_commit(self._lh, self.name, self._delta())

    def _writer_properties(self) -> WriterProperties:
        info = self._lh.catalog.get(str(self.name))
        compression = (info.options.get("compression") if info else None) or "zstd"
        return writer_properties(compression)

    def delete(self, predicate: str | None = None) -> dict[str, Any]:
        """Delete the rows matching a SQL predicate (all rows when none is given)."""
        dt = self._delta()
        try:
            metrics = dt.delete(
                predicate,
                writer_properties=self._writer_properties(),
                commit_properties=commit_properties("delete"),
            )
        except DeltaError as exc:
            raise LakehouseError(
                f"{self.name}: delete failed: {exc}", "check the predicate's SQL"
            ) from exc
        self._committed()
        return dict(metrics)

    def restore(self, version: int | str | datetime, inputs: list[str] | None = None) -> int:
        """Make the table's content what it was at an earlier version (a new commit).

        The versions of ``inputs`` the table records (see ``input_versions``) go back to
        what they were at that version, in the same commit, so a pipeline recomputes what
        the restore took away."""
        dt = self._delta()
        target: Any = version
        if isinstance(version, str) and not version.isdigit():
            target = parse_timestamp(version)
        elif isinstance(version, str):
            target = int(version)
        if isinstance(target, int) and not 0 <= target <= dt.version():
            raise VersionNotFoundError(
                f"{self.name} has no version {target} (latest is {dt.version()})",
                f"see `lakehouse history {self.name}`",
            )
        marks = None
        if inputs:
            old = DeltaTable(dt.table_uri, storage_options=self._lh.storage_options)
            old.load_as_version(target)
            marks = []
            for name in inputs:
                found = old.transaction_version(input_mark(name))
                marks.append(Transaction(input_mark(name), -1 if found is None else found))
        try:
            commit = commit_properties("restore", app_transactions=marks)
            dt.restore(target, commit_properties=commit)
        except DeltaError as exc:
            raise LakehouseError(f"{self.name}: restore to {version} failed: {exc}") from exc
        return self._committed()

    def optimize(self, target_size: int | None = None) -> dict[str, Any]:
        """Compact small files into larger ones (of up to 1 GiB unless ``target_size``)."""
        metrics = self._delta().optimize.compact(
            target_size=target_size or TARGET_FILE_BYTES,
            writer_properties=self._writer_properties(),
            commit_properties=commit_properties("optimize"),
        )
        self._committed()
        return dict(metrics)

    def zorder(self, columns: list[str]) -> dict[str, Any]:
        """Rewrite the files clustered on ``columns`` so filters on them skip more data."""
        unknown = [c for c in columns if c not in self.schema.names]
        if unknown:
            raise LakehouseError(
                f"{self.name}: no column {', '.join(unknown)} to z-order by",
                f"the columns are {', '.join(self.schema.names)}",
            )
        metrics = self._delta().optimize.z_order(
            columns,
            target_size=TARGET_FILE_BYTES,
            writer_properties=self._writer_properties(),
            commit_properties=commit_properties("zorder"),
        )
        self._committed()
        return dict(metrics)

    def vacuum(self, retain_hours: float = 168, dry_run: bool = False) -> list[str]:
        """Remove data files no version within ``retain_hours`` needs. Time travel to older
        versions stops working."""
        if retain_hours < 0:
            raise LakehouseError("retain_hours must be zero or more")
        # delta-rs counts whole hours: round up, so a file the user asked to keep is kept.
        # full=True also removes files no version ever referenced (left by killed writes).
        files = self._delta().vacuum(
            retention_hours=math.ceil(retain_hours),
            dry_run=dry_run,
            enforce_retention_duration=False,
            full=True,
            commit_properties=commit_properties("vacuum"),
        )
        removed = list(files)
        if not dry_run:
            removed += self._remove_partial_uploads(retain_hours)
            self._committed()
        return removed

    def _remove_partial_uploads(self, retain_hours: float) -> list[str]:
        """A write killed while a data file was being written leaves it under a temporary
        name (``part-...parquet#1``) that no vacuum of delta-rs looks at."""
        if not self._lh.local:
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
        self._lh.catalog.update_info(str(self.name), **fields)
