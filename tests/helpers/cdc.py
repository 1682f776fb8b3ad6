"""Pipeline datasets that apply captured change rows (``kind: cdc``), for the CDC tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

HEADER = """
    -- kind: cdc
    -- scd: {scd}
    -- keys: [{keys}]
    -- sequence_by: sequence
    -- delete_when: operation = 'delete'
    -- except_columns: [operation]
"""


def write_cdc_dataset(folder: Path, name: str, scd: int, keys: str, query: str) -> None:
    """``<folder>/silver/<name>.sql``: ``query`` over change rows, applied as SCD ``scd``
    on ``keys`` (comma-separated), versions ordered by their ``sequence``."""
    (folder / "silver").mkdir(parents=True, exist_ok=True)
    header = textwrap.dedent(HEADER.format(scd=scd, keys=keys)).lstrip()
    (folder / "silver" / f"{name}.sql").write_text(header + textwrap.dedent(query))
