"""CDC apply: change rows (keys, a sequence, a delete condition) into a table's latest state
(SCD type 1) or its history (SCD type 2).

Both are computed from every change of the keys involved, ordered by the sequence column,
so events arriving late, out of order or twice give the same table as events arriving in
order once. An incremental run recomputes only the keys that have new changes.
"""

from __future__ import annotations

from lakehouse.pipeline.model import Dataset
from lakehouse.quoting import ident

DELETED = "__lh_deleted"
# Changes of a key with the same sequence (one change delivered twice, whose copies may
# differ in columns such as _ingested_at): SCD 1 and SCD 2 keep the same one of them, the
# one whose row hashes lowest, so SCD 1 always equals the current rows of SCD 2.
ROW = "__lh_row"
TIE = f"hash({ROW})"


def _newest_first(seq: str) -> str:
    """The order that puts a key's newest change first, as SCD 2 (oldest first) sees it:
    a change without a sequence is the oldest in both."""
    return f"{seq} DESC NULLS LAST, {TIE}"


def latest_state(ds: Dataset, changes: str, keep_deleted: bool) -> str:
    """SQL for the newest change of each key; with ``keep_deleted`` the keys whose newest
    change is a delete are kept, flagged in ``__lh_deleted`` (to remove them from the table)."""
    keys = ", ".join(ident(k) for k in ds.keys)
    deleted = f"coalesce(({ds.delete_when}), false)" if ds.delete_when else "false"
    drop = ", ".join(ident(c) for c in ds.except_columns)
    exclude = f" EXCLUDE ({drop})" if drop else ""
    seq = ident(ds.sequence_by or "")
    inner = (
        f"SELECT *{exclude}, {deleted} AS {DELETED} FROM {changes} AS {ROW} "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {_newest_first(seq)}) = 1"
    )
    if keep_deleted:
        return inner
    return f"SELECT * EXCLUDE ({DELETED}) FROM ({inner}) WHERE NOT {DELETED}"


def history(ds: Dataset, changes: str) -> str:
    """SQL for every version of each key: valid_from (the change's ``valid_time`` or
    sequence), valid_to (the next change's, NULL while current) and is_current. A delete
    closes the key's last version and adds none."""
    keys = ", ".join(ident(k) for k in ds.keys)
    seq = ident(ds.sequence_by or "")
    valid = ident(ds.valid_time or ds.sequence_by or "")
    deleted = f"coalesce(({ds.delete_when}), false)" if ds.delete_when else "false"
    drop = ", ".join(ident(c) for c in ds.except_columns)
    exclude = f", {drop}" if drop else ""
    return f"""
        WITH once AS (
            SELECT *, {deleted} AS {DELETED} FROM {changes} AS {ROW}
            QUALIFY row_number() OVER (PARTITION BY {keys}, {seq} ORDER BY {TIE}) = 1
        ), versions AS (
            SELECT *, {valid} AS valid_from,
                   lead({valid}) OVER (PARTITION BY {keys} ORDER BY {seq} ASC NULLS FIRST)
                   AS valid_to
            FROM once
        )
        SELECT * EXCLUDE ({DELETED}{exclude}), valid_to IS NULL AS is_current
        FROM versions WHERE NOT {DELETED}
    """
