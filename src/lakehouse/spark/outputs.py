"""A dataset's rows written by Spark's executors as parquet files into a new folder of its
table's folder, in the table's column types, for the driver to commit through the one
write path (``tables/staged.py``): the rows never pass through the driver."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse.tables.staged import StagedFiles


def write_staged(
    frame: Any,
    root: str,
    schema: pa.Schema,
    partitions: dict[str, tuple[str, str | None]],
    table: pa.Schema,
) -> StagedFiles:
    """Write ``frame`` with ``schema``'s columns and types under ``root`` (the table's
    folder), in one folder per value of the ``partitions`` (a date partition derived from
    its column as the write path derives it: the UTC date, floored to the month or year);
    only the data files are kept (no Spark markers or checksums). The files hold the
    ``table``'s columns."""
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    folder = f"spark-{uuid.uuid4().hex}"
    columns = [
        F.col(f"`{field.name}`").cast(from_arrow_type(field.type)).alias(field.name)
        for field in schema
    ]
    for column, (source, grain) in partitions.items():
        if grain is not None:
            day = F.to_date(F.col(f"`{source}`"))
            columns.append((day if grain == "day" else F.trunc(day, grain)).alias(column))
    target = Path(root) / folder
    staged = StagedFiles(root, folder, (), table, 0)
    try:
        writer = frame.select(*columns).write.mode("errorifexists")
        if partitions:
            writer = writer.partitionBy(*partitions)
        writer.parquet(f"file://{target}")
    except BaseException:
        staged.discard()
        raise
    paths = []
    rows = 0
    for path in sorted(target.rglob("*")):
        if path.is_dir():
            continue
        if path.name.endswith(".parquet") and not path.name.startswith((".", "_")):
            paths.append(str(path.relative_to(root)))
            rows += pq.ParquetFile(path).metadata.num_rows
        else:
            path.unlink()
    return StagedFiles(root, folder, tuple(paths), table, rows, tuple(partitions))
