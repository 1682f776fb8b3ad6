"""Files into bronze, each exactly once: CSV, JSON lines, JSON and Parquet from a folder.

A file's rows commit together with a Delta transaction identifier naming the file, so a
file is in the table exactly when its identifier is, whatever crashed when. Rows carry the
bronze metadata columns (``_source`` is the file). New columns are added to the table;
a value that does not fit its column's type is kept, as JSON, in ``_rescued_data``; a
record that cannot be read at all goes to ``<table>_quarantine`` with its raw text and
the reason. Files and folders whose names start with ``_`` or ``.`` are not data (markers,
manifests, files still being written) and are left alone.

CSV and Parquet files are read whole into Arrow. So are JSON lines files: Arrow parses the
file; if a line is not a JSON object, DuckDB finds the lines that are not and those go to
the quarantine (with the reason Python's parser gives), the rest is parsed whole. Only a
file whose values do not fit one type per column (or the table's types) is read line by
line in Python, so that single values can be rescued. The next file is read while the
current one is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.names import TableName, parse_table_name
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
    on_file: Callable[[Path, int], None] | None = None,
) -> IngestReport:
    """Ingest every data file under ``folder`` into the bronze ``table`` that is not in it
    yet. ``on_file(path, rows)`` is called after each file (rows 0 for a file ingested
    before), e.g. to advance a progress bar."""
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
            done = target is not None and target.transaction_version(txn[0]) is not None
            files.append((path, fmt, txn, done))
    # The next file is read while this one is written (reading does not depend on the
    # table; shaping the rows to the table's schema waits for the write before).
    upcoming = iter([(path, fmt) for path, fmt, _, done in files if not done])
    reads: dict[Path, Future[_Read]] = {}
    with ThreadPoolExecutor(max_workers=1) as reader:

        def read_ahead() -> None:
            following = next(upcoming, None)
            if following is not None:
                reads[following[0]] = reader.submit(_read_file, *following)

        read_ahead()
        for path, fmt, txn, done in files:
            rows_before = report.rows
            if done:
                report.files_skipped.append(str(path))
            else:
                read = reads.pop(path).result()
                read_ahead()
                _ingest_file(lh, name, path, fmt, txn, read, source_system, report)
            if on_file is not None:
                on_file(path, report.rows - rows_before)
    return report


@dataclass
class _Read:
    rows: pa.Table | list[dict]
    bad: list[dict]
    whole: bool = False  # JSON lines read whole: the rows still need _fit_table


def _read_file(path: Path, fmt: str) -> _Read:
    if fmt == "jsonl":
        whole = _read_json_lines(path)
        if whole is not None:
            return _Read(whole[0], whole[1], whole=True)
    return _Read(*_read(path, fmt))


def _ingest_file(
    lh: Lakehouse,
    name: TableName,
    path: Path,
    fmt: str,
    txn: tuple[str, int],
    read: _Read,
    source_system: str | None,
    report: IngestReport,
) -> None:
    rows, bad = read.rows, read.bad
    if read.whole:
        assert isinstance(rows, pa.Table)
        fitted = _fit_table(lh, str(name), rows)
        if fitted is None:  # line by line, so that single values can be rescued
            rows, bad = _read(path, fmt)
        else:
            rows = fitted
    fresh = True
    if bad:  # its own transaction id makes a re-run after a crash skip it
        written = lh.write(
            f"{name}_quarantine", bad, source_system=source_system, source=str(path), txn=txn
        )
        fresh = not written.skipped
        report.quarantined += 0 if written.skipped else len(bad)
    if len(rows) == 0:  # nothing readable: the quarantine holds the whole file
        (report.files_ingested if fresh else report.files_skipped).append(str(path))
        return
    data, rescued = _fit(lh, str(name), rows)
    written = lh.write(
        str(name), data, evolve=True, source_system=source_system, source=str(path), txn=txn
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


BLOCK_SIZE = 16 << 20  # Arrow parses JSON in blocks; a line must fit in one


def _read_json_lines(path: Path) -> tuple[pa.Table, list[dict]] | None:
    """A JSON lines file read whole: its records as Arrow, typed as the per-line reader
    would type them, and the lines that are not JSON objects, with the per-line reader's
    reasons. None when only the per-line reader can say what the file holds: a column with
    values of several types, nested values, a line Arrow and Python disagree on."""
    data = pa.memory_map(str(path)).read_buffer()
    raw = np.frombuffer(data, np.uint8)
    if raw.size == 0:
        return None
    starts = np.concatenate([[0], np.flatnonzero(raw == 10) + 1])
    starts = starts[:-1] if starts[-1] == raw.size else starts
    large = raw.size >= 2**31  # the lines as one string array (64-bit offsets if large)
    offsets = np.append(starts, raw.size).astype(np.int64 if large else np.int32)
    kind = pa.LargeStringArray if large else pa.StringArray
    lines = kind.from_buffers(len(starts), pa.py_buffer(offsets), data)
    try:  # Arrow's JSON parser takes any bytes; Python's rejects what is not UTF-8
        lines.validate(full=True)
    except pa.ArrowInvalid:
        return None
    table = _parse_json_lines(data)
    # Arrow also reads two objects on one line; Python does not. When every line starts an
    # object and there are as many rows as lines, each line was one object.
    if table is not None and table.num_rows == starts.size and (raw[starts] == ord("{")).all():
        return table, []
    found = _without_bad_lines(data, raw, offsets, lines)
    if found is None:
        return None
    good, bad = found
    if not bad:  # each line is one object (or empty): Arrow read them, or gave up on types
        return None if table is None else (table, [])
    table = _parse_json_lines(good)
    return None if table is None else (table, bad)


def _parse_json_lines(data: pa.Buffer) -> pa.Table | None:
    import pyarrow.json as pajson

    options = pajson.ReadOptions(block_size=BLOCK_SIZE)
    try:
        table = pajson.read_json(pa.BufferReader(data), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    # Arrow reads text that looks like a time as a timestamp; Python's json keeps text.
    timed = [f.name for f in table.schema if _is_time(f.type)]
    if timed:
        as_text = pajson.ParseOptions(
            explicit_schema=pa.schema([pa.field(c, pa.string()) for c in timed]),
            unexpected_field_behavior="infer",
        )
        order = table.column_names
        try:
            table = pajson.read_json(
                pa.BufferReader(data), read_options=options, parse_options=as_text
            ).select(order)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):
            return None
    if table.num_columns == 0 or any(_unlike_python(c) for c in table.columns):
        return None
    return table


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t)


def _unlike_python(column: pa.ChunkedArray) -> bool:
    """A column the per-line reader would type differently: nested values (typed from
    Python objects another way), or numbers beyond 64-bit integers (Arrow makes them
    floats, the per-line reader keeps such a column as text)."""
    t = column.type
    if pa.types.is_nested(t) or _is_time(t):
        return True
    if pa.types.is_floating(t) and column.null_count < len(column):
        import pyarrow.compute as pc

        largest = pc.max(pc.abs(column)).as_py()
        return largest is not None and not largest < 2.0**63
    return False


def _without_bad_lines(
    data: pa.Buffer, raw: np.ndarray, offsets: np.ndarray, lines: pa.Array
) -> tuple[pa.Buffer, list[dict]] | None:
    """The file without the lines that are not JSON objects, and those lines as quarantine
    records. DuckDB checks every line; Python's parser then gives the reason for the few
    it rejected (and has the last word: if it reads one as an object, the file is left to
    the per-line reader). None also when line numbers could differ from the per-line
    reader's (a carriage return that ends a line alone)."""
    returns = np.count_nonzero(raw == 13)
    if returns and returns != np.count_nonzero((raw[:-1] == 13) & (raw[1:] == 10)):
        return None
    suspects = _not_objects(lines)
    bad: list[dict] = []
    for i in suspects.tolist():
        line = data[int(offsets[i]) : int(offsets[i + 1])].to_pybytes().rstrip(b"\n")
        line = line[:-1] if line.endswith(b"\r") else line
        if not line.strip():
            continue  # an empty line: skipped, as the per-line reader does
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            bad.append(_bad(line.decode(errors="replace"), f"line {i + 1}: invalid JSON: {exc}"))
            continue
        if isinstance(record, dict):
            return None
        bad.append(_bad(line.decode(errors="replace"), f"line {i + 1}: not a JSON object"))
    keep = np.ones(len(lines), bool)
    keep[suspects] = False
    kept = lines.filter(pa.array(keep))
    ends = np.frombuffer(kept.buffers()[1], offsets.dtype)[
        kept.offset : kept.offset + len(kept) + 1
    ]
    return kept.buffers()[2][int(ends[0]) : int(ends[-1])], bad


def _not_objects(lines: pa.Array) -> np.ndarray:
    """The positions of the lines that are not one JSON object each (empty ones too)."""
    import duckdb

    numbered = pa.table({"i": pa.array(np.arange(len(lines)), pa.int64()), "line": lines})  # noqa: F841
    con = duckdb.connect()
    try:
        found = con.sql(
            """
            SELECT i FROM numbered
            WHERE NOT coalesce(
                CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END, false)
            ORDER BY i
            """
        ).fetchnumpy()["i"]
    finally:
        con.close()
    return np.asarray(found, np.int64)


def _fit_table(lh: Lakehouse, table: str, data: pa.Table) -> pa.Table | None:
    """Records read whole, shaped as the per-line reader shapes them; None when a column's
    values do not all fit the table's type for it (only the per-line reader can rescue a
    single value)."""
    schema = lh.table(table).schema if _exists(lh, table) else None
    types = {f.name: f.type for f in schema} if schema is not None else {}
    columns: dict[str, pa.ChunkedArray | pa.Array] = {}
    for column, values in zip(data.column_names, data.columns, strict=True):
        if column in METADATA_COLUMNS or column == RESCUED:
            continue
        target = types.get(column)
        if target is None and pa.types.is_null(values.type):
            continue  # a new column of nulls only: it gets a type with its first value
        if target is None or values.type == target:
            columns[column] = values
        elif pa.types.is_null(values.type):
            columns[column] = pa.nulls(len(values), target)
        elif pa.types.is_integer(values.type) and (
            pa.types.is_integer(target) or pa.types.is_floating(target)
        ):
            try:  # a safe cast fails where Python's conversion would
                columns[column] = values.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None
        else:
            return None
    if not columns:
        return None
    if RESCUED in types:
        columns[RESCUED] = pa.nulls(data.num_rows, pa.string())
    return pa.table(columns)


def _bad(raw: str, reason: str) -> dict[str, Any]:
    return {"raw_payload": raw, "reason": reason}


def _fit(lh: Lakehouse, table: str, rows: pa.Table | list[dict]) -> tuple[pa.Table, int]:
    """Rows shaped for the table: a value its column's type cannot hold is moved to
    ``_rescued_data`` (JSON of column: value) and the column left null. A column the table
    does not have whose values are all null is left out (it has no type to take yet)."""
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
            array = pa.array(values, type=target)
            if not pa.types.is_null(array.type):  # a new column of nulls only: no type yet
                arrays[column] = array
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
