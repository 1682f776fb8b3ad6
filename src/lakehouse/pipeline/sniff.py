"""The columns a files dataset will have before its first run: its table's, else those a
look at its folder's first file gives (read as ingestion reads it; on an object store, the
first object copied down), for ``plan`` to check what reads the dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.model import Dataset
from lakehouse.quoting import string

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

SNIFF_BYTES = 4 << 20  # of a JSON lines file, to know its columns
SNIFF_OBJECT = 64 << 20  # the largest first object copied down to be looked at


def _sniff_lines(lh: Lakehouse, ds: Dataset, path: Path) -> pa.Schema:
    """The columns the first lines of a JSON lines file give, read by ingestion's reader."""
    from lakehouse.ingest import jsonlines

    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if len(head) == SNIFF_BYTES and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]  # whole lines only
    return jsonlines.read(lh, ds.name, pa.py_buffer(head), None).rows.schema


def sniff(lh: Lakehouse, ds: Dataset, folder: str | None) -> tuple[pa.Schema | None, str]:
    """The shape a files dataset will have: its table's, else a look at its first file;
    or None and why not."""
    if lh.exists(ds.name):
        return lh.engine.query(f"SELECT * FROM {ds.name} LIMIT 0").to_arrow().schema, ""
    from lakehouse.ingest.files import FORMATS
    from lakehouse.ingest.landing import LocalFolder, is_object_store

    if folder is not None and is_object_store(folder):
        return _sniff_object(lh, ds, folder)
    root = Path(folder) if folder is not None else None
    if root is None or not root.is_dir():
        return None, f"no table {ds.name} yet and no folder {folder} to look at"
    files = [Path(p.path) for p in LocalFolder(root).listing(FORMATS)]
    if not files:
        return None, f"no table {ds.name} yet and no files in {folder}"
    return _sniff_file(lh, ds, files[0], str(files[0]))


def _sniff_object(lh: Lakehouse, ds: Dataset, folder: str) -> tuple[pa.Schema | None, str]:
    """``sniff`` of a prefix of an object store: its first object, copied down."""
    import tempfile

    from lakehouse.ingest.files import FORMATS
    from lakehouse.ingest.landing import landing_of, read_all

    try:
        landing = landing_of(folder, lh.storage_options)
        listing = landing.listing(FORMATS)
        if not listing:
            return None, f"no table {ds.name} yet and no files in {folder}"
        files = list(listing)
        if listing[files[0]].size > SNIFF_OBJECT:
            return None, f"no table {ds.name} yet and {files[0]} is too large to look at first"
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / files[0].name
            local.write_bytes(read_all(landing, files[0]).to_pybytes())
            return _sniff_file(lh, ds, local, str(files[0]))
    except LakehouseError as exc:
        return None, f"no table {ds.name} yet and {folder} could not be looked at: {exc.message}"


def _sniff_file(lh: Lakehouse, ds: Dataset, path: Path, shown: str) -> tuple[pa.Schema | None, str]:
    """The shape the file at ``path`` (``shown`` as) gives a files dataset."""
    from lakehouse.ingest.files import FORMATS

    fmt = ds.format or FORMATS[path.suffix.lower()]
    if fmt == "jsonl":  # read as ingestion reads it: a bad line is a bad line, not the shape
        return _sniff_lines(lh, ds, path), ""
    reader = {
        "csv": "read_csv",
        "jsonl": "read_json",
        "json": "read_json",
        "parquet": "read_parquet",
    }[fmt]
    con = duckdb.connect()
    try:
        extra = ", ignore_errors = true" if fmt in ("jsonl", "json") else ""
        schema = con.sql(
            f"SELECT * FROM {reader}({string(str(path))}{extra}) LIMIT 0"
        ).to_arrow_table()
        return schema.schema, ""
    except duckdb.Error as exc:
        return None, f"{shown} could not be read: {str(exc).strip().splitlines()[0]}"
    finally:
        con.close()
