"""The order of Debezium change events: a sortable text key (the change row's ``sequence``)
made from where the event is in the source database's log.

A key is fixed-width text, so comparing two keys as text compares the events:

- the phase first: ``0`` for the reads of a snapshot (``op: r``), ``1`` for the rest, so a
  key's snapshot read sorts before the changes streamed after the snapshot (a PostgreSQL
  change made before the snapshot point but committed after it has a smaller LSN than the
  snapshot's);
- then the position in the source's log, per connector (below); a read at the same
  position as a change sorts before it (incremental snapshots);
- without a position, the time the connector handled the event (the envelope's ``ts_ns``,
  ``ts_us`` or ``ts_ms``; ``source.ts_ms`` when the envelope has none and it is not 0),
  then the order of arrival the caller gives (one that does not restart per file or
  batch), so events of one millisecond keep the order they came in.

An event delivered twice has the same position, so the same key: the CDC apply counts it
once. Positions per connector:

========== ===================================== ============================================
class      source fields                         order
========== ===================================== ============================================
``m``      ``file``, ``pos``, ``row``            binlog (MySQL, MariaDB): the file's numeric
                                                 suffix, the event's position, the row in it
``l``      ``commit_lsn``, ``change_lsn``,       SQL Server (Db2, Informix): commit, change,
           ``event_serial_no``                   the event in the change
``o``      ``commit_scn``, ``scn``, ``ssn``      Oracle: commit SCN, change SCN, sequence
``p``      ``lsn`` (or ``sequence``'s second)    PostgreSQL: the change's LSN
``t``      (no position)                         connector time, then arrival
``a``      (no position, no time)                arrival
========== ===================================== ============================================
"""

from __future__ import annotations

import json
import re
from typing import Any

WIDTH = 20  # digits of a number: 10**20 > 2**64
LSN_WIDTH = 40  # digits of an LSN read from text (SQL Server's are 80 bits, Db2's 112)
_SUFFIX = re.compile(r"(\d+)$")
_HEX_GROUPS = re.compile(r"^[0-9A-Fa-f]+(:[0-9A-Fa-f]+)+$")


class PositionError(ValueError):
    """A source block whose position fields cannot be read; the text says which."""


def is_snapshot_read(op: str, source: dict[str, Any]) -> bool:
    """A read of an initial (blocking) snapshot: ``op: r`` not from an incremental one."""
    return op == "r" and str(source.get("snapshot", "")).lower() != "incremental"


def position_key(op: str, source: dict[str, Any]) -> str | None:
    """The event's key from its position in the source's log, or None without one."""
    found = _position(source)
    if found is None:
        return None
    kind, numbers = found
    phase = "0" if is_snapshot_read(op, source) else "1"
    fields = [_digits(n, width) for n, width in numbers]
    return f"{phase}{kind}:{':'.join(fields)}:{'0' if op == 'r' else '1'}"


def arrival_key(op: str, source: dict[str, Any], nanos: int | None, arrival: int) -> str:
    """The key of an event without a position: the connector's time (ns), then arrival."""
    phase = "0" if is_snapshot_read(op, source) else "1"
    if nanos is None:
        return f"{phase}a:{_digits(arrival, WIDTH)}"
    return f"{phase}t:{_digits(nanos, WIDTH)}:{_digits(arrival, WIDTH)}"


def handled_nanos(envelope: dict[str, Any], source: dict[str, Any]) -> int | None:
    """When the connector handled the event, in ns since 1970: the envelope's time, else
    the source's commit time when it is not 0 (snapshots and some versions write 0)."""
    for block in (envelope, source):
        for field, scale in (("ts_ns", 1), ("ts_us", 1_000), ("ts_ms", 1_000_000)):
            value = _maybe_number(block.get(field))
            if value:  # None, or 0: not a time
                return value * scale
    return None


def _position(source: dict[str, Any]) -> tuple[str, list[tuple[int, int]]] | None:
    if source.get("file") or source.get("pos"):  # "" and 0: no binlog position known
        return "m", [
            (_binlog_file(source.get("file")), WIDTH),
            (_number(source.get("pos"), "pos"), WIDTH),
            (_number(source.get("row") or 0, "row"), WIDTH),
        ]
    if source.get("commit_lsn") is not None or source.get("change_lsn") is not None:
        return "l", [
            (_lsn(source.get("commit_lsn"), "commit_lsn"), LSN_WIDTH),
            (_lsn(source.get("change_lsn"), "change_lsn"), LSN_WIDTH),
            (_number(source.get("event_serial_no") or 0, "event_serial_no"), WIDTH),
        ]
    if source.get("scn") is not None or source.get("commit_scn") is not None:
        return "o", [
            (_number(source.get("commit_scn") or 0, "commit_scn"), WIDTH),
            (_number(source.get("scn") or 0, "scn"), WIDTH),
            (_number(source.get("ssn") or 0, "ssn"), WIDTH),
        ]
    lsn = source.get("lsn")
    if lsn is None and source.get("sequence") is not None:
        lsn = _last_of_sequence(source["sequence"])
    if lsn is not None:
        return "p", [(_number(lsn, "lsn"), WIDTH)]
    return None


def _binlog_file(value: Any) -> int:
    """A binlog file's number: ``mysql-bin.000003`` is 3 (files sort by it, not by name)."""
    match = _SUFFIX.search(value) if isinstance(value, str) else None
    if match is None:
        raise PositionError(
            f"source.file {value!r} is not a binlog file name ending in its number "
            "(mysql-bin.000003)"
        )
    return int(match.group(1))


def _lsn(value: Any, field: str) -> int:
    """A log sequence number written as hex groups (SQL Server's 00000027:00000758:0005,
    each group of fixed width, so their digits in a row compare as the LSNs do) or as a
    number; null (a snapshot's change_lsn) is 0."""
    if value is None:
        return 0
    if isinstance(value, str) and _HEX_GROUPS.match(value.strip()):
        return int(value.strip().replace(":", ""), 16)
    return _number(value, field)


def _last_of_sequence(value: Any) -> Any:
    """PostgreSQL's ``sequence``, the JSON text ``["<last commit LSN>", "<LSN>"]``: its LSN."""
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as exc:
        raise PositionError(f"source.sequence {value!r} is not a JSON array: {exc}") from exc
    if not isinstance(items, list) or not items:
        raise PositionError(f"source.sequence {value!r} is not a JSON array of LSNs")
    return items[-1]


def _number(value: Any, field: str) -> int:
    """A non-negative integer, also written as text ("1081")."""
    if value is None:
        raise PositionError(f"source.{field} is missing")
    found = _maybe_number(value)
    if found is None:
        raise PositionError(f"source.{field} {value!r} is not a non-negative integer")
    return found


def _maybe_number(value: Any) -> int | None:
    """A non-negative integer, also written as text ("1081"); None for anything else (a
    time that is no number orders nothing)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _digits(number: int, width: int) -> str:
    text = str(number)
    if len(text) > width:
        raise PositionError(f"position {number} has more than {width} digits")
    return text.rjust(width, "0")
