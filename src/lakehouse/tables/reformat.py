"""Converting a table to the other table format (``lakehouse convert TABLE --to ...``).

The table's current rows, schema, partitioning, CHECK constraints and every application's
transaction numbers go into a new table of the other format through that format's own
create and append; the catalog entry (owner, tags, descriptions, grants, lineage) stays,
with its format and options changed. The converted table's versions start again.

The conversion holds the table's write lock alone (``write_lock.py``), so no writer
commits meanwhile (a writer that comes waits, then writes the converted table). Readers
see the old table until one atomic rename switches formats, because on a local disk a
Delta log decides first (``formats.py``):

- to Iceberg: the Iceberg table is written at the table's own location, beside the Delta
  log (its ``metadata/`` and ``data/`` folders; Iceberg files name their location, so
  they are written where they stay); moving ``_delta_log`` away switches.
- to Delta: the Delta table is written in a folder of its own beside the table (Delta
  names its files relative to the table); its data files are moved in, then its
  ``_delta_log`` last, which switches.

A failure before the switch removes what the conversion wrote and leaves the original
table as it was; what a killed conversion left is removed by the next one."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse.catalog.store import TableInfo
from lakehouse.config import TableOptions, options_for
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.names import TableName
from lakehouse.storage import Storage
from lakehouse.tables.format import TableFormat, WriteJob
from lakehouse.tables.formats import format_of, holds_table, iceberg, named
from lakehouse.tables.options import options_dict, options_from_catalog
from lakehouse.tables.prepared import Prepared
from lakehouse.tables.registration import register_found
from lakehouse.tables.schema import plan_schema, schema_columns
from lakehouse.tables.snapshot import local_path
from lakehouse.tables.write_lock import alone

ICEBERG_FOLDERS = ("metadata", "data")  # what an Iceberg table keeps at its location
DELTA_LOG = "_delta_log"


@dataclass
class Converted:
    table: str
    source: str
    target: str
    source_version: int
    """The version of the source whose rows were converted."""
    version: int
    """The converted table's version."""
    rows: int
    partition_by: list[str]
    dropped_partitions: list[str] = field(default_factory=list)
    """Partition fields the target format cannot hold (Iceberg's day, month, year of a
    column have no Delta equivalent without a column of their own)."""
    seconds: float = 0.0


def convert_table(storage: Storage, name: TableName, to: str, wait: float = 0.0) -> Converted:
    """Rewrite ``name`` in the format ``to``; waits up to ``wait`` seconds for the
    table's writers, then raises ``TableBusyError``."""
    started = time.perf_counter()
    if not storage.local:
        raise LakehouseError(
            f"{name}: convert works on a warehouse on a local disk",
            "an object store has no rename to switch formats at once",
        )
    target = named(to)  # an unknown format is refused here
    with alone(storage, name, wait):
        if not holds_table(storage, name):
            raise TableNotFoundError(str(name))
        source = format_of(storage, name)
        if source.name == target.name:
            raise LakehouseError(f"{name} is already an {to} table", "nothing to convert")
        register_found(storage, str(name))
        info = storage.catalog.get(str(name))
        folder = Path(local_path(storage.table_uri(name)))
        _clear_leftovers(storage, name, folder, source)
        handle = source.load(storage, name)
        schema = source.schema(handle)
        rows = _fit(source.scan(handle), schema)
        opts, dropped = _options(storage, name, info, source.partition_columns(handle), target)
        base = _Base(rows, opts, source.transactions(handle), source.constraints(handle))
        if target.name == "delta":
            new = _to_delta(storage, name, folder, base)
            _remove_iceberg(storage, name, folder)  # after the switch: the old table
        else:
            new = _to_iceberg(storage, name, folder, base)
        figures = target.figures(new)
        storage.catalog.reformatted(
            str(name),
            fmt=target.name,
            options=options_dict(opts),
            version=figures.version,
            row_count=figures.row_count,
            size_bytes=figures.size_bytes,
            num_files=figures.num_files,
            columns=schema_columns(figures.schema),
        )
        return Converted(
            table=str(name),
            source=source.name,
            target=target.name,
            source_version=source.version(handle),
            version=figures.version,
            rows=rows.num_rows,
            partition_by=list(opts.partition_by or []),
            dropped_partitions=dropped,
            seconds=time.perf_counter() - started,
        )


@dataclass
class _Base:
    """What the converted table starts from."""

    rows: pa.Table
    opts: TableOptions
    transactions: dict[str, int]
    constraints: dict[str, str]


def _fit(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """The rows as the table's schema types them (a format's reader may give large or
    otherwise typed columns)."""
    rows = rows.select(schema.names)
    try:
        return rows.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return rows


def _options(
    storage: Storage,
    name: TableName,
    info: TableInfo | None,
    partitions: list[str],
    target: TableFormat[Any, Any],
) -> tuple[TableOptions, list[str]]:
    """The table's options in the target format: its partitioning as the format holds it
    (a Delta partition column is an Iceberg identity field and back; a transform is
    dropped on the way to Delta, and said so)."""
    if info is not None:
        opts = TableOptions(**options_from_catalog(info.options))
    else:
        opts = options_for(name.layer, None, storage.layer_defaults)
    kept = [p for p in partitions if target.name != "delta" or "(" not in p]
    dropped = [p for p in partitions if p not in kept]
    return replace(opts, format=target.name, partition_by=tuple(kept) or None), dropped


def _build(where: Storage, name: TableName, fmt: TableFormat[Any, Any], base: _Base) -> Any:
    """The table made in ``fmt`` at ``where``'s location for it, with the rows."""
    prepared = Prepared(name, base.rows, base.opts, None, None)
    created = plan_schema(str(name), None, prepared.schema, False)
    handle = fmt.create(where, name, created, base.opts)
    for constraint, expression in base.constraints.items():
        fmt.add_constraint(handle, constraint, expression)
    handle = fmt.refresh(handle)
    plan = plan_schema(str(name), fmt.schema(handle), prepared.schema, False)
    txns = sorted(base.transactions.items())
    fmt.append(WriteJob(handle, prepared, plan, base.opts, fmt.commit("convert", txns), True))
    return fmt.refresh(handle)


def _to_iceberg(storage: Storage, name: TableName, folder: Path, base: _Base) -> Any:
    target = iceberg()
    try:
        new = _build(storage, name, target, base)
    except BaseException:
        _remove_iceberg(storage, name, folder)
        raise
    aside = folder.parent / f".{name.name}.converted{DELTA_LOG}"
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(folder / DELTA_LOG, aside)  # the switch: the table is Iceberg from here on
    for entry in folder.iterdir():
        if entry.name not in ICEBERG_FOLDERS:
            _remove(entry)
    shutil.rmtree(aside, ignore_errors=True)
    return new


def _to_delta(storage: Storage, name: TableName, folder: Path, base: _Base) -> Any:
    staging = _staging(folder, name)
    shutil.rmtree(staging, ignore_errors=True)
    target = named("delta")
    moved: list[Path] = []
    try:
        _build(_Staged(storage, name, str(staging)), name, target, base)
        for entry in staging.iterdir():
            if entry.name != DELTA_LOG:
                os.rename(entry, folder / entry.name)
                moved.append(folder / entry.name)
        os.rename(staging / DELTA_LOG, folder / DELTA_LOG)  # the switch: Delta from here on
    except BaseException:
        for entry in moved:
            _remove(entry)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return target.load(storage, name)


def _staging(folder: Path, name: TableName) -> Path:
    return folder.parent / f".{name.name}.converting"


class _Staged(Storage):
    """The warehouse's storage with one table at another location."""

    def __init__(self, storage: Storage, name: TableName, uri: str) -> None:
        self.__dict__.update(storage.__dict__)
        self._staged = (name, uri)

    def table_uri(self, name: TableName) -> str:
        staged, uri = self._staged
        return uri if name == staged else super().table_uri(name)


def _clear_leftovers(
    storage: Storage, name: TableName, folder: Path, source: TableFormat[Any, Any]
) -> None:
    """What a killed conversion left beside the table: the other format's files."""
    shutil.rmtree(_staging(folder, name), ignore_errors=True)
    shutil.rmtree(folder.parent / f".{name.name}.converted{DELTA_LOG}", ignore_errors=True)
    if source.name == "delta":
        if any((folder / part).exists() for part in ICEBERG_FOLDERS):
            _remove_iceberg(storage, name, folder)
        return
    for entry in folder.iterdir():
        if entry.name not in ICEBERG_FOLDERS:
            _remove(entry)


def _remove_iceberg(storage: Storage, name: TableName, folder: Path) -> None:
    iceberg().forget(storage, name)
    for part in ICEBERG_FOLDERS:
        shutil.rmtree(folder / part, ignore_errors=True)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
