"""Files into bronze, each exactly once: CSV, JSON lines, JSON and Parquet from a folder.

A file's rows commit together with a Delta transaction identifier naming the file, so a
file is in the table exactly when its identifier is, whatever crashed when. Rows carry the
bronze metadata columns (``_source`` is the file). New columns are added to the table;
a value that does not fit its column's type is kept, as JSON, in ``_rescued_data``; a
record that cannot be read at all goes to ``<table>_quarantine`` with its raw text and
the reason. Files and folders whose names start with ``_`` or ``.`` are not data (markers,
manifests, files still being written) and are left alone.

CSV and Parquet files are read whole into Arrow; JSON lines files as ``jsonlines`` reads
them (whole where it can, line by line where single values must be rescued). The next file
is read while the current one is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.ingest import jsonlines
from lakehouse.names import TableName, parse_table_name
from lakehouse.tables.writer import open_delta

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
FORMATS[".parquet"] = "parquet"
RESCUED = jsonlines.RESCUED
SAMPLE = 5  # unreadable records kept in the report, for quality results
SAMPLE_TEXT = 200  # characters of a sampled record's raw text


@dataclass
class IngestReport:
    table: str
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    rows: int = 0
    rescued: int = 0
    quarantined: int = 0
    bad_sample: list[dict[str, Any]] = field(default_factory=list)  # file, reason, raw text


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
    on_file: Callable[[Path, int], None] | None = None,
    options: dict[str, Any] | None = None,
) -> IngestReport:
    """Ingest every data file under ``folder`` into the bronze ``table`` that is not in it
    yet. ``on_file(path, rows)`` is called after each file (rows 0 for a file ingested
    before), e.g. to advance a progress bar. ``options`` are the table's options
    (``description``, ``tags``, ``partition_by``...) for ``Lakehouse.write``."""
    name = parse_table_name(table)
    if name.layer != "bronze":
        raise LakehouseError(f"files are ingested into bronze, not {name.layer}")
    root = Path(folder)
    if not root.is_dir():
        raise LakehouseError(f"no folder {root} to ingest from", "check the path")
    report = IngestReport(str(name))
    # One look at the log for the whole folder. It may be stale if another loader runs at
    # the same time; the write itself re-checks the file's transaction id on the newest
    # version (and Delta refuses two commits of one id), so no file lands twice.
    target = open_delta(lh, name)
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and _is_data(p, root)):
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is not None:
            txn = (file_id(path), 1)
            done = target is not None and (target.transaction_version(txn[0]) or -1) >= 1
            files.append((path, fmt, txn, done))
    # The next file is read while this one is written (reading does not depend on the
    # table; shaping the rows to the table's schema waits for the write before).
    upcoming = iter([(path, fmt) for path, fmt, _, done in files if not done])
    reads: dict[Path, Future[Any]] = {}
    with ThreadPoolExecutor(max_workers=1) as reader:

        def read_ahead() -> None:
            following = next(upcoming, None)
            if following is not None:
                reads[following[0]] = reader.submit(_read_file, *following)

        read_ahead()
        for path, _fmt, txn, done in files:
            rows_before = report.rows
            if done:
                report.files_skipped.append(str(path))
            else:
                read = reads.pop(path).result()
                read_ahead()
                _ingest_file(lh, name, path, txn, read, source_system, report, options or {})
            if on_file is not None:
                on_file(path, report.rows - rows_before)
    return report


def _read_file(path: Path, fmt: str) -> jsonlines.Parsed | tuple[pa.Table | list[dict], list]:
    if fmt == "jsonl":
        return jsonlines.parse(pa.memory_map(str(path)).read_buffer())
    return _read(path, fmt)


def _ingest_file(
    lh: Lakehouse,
    name: TableName,
    path: Path,
    txn: tuple[str, int],
    read: jsonlines.Parsed | tuple[pa.Table | list[dict], list[dict]],
    source_system: str | None,
    report: IngestReport,
    options: dict[str, Any],
) -> None:
    if isinstance(read, jsonlines.Parsed):
        records = jsonlines.shape(lh, str(name), read)
        data, rescued = records.rows, records.rescued
        bad = [_bad(b.raw, f"line {b.index + 1}: {b.reason}") for b in records.bad]
    else:
        rows, bad = read
        data, rescued = jsonlines.fit_rows(lh, str(name), rows)
    fresh = True
    if bad:  # its own transaction id makes a re-run after a crash skip it
        written = lh.write(
            f"{name}_quarantine",
            bad,
            source_system=source_system,
            source=str(path),
            txn=txn,
            description=f"Records of {name} that could not be read: raw text and reason",
        )
        fresh = not written.skipped
        if fresh:
            report.quarantined += len(bad)
            room = SAMPLE - len(report.bad_sample)
            report.bad_sample += [
                {"file": path.name, "reason": b["reason"], "raw": b["raw_payload"][:SAMPLE_TEXT]}
                for b in bad[: max(room, 0)]
            ]
    if data.num_rows == 0:  # nothing readable: the quarantine holds the whole file
        (report.files_ingested if fresh else report.files_skipped).append(str(path))
        return
    written = lh.write(
        str(name),
        data,
        evolve=True,
        source_system=source_system,
        source=str(path),
        txn=txn,
        **options,
    )
    if written.skipped:  # a concurrent loader committed it first
        report.files_skipped.append(str(path))
        return
    report.rescued += rescued
    report.files_ingested.append(str(path))
    report.rows += data.num_rows


def _is_data(path: Path, root: Path) -> bool:
    """Not a marker, manifest or file being written: no part of its path under the folder
    starts with ``_`` or ``.``."""
    return not any(part.startswith(("_", ".")) for part in path.relative_to(root).parts)


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
    # JSON (JSON lines are read by jsonlines)
    text = path.read_bytes()
    try:
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [_bad(text.decode(errors="replace"), f"invalid JSON: {exc}")]
    records = value if isinstance(value, list) else [value]
    good = [r for r in records if isinstance(r, dict)]
    bad = [_bad(json.dumps(r), "not a JSON object") for r in records if not isinstance(r, dict)]
    return good, bad


def _bad(raw: str, reason: str) -> dict[str, Any]:
    return {"raw_payload": raw, "reason": reason}
