"""Files into bronze, each exactly once: CSV, JSON lines, JSON and Parquet from a folder.

Each file is taken in once, by its content, as ``folder`` takes a folder's files in (a
moved or copied folder brings nothing new; files and folders whose names start with ``_``
or ``.`` are left alone). Rows carry the bronze metadata columns (``_source`` is the
file). New columns are added to the table; a value that does not fit its column's type is
kept, as JSON, in ``_rescued_data``; a record that cannot be read at all goes to
``<table>_quarantine`` with its raw text and the reason.

CSV and Parquet files are read whole into Arrow; JSON lines files as ``jsonlines`` reads
them (whole where it can, line by line where single values must be rescued). The next file
is read while the current one is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.ingest import identity, jsonlines
from lakehouse.ingest.folder import FolderFile, recognise, take_in_each
from lakehouse.ingest.landing import Landing, LandingPath, landing_of, read_all
from lakehouse.names import TableName, parse_table_name
from lakehouse.tables.formats import format_of

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
FORMATS[".parquet"] = "parquet"
RESCUED = jsonlines.RESCUED
SAMPLE = 5  # unreadable records kept in the report, for quality results
SAMPLE_TEXT = 200  # characters of a sampled record's raw text
# A file as read: JSON lines parsed, or the records (a table, or rows) and the bad ones.
FileRead = jsonlines.Parsed | tuple[pa.Table | list[dict[str, Any]], list[dict[str, Any]]]


def _csv_nulls() -> Any:
    """A CSV field left empty is NULL, whatever its column's type; a quoted empty string
    (``""``) is the empty string, and any other text (``NA``, ``null``...) is a value."""
    import pyarrow.csv as pacsv

    return pacsv.ConvertOptions(
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
    )


CSV_NULLS = _csv_nulls()


@dataclass
class IngestReport:
    table: str
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)  # their content is in the table
    rows: int = 0
    rescued: int = 0
    quarantined: int = 0
    bad_sample: list[dict[str, Any]] = field(default_factory=list)  # file, reason, raw text
    duplicates: dict[str, str] = field(default_factory=dict)  # file -> the same content's


def file_id(path: Path) -> str:
    """The transaction identifier of a file: its content's (``identity.content_id``)."""
    return identity.content_id(path)


def ingest_folder(
    lh: Lakehouse,
    folder: str | Path,
    table: str,
    *,
    source_system: str | None = None,
    on_file: Callable[[LandingPath, int], None] | None = None,
    options: dict[str, Any] | None = None,
    only: Collection[LandingPath] | None = None,
    landing: Landing | None = None,
) -> IngestReport:
    """Ingest every data file under ``folder`` (a local folder or ``s3://bucket/prefix``;
    ``landing``, when given, is that folder opened) into the bronze ``table`` that is not in
    it yet (with ``only``, of the files it holds). ``on_file(path, rows)`` is called after
    each file (rows 0 for a file ingested before), e.g. to advance a progress bar.
    ``options`` are the table's options (``description``, ``tags``, ``partition_by``...)
    for ``Lakehouse.write``."""
    name = parse_table_name(table)
    if name.layer != "bronze":
        raise LakehouseError(f"files are ingested into bronze, not {name.layer}")
    if landing is None:
        landing = landing_of(folder, lh.storage_options)
    report = IngestReport(str(name))

    def skip(file: FolderFile) -> None:
        if file.same is not None:
            report.duplicates[str(file.path)] = str(file.same)
        report.files_skipped.append(str(file.path))

    def land(file: FolderFile, read: FileRead) -> int:
        rows_before = report.rows
        _ingest_file(lh, name, file, read, source_system, report, options or {})
        return report.rows - rows_before

    def read(path: LandingPath) -> FileRead:
        return _read_file(landing, path)

    # The next file is read while this one is written (reading does not depend on the
    # table; shaping the rows to the table's schema waits for the write before).
    take_in_each(
        lh,
        name,
        landing,
        FORMATS,
        read=read,
        land=land,
        skip=skip,
        on_file=on_file,
        read_ahead=True,
        only=only,
    )
    return report


def _read_file(landing: Landing, path: LandingPath) -> FileRead:
    fmt = FORMATS[path.suffix.lower()]
    if fmt == "jsonl":
        return jsonlines.parse(read_all(landing, path))
    return _read(landing, path, fmt)


def _ingest_file(
    lh: Lakehouse,
    name: TableName,
    file: FolderFile,
    read: FileRead,
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
    path, txn = file.path, file.txn
    fresh = True
    if bad:  # its own transaction id makes a re-run after a crash skip it
        quarantine = f"{name}_quarantine"
        parsed = parse_table_name(quarantine)
        fmt = format_of(lh.storage, parsed)
        done, marks = recognise(fmt, fmt.open(lh.storage, parsed), lambda: list(file.old), txn[0])
        if done:
            fresh = False
            if marks:
                lh.write(quarantine, pa.table({}), evolve=True, txn=marks)
        else:
            written = lh.write(
                quarantine,
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
        if lh.exists(str(name)):  # the table records the file as done all the same
            lh.write(str(name), pa.table({}), evolve=True, txn=txn)
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


def _read(
    landing: Landing, path: LandingPath, fmt: str
) -> tuple[pa.Table | list[dict[str, Any]], list[dict[str, Any]]]:
    """The file's records, and the ones that could not be read, with the reason."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with landing.open(path) as handle:
            return pq.read_table(handle), []
    if fmt == "csv":
        import pyarrow.csv as pacsv

        bad: list[dict[str, Any]] = []

        def ragged(row: Any) -> str:  # a row whose fields do not match the header's
            reason = f"{row.actual_columns} field(s), the header has {row.expected_columns}"
            bad.append(_bad(row.text, f"unreadable CSV row: {reason}"))
            return "skip"

        data = read_all(landing, path)
        delimiter = csv_delimiter(data[:HEAD].to_pybytes())
        parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=ragged)
        try:
            found = pacsv.read_csv(
                pa.BufferReader(data), parse_options=parse, convert_options=CSV_NULLS
            )
            return found, bad
        except pa.ArrowInvalid as exc:
            raw = data.to_pybytes().decode(errors="replace")
            return [], [_bad(raw, f"unreadable CSV: {exc}")]
    # JSON (JSON lines are read by jsonlines)
    text = read_all(landing, path).to_pybytes()
    try:
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [_bad(text.decode(errors="replace"), f"invalid JSON: {exc}")]
    except RecursionError:  # nested past what the parser can recurse
        return [], [_bad(text.decode(errors="replace"), "JSON nested too deeply to read")]
    records = value if isinstance(value, list) else [value]
    good = [r for r in records if isinstance(r, dict)]
    bad = [_bad(json.dumps(r), "not a JSON object") for r in records if not isinstance(r, dict)]
    return good, bad


DELIMITERS = (",", ";", "\t", "|")


HEAD = 64 << 10  # bytes of a CSV file its delimiter is told from


def csv_delimiter(start: bytes) -> str:
    """The delimiter of a CSV file starting with ``start``: of comma, semicolon, tab and
    bar, the one its header line holds most often outside quotes (comma when it holds
    none)."""
    head = start.decode("utf-8", errors="replace").lstrip("\ufeff")
    header, quoted = [], False
    for char in head:
        if char == '"':
            quoted = not quoted
        elif char in "\r\n" and not quoted:
            break
        elif not quoted:
            header.append(char)
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the first, comma
    return best if counts[best] else ","


def _bad(raw: str, reason: str) -> dict[str, Any]:
    return {"raw_payload": raw, "reason": reason}
