"""What a table looks like on disk: its files (and how many are small), size, rows, the
versions written since it was last compacted and when it was last written. Health,
maintenance and metrics all read these."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

COMPACTIONS = ("OPTIMIZE", "Z-ORDER")  # operations that leave a table compacted


@dataclass(frozen=True)
class TableStats:
    table: str
    layer: str
    version: int
    rows: int
    size_bytes: int
    files: int
    small_files: int  # files under ``small_file_size``
    small_file_size: int
    versions_since_compaction: int  # all of them when never compacted
    last_compacted: datetime | None
    last_commit: datetime | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("last_compacted", "last_commit"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


def table_stats(lh: Lakehouse, name: str, small_file_size: int) -> TableStats:
    """The figures of ``name`` at its latest version; a file is small under
    ``small_file_size`` bytes."""
    table = lh.table(name)
    files = table.files()
    history = table.history()
    version = table.version
    compacted = next(
        (h for h in history if str(h.get("operation", "")).upper() in COMPACTIONS), None
    )
    since = version - int(compacted["version"]) if compacted else version + 1

    def when(entry: dict[str, Any] | None) -> datetime | None:
        stamp = entry.get("timestamp") if entry else None
        return datetime.fromisoformat(stamp).astimezone(UTC) if stamp else None

    return TableStats(
        table=str(table.name),
        layer=table.name.layer,
        version=version,
        rows=sum(
            (f.num_records or 0) - (f.deletion.cardinality if f.deletion else 0) for f in files
        ),
        size_bytes=sum(f.size_bytes for f in files),
        files=len(files),
        small_files=sum(1 for f in files if f.size_bytes < small_file_size),
        small_file_size=small_file_size,
        versions_since_compaction=since,
        last_compacted=when(compacted),
        last_commit=when(history[0] if history else None),
    )
