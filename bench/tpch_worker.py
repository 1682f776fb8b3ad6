"""One TPC-H engine over one layer in its own process, driven over stdin/stdout.

The driver (bench/tpch.py) starts one worker per engine and alternates requests between
them, so both engines are timed under the same machine conditions while each process's
peak RSS still belongs to one engine only. Protocol, one JSON line per reply:

    (start)   -> {"setup_s": ...}
    warm N    -> {"ok": true, "rows": ...} | {"ok": false, "error": "..."}   result saved
    time N    -> {"s": seconds}
    fixed N   -> {"s": median seconds of N runs of a trivial query, rows fetched}
    quit      -> {"peak_rss_bytes": ...}

Queries are written against ``silver.<table>``; a worker for another layer reads
``<layer>.<table>`` instead. The duckdb engine reads that layer's raw parquet copy
(``raw_dir``): the same rows and columns, written by DuckDB with the layer's codec.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.ipc as ipc

from benchlib import peak_rss_bytes
from tpch_data import TABLES, data_dir, sf_label, table_files

QUERY_DIR = Path(__file__).resolve().parent / "tpch_queries"
ENGINES = ("duckdb", "lakehouse")

Runner = Callable[[str], pa.Table]


def warehouse_dir(sf: float) -> Path:
    return data_dir(sf).with_name(f"tpch-sf{sf_label(sf)}-warehouse")


def raw_dir(sf: float, layer: str) -> Path:
    """The baseline's copy of a layer's tables as plain parquet files."""
    return data_dir(sf).with_name(f"tpch-sf{sf_label(sf)}-raw") / layer


def query_sql(n: int, layer: str = "silver") -> str:
    return re.sub(r"\bsilver\.", f"{layer}.", (QUERY_DIR / f"q{n:02d}.sql").read_text())


def trivial_sql(layer: str) -> str:
    """What the per-query fixed cost is measured on: binding a view, no work."""
    return f"SELECT 1 FROM {layer}.lineitem LIMIT 1"


def result_path(out: Path, engine: str, q: int) -> Path:
    return out / f"{engine}-q{q:02d}.arrow"


def duckdb_runner(sf: float, layer: str) -> tuple[Runner, Callable[[str], Any]]:
    import duckdb

    con = duckdb.connect()
    # As the lakehouse's engine does: without it every query reads and parses the
    # footers again, which costs bronze's wide files milliseconds a query.
    con.execute("SET parquet_metadata_cache = true")
    con.execute(f"CREATE SCHEMA {layer}")
    folder = raw_dir(sf, layer)
    for table in TABLES:
        files = ", ".join(f"'{f}'" for f in table_files(folder, table))
        con.execute(f"CREATE VIEW {layer}.{table} AS SELECT * FROM read_parquet([{files}])")
    return (lambda sql: con.sql(sql).to_arrow_table()), (lambda sql: con.sql(sql).fetchall())


def lakehouse_runner(sf: float) -> tuple[Runner, Callable[[str], Any]]:
    from lakehouse import Lakehouse

    lh = Lakehouse(warehouse_dir(sf))
    return (lambda sql: lh.sql(sql).to_arrow()), (lambda sql: lh.sql(sql).rows())


def serve(engine: str, sf: float, layer: str, out: Path) -> None:
    # Keep a private copy of stdout for the protocol and point fd 1 at stderr, so a stray
    # print (ours, a library's, native code's) cannot corrupt a reply.
    proto: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def reply(message: dict[str, Any]) -> None:
        proto.write(json.dumps(message) + "\n")

    started = time.perf_counter()
    run, rows = duckdb_runner(sf, layer) if engine == "duckdb" else lakehouse_runner(sf)
    reply({"setup_s": time.perf_counter() - started})
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "warm":
            q = int(arg)
            try:
                result = run(query_sql(q, layer))
            except Exception as exc:  # reported per query; one failure shouldn't end the run
                reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                continue
            with ipc.new_file(result_path(out, engine, q), result.schema) as sink:
                sink.write_table(result)
            reply({"ok": True, "rows": result.num_rows})
        elif command == "time":
            sql = query_sql(int(arg), layer)
            t0 = time.perf_counter()
            run(sql)
            reply({"s": time.perf_counter() - t0})
        elif command == "fixed":
            sql = trivial_sql(layer)
            rows(sql)
            samples = []
            for _ in range(int(arg)):
                t0 = time.perf_counter()
                rows(sql)
                samples.append(time.perf_counter() - t0)
            reply({"s": statistics.median(samples)})
        elif command == "quit":
            reply({"peak_rss_bytes": peak_rss_bytes()})
            return


class Worker:
    """The driver's handle on one worker process."""

    def __init__(self, engine: str, sf: float, layer: str, out: Path, timeout_s: float) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        script = str(Path(__file__).resolve())
        cmd = [sys.executable, script, engine, "--sf", sf_label(sf), "--layer", layer]
        cmd += ["--out", str(out)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.setup_s: float = self._read()["setup_s"]

    def request(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout_s)
        if not ready:
            self.kill()
            raise SystemExit(f"{self.engine} worker gave no answer in {self.timeout_s:.0f}s")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise SystemExit(f"{self.engine} worker died with exit code {code}")
        return json.loads(line)

    def close(self) -> int:
        """Stop the worker and return its peak RSS in bytes."""
        peak = int(self.request("quit")["peak_rss_bytes"])
        self.proc.wait(timeout=60)
        return peak

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("--sf", type=float, required=True)
    parser.add_argument("--layer", default="silver")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    serve(args.engine, args.sf, args.layer, args.out)


if __name__ == "__main__":
    main()
