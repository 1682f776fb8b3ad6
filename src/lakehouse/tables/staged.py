"""Parquet files another engine's workers wrote into a table's folder, handed to the one
write path to commit (``writer.write_table``): committed as they are, with the statistics
of their footers (``parallel.commit_files``), when they hold the table's schema and the
write is a whole append or overwrite of a local unpartitioned Delta table; else read back
and written as any data."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa


@dataclass(frozen=True)
class StagedFiles:
    root: str  # the table's folder
    folder: str  # where the files are, relative to ``root``
    paths: tuple[str, ...]  # the data files, relative to ``root``
    schema: pa.Schema
    rows: int

    @property
    def num_rows(self) -> int:
        return self.rows

    def read(self) -> pa.Table:
        """The files' rows, for a write that cannot commit them as they are."""
        import pyarrow.parquet as pq

        parts = [pq.read_table(Path(self.root) / p, schema=self.schema) for p in self.paths]
        return pa.concat_tables(parts) if parts else self.schema.empty_table()

    def discard(self) -> None:
        """Remove the files (read back, or not to be committed)."""
        shutil.rmtree(Path(self.root) / self.folder, ignore_errors=True)


def same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    """The same column names and types, in order (nullability and metadata aside)."""
    return a.names == b.names and all(x.type == y.type for x, y in zip(a, b, strict=True))
