"""How data files are laid out and encoded: row groups, pages, dictionaries and file
sizes, the same for every path that writes them (appends, overwrites, merges, deletes,
compaction, z-order; ``parallel.py`` reads the same settings)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Literal, cast

import numpy as np
import pyarrow as pa
from deltalake import ColumnProperties, WriterProperties

from lakehouse.tables import parallel

Compression = Literal["UNCOMPRESSED", "SNAPPY", "GZIP", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"]

# Rows per parquet row group. DuckDB reads a file's row groups in parallel, one per thread
# at a time: a 600,000-row file written as one row group of 1,048,576 (the writers' default)
# is scanned by one core. 122,880 is DuckDB's own choice for the files it writes; measured
# against 65,536 and 262,144 in docs/BENCHMARKS.md.
ROW_GROUP_ROWS = 122_880
# How large a data file may grow before a write starts another (delta-rs's default is
# 100 MB). DuckDB plans a scan of one file with its statistics and a scan of several files
# without them: TPC-H Q21 and Q10 over a lineitem table of two files took 1.5 to 2.7 times
# as long as over the same rows in one. The row groups keep one file's scan parallel.
TARGET_FILE_BYTES = parallel.TARGET_FILE_BYTES  # 1 GiB
# A column's dictionary may grow to 1 MiB (the parquet writers' default): TPC-H's
# l_suppkey needs 80 KB per row group, and falling back to plain encoding made scans of it
# 40% slower. Columns of distinct values (ids, times, hashes) do not fill one to throw it
# away: when the data is known, a column gets a dictionary only if its first row group's
# worth of rows holds at most DICTIONARY_SHARE distinct values per row (DuckDB's writer
# makes the same split on TPC-H: l_suppkey with one, l_orderkey and l_partkey without).
DICTIONARY_PAGE_BYTES = 1 << 20
DICTIONARY_SHARE = 0.2
# DuckDB reads a column 2,048 rows (one vector) at a time, and hands a dictionary-encoded
# column on as a dictionary vector only when the vector lies in one page; a vector that
# spans two pages is copied out flat, and a GROUP BY over it hashes every string again
# (TPC-H Q1's l_returnflag: 18 ms against 10). Pages therefore hold a multiple of 2,048
# rows: at most PAGE_ROWS, and the writers look at a page's size only every WRITE_ROWS
# rows, so a page cut by size ends on a vector's edge too.
VECTOR_ROWS = 2048
PAGE_ROWS = 10 * VECTOR_ROWS
WRITE_ROWS = VECTOR_ROWS
ALIGNED_ROWS = 32 * VECTOR_ROWS
PROBE_ROWS = 4096
# Of the probed rows: a column of distinct values. 4,096 rows drawn at random from a column
# of DICTIONARY_SHARE * 122,880 equally common values hold 92% distinct ones, from a column
# of distinct values 100%.
PROBE_DISTINCT = 0.96
PROBE_FEW = 64  # distinct values among the probed rows: a column of few values


def writer_properties(
    compression: str | None = None, sample: pa.Table | None = None
) -> WriterProperties:
    """How data files are encoded, by every path that writes them (appends, overwrites,
    merges, deletes, compaction, z-order; ``parallel.py`` reads the same settings).
    ``sample``, the first rows to be written, decides which columns get a dictionary."""
    columns = None
    if sample is not None:
        columns = {
            name: ColumnProperties(dictionary_enabled=False) for name in distinct_valued(sample)
        }
    return WriterProperties(
        compression=cast(Compression, (compression or "zstd").upper()),
        dictionary_page_size_limit=DICTIONARY_PAGE_BYTES,
        max_row_group_size=ROW_GROUP_ROWS,
        data_page_row_count_limit=PAGE_ROWS,
        write_batch_size=WRITE_ROWS,
        column_properties=columns or None,
    )


def distinct_valued(sample: pa.Table) -> list[str]:
    """The top-level columns with more than ``DICTIONARY_SHARE`` distinct values per row
    in the first ``ROW_GROUP_ROWS`` rows of ``sample``. ``PROBE_ROWS`` of those rows, drawn
    at random (the same ones every time), settle most columns: nearly all distinct (ids,
    times, hashes) or a few values (flags, codes, a batch's constants); the others are
    counted in full. Every n-th row would not do: in rows ordered by one key another
    column can cycle through its values, and TPC-H's ps_suppkey (10,000 values, 8% of
    the rows) looked distinct that way and lost the dictionary that Q11 filters on.
    Counting every column in full cost a streamed batch a twentieth of its write."""
    import pyarrow.compute as pc  # only here: it costs query processes 10 MiB

    head = sample.slice(0, ROW_GROUP_ROWS)
    most = int(head.num_rows * DICTIONARY_SHARE)
    rows = pa.array(
        np.sort(np.random.default_rng(0).choice(head.num_rows, PROBE_ROWS, replace=False))
        if head.num_rows > PROBE_ROWS
        else np.arange(head.num_rows)
    )
    found = []
    for name, column in zip(head.column_names, head.columns, strict=True):
        t = column.type
        if pa.types.is_nested(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
            continue
        if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
            column = column.cast(pa.large_binary())
        try:
            probed = pc.count_distinct(column.take(rows), mode="all").as_py()
            if probed > len(rows) * PROBE_DISTINCT or (
                probed > PROBE_FEW and pc.count_distinct(column, mode="all").as_py() > most
            ):
                found.append(name)
        except pa.ArrowNotImplementedError:  # a type Arrow cannot count: keep its dictionary
            continue
    return found


def aligned(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of a multiple of ``VECTOR_ROWS`` rows (but the last) and
    of at least ``ALIGNED_ROWS`` rows. delta-rs counts a page's rows batch by batch, so a
    batch of another length shifts every later page off the vectors' edges; and it lets
    large batches overtake small ones, which it gathers first, so a small batch would
    land among the others. A batch that is already a whole number of vectors is passed
    on as it is; the rows of the others are copied once."""
    held: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if not held and batch.num_rows >= ALIGNED_ROWS:
            whole = batch.num_rows - batch.num_rows % VECTOR_ROWS
            yield batch.slice(0, whole)
            batch = batch.slice(whole)
        if batch.num_rows:
            held.append(batch)
            rows += batch.num_rows
        if rows >= ALIGNED_ROWS:
            merged = pa.concat_batches(held)
            whole = rows - rows % VECTOR_ROWS
            yield merged.slice(0, whole)
            held = [merged.slice(whole)] if whole < rows else []
            rows -= whole
    if held:
        yield held[0] if len(held) == 1 else pa.concat_batches(held)


def head_of(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema
) -> tuple[pa.Table, Iterator[pa.RecordBatch]]:
    """The first row group's worth of a stream of batches, and the whole stream again."""
    head: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        head.append(batch)
        rows += batch.num_rows
        if rows >= ROW_GROUP_ROWS:
            break
    return pa.Table.from_batches(head, schema), itertools.chain(head, batches)
