"""Files into bronze, each exactly once: CSV, JSON lines, JSON and Parquet from a folder.

A file's rows commit together with a Delta transaction identifier naming the file, so a
file is in the table exactly when its identifier is, whatever crashed when. Rows carry the
bronze metadata columns (``_source`` is the file). New columns are added to the table;
a value that does not fit its column's type is kept, as JSON, in ``_rescued_data``; a
record that cannot be read at all goes to ``<table>_quarantine`` with its raw text and
the reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.names import parse_table_name
from lakehouse.tables.writer import METADATA_COLUMNS, open_delta

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
FORMATS[".parquet"] = "parquet"
RESCUED = "_rescued_data"


@dataclass
class IngestReport:
    table: str
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    rows: int = 0
    rescued: int = 0
    quarantined: int = 0


def file_id(path: Path) -> str:
    """The transaction identifier of a file: its absolute path (as Auto Loader does, a
    file is ingested once under its name)."""
    return "file:" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]


def ingest_folder(
    lh: Lakehouse,
    folder: str | Path,
    table: str,
    *,
    source_system: str | None = None,
) -> IngestReport:
    name = parse_table_name(table)
    if name.layer != "bronze":
        raise LakehouseError(f"files are ingested into bronze, not {name.layer}")
    root = Path(folder)
    if not root.is_dir():
        raise LakehouseError(f"no folder {root} to ingest from", "check the path")
    report = IngestReport(str(name))
    quarantine = f"{name}_quarantine"
    # One look at the log for the whole folder. It may be stale if another loader runs at
    # the same time; the write itself re-checks the file's transaction id on the newest
    # version (and Delta refuses two commits of one id), so no file lands twice.
    target = open_delta(lh, name)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            continue
        txn = (file_id(path), 1)
        if target is not None and target.transaction_version(txn[0]) is not None:
            report.files_skipped.append(str(path))
            continue
        rows, bad = _read(path, fmt)
        fresh = True
        if bad:  # its own transaction id makes a re-run after a crash skip it
            written = lh.write(
                quarantine, bad, source_system=source_system, source=str(path), txn=txn
            )
            fresh = not written.skipped
            report.quarantined += 0 if written.skipped else len(bad)
        if len(rows) == 0:  # nothing readable: the quarantine holds the whole file
            (report.files_ingested if fresh else report.files_skipped).append(str(path))
            continue
        data, rescued = _fit(lh, str(name), rows)
        written = lh.write(
            str(name), data, evolve=True, source_system=source_system, source=str(path), txn=txn
        )
        if written.skipped:  # a concurrent loader committed it first
            report.files_skipped.append(str(path))
            continue
        report.rescued += rescued
        report.files_ingested.append(str(path))
        report.rows += data.num_rows
    return report


def _exists(lh: Lakehouse, table: str) -> bool:
    return lh.catalog.get(table) is not None or lh.discover(table)


def _read(path: Path, fmt: str) -> tuple[pa.Table | list[dict], list[dict]]:
    """The file's records, and the ones that could not be read, with the reason."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path), []
    if fmt == "csv":
        import pyarrow.csv as pacsv

        try:
            return pacsv.read_csv(path), []
        except pa.ArrowInvalid as exc:
            raw = path.read_text(errors="replace")
            return [], [_bad(raw, f"unreadable CSV: {exc}")]
    text = path.read_bytes()
    if fmt == "json":
        try:
            value = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return [], [_bad(text.decode(errors="replace"), f"invalid JSON: {exc}")]
        records = value if isinstance(value, list) else [value]
        good = [r for r in records if isinstance(r, dict)]
        bad = [_bad(json.dumps(r), "not a JSON object") for r in records if not isinstance(r, dict)]
        return good, bad
    good, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            bad.append(_bad(line.decode(errors="replace"), f"line {number}: invalid JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            bad.append(_bad(line.decode(errors="replace"), f"line {number}: not a JSON object"))
            continue
        good.append(record)
    return good, bad


def _bad(raw: str, reason: str) -> dict[str, Any]:
    return {"raw_payload": raw, "reason": reason}


def _fit(lh: Lakehouse, table: str, rows: pa.Table | list[dict]) -> tuple[pa.Table, int]:
    """Rows shaped for the table: a value its column's type cannot hold is moved to
    ``_rescued_data`` (JSON of column: value) and the column left null."""
    if isinstance(rows, pa.Table):
        return rows, 0
    schema = lh.table(table).schema if _exists(lh, table) else None
    types = {f.name: f.type for f in schema} if schema is not None else {}
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    columns.pop(RESCUED, None)
    arrays: dict[str, pa.Array] = {}
    rescued: list[dict[str, Any]] = [{} for _ in rows]
    for column in columns:
        if column in METADATA_COLUMNS:
            continue
        values = [row.get(column) for row in rows]
        target = types.get(column)
        try:
            arrays[column] = pa.array(values, type=target)
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        if target is None:  # a new column whose values disagree: keep it as text
            target = pa.string()
            values = [None if v is None else _text(v) for v in values]
            arrays[column] = pa.array(values, type=target)
            continue
        kept = []
        for i, value in enumerate(values):
            try:
                pa.array([value], type=target)
                kept.append(value)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                rescued[i][column] = value
                kept.append(None)
        arrays[column] = pa.array(kept, type=target)
    count = sum(1 for r in rescued if r)
    if count or RESCUED in types:
        arrays[RESCUED] = pa.array(
            [json.dumps(r, default=str) if r else None for r in rescued], pa.string()
        )
    return pa.table(arrays), count


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
