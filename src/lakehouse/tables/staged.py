"""Parquet files another engine's workers wrote into a table's folder, handed to the one
write path to commit (``writer.write_table``): committed as they are, with the statistics
of their footers (``parallel.commit_files``), when they hold the table's schema and the
write is a whole append or overwrite of a local Delta table partitioned as the files are
(hive-style folders, ``column=value``); else read back and written as any data."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa


@dataclass(frozen=True)
class StagedFiles:
    root: str  # the table's folder
    folder: str  # where the files are, relative to ``root``
    paths: tuple[str, ...]  # the data files, relative to ``root``
    schema: pa.Schema  # the table's, partition columns included
    rows: int
    partition_columns: tuple[str, ...] = ()  # their values are in the paths

    @property
    def num_rows(self) -> int:
        return self.rows

    def partition_values(self, path: str) -> dict[str, str | None]:
        """The partition values a file's folders name (None: a null value)."""
        values: dict[str, str | None] = {}
        for part in path.split("/")[:-1]:
            key, sep, value = part.partition("=")
            if sep and key in self.partition_columns:
                text = unquote(value)
                values[key] = None if text == NULL_PARTITION else text
        return values

    def read(self) -> pa.Table:
        """The files' rows, for a write that cannot commit them as they are."""
        import pyarrow.parquet as pq

        data = pa.schema([f for f in self.schema if f.name not in self.partition_columns])
        parts = []
        for path in self.paths:
            rows = pq.read_table(Path(self.root) / path, schema=data)
            for column, value in self.partition_values(path).items():
                kind = self.schema.field(column).type
                constant = pa.array([value] * rows.num_rows, pa.string()).cast(kind)
                rows = rows.append_column(self.schema.field(column), constant)
            parts.append(rows.select(self.schema.names))
        return pa.concat_tables(parts) if parts else self.schema.empty_table()

    def discard(self) -> None:
        """Remove the files (read back, or not to be committed)."""
        shutil.rmtree(Path(self.root) / self.folder, ignore_errors=True)


NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # a null value's folder, as Spark names it


def same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    """The same column names and types, in order (nullability and metadata aside)."""
    return a.names == b.names and all(x.type == y.type for x, y in zip(a, b, strict=True))
