"""Generate TPC-H parquet data with tpchgen-cli and read it back as Arrow streams.

Usage: python bench/tpch_data.py --sf 1

Data lands in bench/data/tpch-sf{N}/<table>.parquet. Generation goes to a temporary
sibling folder that is renamed into place only once every table is written, so a
folder that exists is always complete (an interrupted run leaves only the temp folder).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
DATA_ROOT = BENCH_DIR / "data"
MANIFEST = "_manifest.json"

TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")

# ZSTD matches the codec the silver layer writes, so the baseline and the candidate
# decode the same kind of pages and the ratio measures the engines, not the codecs.
COMPRESSION = "ZSTD(1)"


def sf_label(sf: float) -> str:
    """Folder-friendly scale factor: 1 -> '1', 0.1 -> '0.1'."""
    return f"{sf:g}"


def data_dir(sf: float) -> Path:
    return DATA_ROOT / f"tpch-sf{sf_label(sf)}"


def tpchgen_binary() -> str:
    # Prefer the one next to the running interpreter (the venv), then PATH.
    local = Path(sys.executable).parent / "tpchgen-cli"
    if local.exists():
        return str(local)
    found = shutil.which("tpchgen-cli")
    if found is None:
        raise SystemExit("tpchgen-cli not found; pip install tpchgen-cli")
    return found


def table_files(folder: Path, table: str) -> list[Path]:
    """Parquet files of one table: a single <table>.parquet or a <table>/ folder of parts."""
    single = folder / f"{table}.parquet"
    if single.exists():
        return [single]
    parts = sorted((folder / table).glob("*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no parquet files for {table} in {folder}")
    return parts


def row_counts(folder: Path) -> dict[str, int]:
    """Row counts from the parquet footers (cheap: no data pages are read)."""
    return {
        t: sum(pq.ParquetFile(f).metadata.num_rows for f in table_files(folder, t)) for t in TABLES
    }


def manifest(folder: Path) -> dict[str, int] | None:
    path = folder / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())["rows"]


def generate(sf: float, parts: int | None = None) -> Path:
    """Generate all tables at scale factor `sf` unless the folder is already complete."""
    target = data_dir(sf)
    if manifest(target) is not None:
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [
        tpchgen_binary(),
        "parquet",
        "--scale-factor",
        sf_label(sf),
        "--output-dir",
        str(tmp),
        "--compression",
        COMPRESSION,
        "--no-progress",
    ]
    if parts:
        cmd += ["--parts", str(parts)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    rows = row_counts(tmp)
    info = {"sf": sf, "compression": COMPRESSION, "rows": rows}
    (tmp / MANIFEST).write_text(json.dumps(info, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    print(f"generated TPC-H sf{sf_label(sf)} in {time.perf_counter() - started:.1f}s: {rows}")
    return target


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """Replace string_view/binary_view with string/binary; keep everything else."""
    fields = []
    for field in schema:
        if pa.types.is_string_view(field.type):
            field = field.with_type(pa.string())
        elif pa.types.is_binary_view(field.type):
            field = field.with_type(pa.binary())
        fields.append(field.remove_metadata())
    return pa.schema(fields)


def table_arrow(folder: Path, table: str) -> pa.Table:
    """One whole table in memory, view types cast to plain strings (what a user holding
    the data as one Arrow table hands to ``Lakehouse.write``)."""
    files = table_files(folder, table)
    schema = plain_schema(pq.read_schema(files[0]))
    return pa.concat_tables(pq.read_table(f).cast(schema) for f in files)


def table_reader(folder: Path, table: str, batch_size: int = 128_000) -> pa.RecordBatchReader:
    """Stream one table batch by batch, view types cast to plain strings.

    Memory stays bounded for SF10 lineitem (60M rows) because batches are read only as
    fast as the writer takes them. Two pyarrow defaults are avoided on purpose: the
    dataset scanner reads far ahead of a slow consumer (2 GB+ in flight), and pre_buffer
    keeps every compressed byte read until the file is closed, which with one file per
    table is the whole table.
    """
    files = table_files(folder, table)
    schema = plain_schema(pq.read_schema(files[0]))

    def batches() -> Iterator[pa.RecordBatch]:
        for path in files:
            with pq.ParquetFile(path, pre_buffer=False) as parquet:
                for batch in parquet.iter_batches(batch_size=batch_size):
                    if batch.num_rows:
                        yield batch.cast(schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor")
    parser.add_argument("--parts", type=int, default=None, help="split each table in N files")
    args = parser.parse_args()
    folder = generate(args.sf, args.parts)
    print(f"{folder}: {manifest(folder)}")


if __name__ == "__main__":
    main()
