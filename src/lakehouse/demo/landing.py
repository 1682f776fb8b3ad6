"""A landing folder as source systems fill it: the demo's four sources delivered as files,
drop after drop.

``write_sources`` writes ``drops`` files per source, each one time slice of the data, under
``<folder>/app_events``, ``clickstream``, ``cdc_changes`` and ``user_events``; ``add_drop``
delivers one more slice later on. ``<folder>/_generated.json`` records what was written, so
``add_drop`` continues where the last drop ended.

Files in JSON lines or CSV carry what real deliveries carry (from 1,000 events on,
deterministic for the seed): about 0.2% of the app events' lines are cut off (malformed
JSON, for the quarantine); change events come a little out of order within a file, about 2%
of them twice, and about 5% of a drop's changes only in the next drop. Parquet files hold
the rows as generated. Each file appears under its name only once it is complete (it is
written under a hidden name and renamed), so a loader never reads half a file.
"""

from __future__ import annotations

import itertools
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import lakehouse.demo.generators as g
from lakehouse.errors import LakehouseError

SOURCES = ("app_events", "clickstream", "cdc_changes", "user_events")
DEFAULT_FORMATS = {
    "app_events": "jsonl",
    "clickstream": "csv",
    "cdc_changes": "jsonl",
    "user_events": "jsonl",
}
SUFFIXES = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}
TIME_COLUMNS = {
    "app_events": "event_time",
    "clickstream": "click_time",
    "cdc_changes": "changed_at",
    "user_events": "event_time",
}
SEED_OFFSETS = {"app_events": 0, "clickstream": 4, "cdc_changes": 6, "user_events": 10}
# Per 1,500 app events: 800 clickstream sessions, 300 change events, 3,000 user events.
PER_EVENT = {"clickstream": 800 / 1500, "cdc_changes": 300 / 1500, "user_events": 3000 / 1500}
MANIFEST = "_generated.json"
FEW_VALUES = {"event_type", "app_type", "page", "user_agent", "source", "table_name", "operation"}
REALISM_FROM = 1000  # events; smaller samples are delivered clean
MALFORMED_SHARE = 0.002
DUPLICATE_CHANGE_SHARE = 0.02
LATE_CHANGE_SHARE = 0.05
SHUFFLE_WINDOW = 20  # change events move up to this many places within a file
MICROS = 1_000_000


def write_sources(
    folder: str | Path,
    *,
    events: int = 1500,
    sessions: int | None = None,
    changes: int | None = None,
    user_events: int | None = None,
    drops: int = 4,
    days: float = 2,
    start: datetime | None = None,
    seed: int = 7,
    formats: str | dict[str, str] | None = None,
) -> dict[str, list[Path]]:
    """Write the four sources as ``drops`` files each (``drop-0001.jsonl``, ...), one time
    slice of ``days`` per file; returns each source's files.

    ``sessions``, ``changes`` and ``user_events`` default to 800, 300 and 3,000 per 1,500
    ``events``. ``start`` defaults to midnight UTC ``days`` days before today, so the data
    ends today. ``formats`` maps sources to ``"jsonl"``, ``"csv"`` or ``"parquet"`` (the
    defaults: JSON lines, clickstream CSV), or names one format for all."""
    root = Path(folder)
    if drops < 1 or days <= 0 or events < 0:
        raise LakehouseError("drops, days and events must be positive")
    chosen = _formats(formats)
    for source in SOURCES:
        place = root / source
        if place.is_dir() and any(place.iterdir()):
            raise LakehouseError(
                f"{place} already holds files",
                "write into a new folder, or deliver more with add_drop(folder)",
            )
    start = _utc(start) if start is not None else _fresh_start(days)
    sizes = {
        "app_events": events,
        "clickstream": _default(sessions, events, "clickstream"),
        "cdc_changes": _default(changes, events, "cdc_changes"),
        "user_events": _default(user_events, events, "user_events"),
    }
    population: dict[str, Any] = {
        "users": g.default_users(events),
        "initial_users": max(100, sizes["user_events"] // 30),
    }
    population["growth_per_hour"] = population["initial_users"] / 50
    seeds = {s: seed + SEED_OFFSETS[s] for s in SOURCES}
    realism = events >= REALISM_FROM
    origin = g.micros_since_epoch(start)
    cut = [origin + round(k * days * 86400 * MICROS / drops) for k in range(drops + 1)]
    newest = origin
    jobs: dict[str, list[tuple[Future[dict[str, Any]], dict[str, int]]]] = {}
    # Each source's files are written on other threads while the next one is generated.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as writing:
        for source in SOURCES:
            table = _generate(source, sizes[source], population, days, start, seeds[source])
            micros = _micros(table.column(TIME_COLUMNS[source]))
            newest = max(newest, int(micros.max()) if micros.size else origin)
            if source == "app_events" and micros.size:  # a replay comes with its neighbours
                micros = np.maximum.accumulate(micros)
            drop = np.clip(np.searchsorted(cut, micros, side="right") - 1, 0, drops - 1)
            fmt = chosen[source]
            if source == "cdc_changes" and realism and fmt != "parquet":
                parts = [
                    (table.take(pa.array(rows, pa.int64())), counts)
                    for rows, counts in _deliver_changes(drop, drops, _rng(seed, source))
                ]
            else:  # the rows are in time order: each drop is a slice of them
                bounds = np.searchsorted(drop, np.arange(drops + 1))
                parts = [(table.slice(a, b - a), {}) for a, b in itertools.pairwise(bounds)]
            jobs[source] = [
                (
                    writing.submit(
                        _write_file,
                        root / source / f"drop-{k:04d}{SUFFIXES[fmt]}",
                        rows,
                        fmt,
                        _malformed_rng(source, fmt, realism, seed, k),
                    ),
                    counts,
                )
                for k, (rows, counts) in enumerate(parts, start=1)
            ]
            del table, parts
        files = {
            source: [
                {**job.result(), "drop": k, **counts}
                for k, (job, counts) in enumerate(jobs[source], start=1)
            ]
            for source in SOURCES
        }
    manifest = {
        "version": 1,
        "parameters": {
            "events": events,
            "sessions": sizes["clickstream"],
            "changes": sizes["cdc_changes"],
            "user_events": sizes["user_events"],
            "drops": drops,
            "days": days,
            "start": start.isoformat(),
            "seed": seed,
            "formats": chosen,
        },
        **population,
        "realism": realism,
        "drops": [
            {"drop": k, "from": _iso(cut[k - 1]), "to": _iso(cut[k])} for k in range(1, drops + 1)
        ],
        "newest": _iso(newest),
        "sources": {
            source: {
                "format": chosen[source],
                "generated": sizes[source],  # events, sessions, changes, events
                "rows": sum(f["rows"] for f in files[source]),  # lines or rows delivered
                "seeds": [seeds[source]],
                "files": files[source],
            }
            for source in SOURCES
        },
    }
    _save(root, manifest)
    return {s: [root / s / f["name"] for f in files[s]] for s in SOURCES}


def add_drop(
    folder: str | Path, fraction: float = 0.01, *, seed: int | None = None
) -> dict[str, list[Path]]:
    """Deliver one more file per source: the next drop number, the time slice right after
    the newest data in the folder (as long as ``fraction`` of the time so far, so the pace
    stays the same), ``fraction`` of each source's volume so far, and ids that no earlier
    drop used (change events continue the same database: new keys for inserts, updates and
    deletes of rows that exist). ``seed`` defaults to one no drop used. Returns each
    source's new file."""
    root = Path(folder)
    manifest = _load(root)
    if not 0 < fraction <= 10:
        raise LakehouseError(f"fraction {fraction} is not between 0 and 10", "e.g. 0.01")
    number = len(manifest["drops"]) + 1
    first = g.micros_since_epoch(datetime.fromisoformat(manifest["parameters"]["start"]))
    newest = g.micros_since_epoch(datetime.fromisoformat(manifest["newest"]))
    slice_end = g.micros_since_epoch(datetime.fromisoformat(manifest["drops"][-1]["to"]))
    begin = max(slice_end, (newest // MICROS + 1) * MICROS)
    length = max(60 * MICROS, round(fraction * (begin - first)))
    start = g.EPOCH + timedelta(microseconds=begin)
    base = _fresh_seed(manifest, seed)
    sources = manifest["sources"]
    hours = (begin - first) / (3600 * MICROS)
    population = {
        "users": manifest["users"],  # the user base as it has grown by now
        "initial_users": round(manifest["initial_users"] + manifest["growth_per_hour"] * hours),
        "growth_per_hour": manifest["growth_per_hour"],
    }
    realism = manifest["realism"]
    written: dict[str, list[Path]] = {}
    last = begin + length - 1
    for source in SOURCES:
        size = max(1, round(fraction * sources[source]["generated"]))
        if source == "cdc_changes":
            table = _more_changes(sources[source], size, begin, length, base)
        else:
            days = length / (86400 * MICROS)
            table = _generate(source, size, population, days, start, base + SEED_OFFSETS[source])
        micros = _micros(table.column(TIME_COLUMNS[source]))
        last = max(last, int(micros.max()) if micros.size else begin)
        fmt = sources[source]["format"]
        delivered = table
        counts: dict[str, int] = {}
        if source == "cdc_changes" and realism and fmt != "parquet":
            drop = np.zeros(table.num_rows, np.int64)
            rows, counts = _deliver_changes(drop, 1, _rng(base, source))[0]
            delivered = table.take(pa.array(rows, pa.int64()))
        path = root / source / f"drop-{number:04d}{SUFFIXES[fmt]}"
        malformed = _malformed_rng(source, fmt, realism, base, number)
        info = {**_write_file(path, delivered, fmt, malformed), "drop": number, **counts}
        entry = sources[source]
        entry["generated"] += size
        entry["rows"] += info["rows"]
        if source != "cdc_changes":  # the change log goes on with its first seed
            entry["seeds"].append(base + SEED_OFFSETS[source])
        entry["files"].append(info)
        written[source] = [path]
    manifest["drops"].append({"drop": number, "from": _iso(begin), "to": _iso(begin + length)})
    manifest["newest"] = _iso(last)
    _save(root, manifest)
    return written


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """What ``write_sources`` and ``add_drop`` recorded about a landing folder."""
    return _load(Path(folder))


def _generate(
    source: str,
    size: int,
    population: dict[str, Any],
    days: float,
    start: datetime,
    seed: int,
) -> pa.Table:
    if source == "app_events":
        return g.app_events(size, users=population["users"], days=days, start=start, seed=seed)
    if source == "clickstream":
        return g.clickstream(size, users=population["users"], days=days, start=start, seed=seed)
    if source == "cdc_changes":
        return g.change_events(size, days=days, start=start, seed=seed)
    return g.user_events(
        size,
        initial_users=population["initial_users"],
        growth_per_hour=population["growth_per_hour"],
        days=days,
        start=start,
        seed=seed,
    )


def _more_changes(
    entry: dict[str, Any], count: int, begin: int, length: int, seed: int
) -> pa.Table:
    """The next ``count`` changes of the same log (a longer log continues a shorter one),
    spread over the new slice."""
    done = entry["generated"]
    log = g.change_events(done + count, seed=entry["seeds"][0]).slice(done)
    rng = np.random.default_rng([seed, SOURCES.index("cdc_changes"), 1])
    micros = begin + np.sort(rng.integers(0, length, count))
    when = pa.array(micros, pa.int64()).view(g.TIMESTAMP)
    return log.set_column(log.schema.get_field_index("changed_at"), "changed_at", g.iso_text(when))


def _deliver_changes(
    drop: np.ndarray, drops: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, dict[str, int]]]:
    """The rows of each file of change events as the source delivers them, and how many
    are repeats and late: about 5% of a drop's changes come with the next drop (none after
    the last, they have nowhere to go), about 2% twice, and each a few places out of
    order."""
    late = rng.random(drop.size) < LATE_CHANGE_SHARE
    due = np.where(late & (drop < drops - 1), drop + 1, drop)
    out = []
    for k in range(drops):
        rows = np.flatnonzero(due == k)
        carried = drop[rows] < k  # the late ones from the previous drop come first
        place = np.where(carried, 0, np.arange(rows.size)) + rng.random(rows.size) * SHUFFLE_WINDOW
        again = np.flatnonzero(rng.random(rows.size) < DUPLICATE_CHANGE_SHARE)
        place_again = place[again] + 1 + rng.random(again.size) * 3 * SHUFFLE_WINDOW
        every = np.concatenate([rows, rows[again]])
        order = np.argsort(np.concatenate([place, place_again]), kind="stable")
        counts = {"duplicates": int(again.size), "late": int(np.count_nonzero(carried))}
        out.append((every[order], counts))
    return out


def _write_file(
    path: Path, table: pa.Table, fmt: str, malformed: np.random.Generator | None
) -> dict[str, Any]:
    """Write one delivery file under a hidden name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    info: dict[str, Any] = {"name": path.name, "rows": table.num_rows}
    if fmt == "parquet":
        import pyarrow.parquet as pq

        # Dictionaries only where values repeat: building one for unique ids is wasted work.
        repeated = [c for c in table.column_names if c in FEW_VALUES]
        pq.write_table(table, partial, use_dictionary=repeated)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, partial)
    else:
        cut = _write_json_lines(partial, table, malformed)
        if malformed is not None:
            info["malformed"] = cut
    os.replace(partial, path)
    return info


def _write_json_lines(path: Path, table: pa.Table, malformed: np.random.Generator | None) -> int:
    """One JSON object per line, timestamps as ISO 8601 text; with ``malformed``, about
    0.2% of the lines cut off part way. Returns how many were."""
    import duckdb

    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_timestamp(column.type):
            column = g.iso_text(column.combine_chunks(), zone="Z")
        columns[name] = column
    rows = pa.table(columns)  # noqa: F841 - read by DuckDB
    con = duckdb.connect()
    try:
        lines = con.sql("SELECT to_json(__row) AS line FROM rows AS __row").to_arrow_table()
    finally:
        con.close()
    cut = 0
    with open(path, "wb") as out:
        for chunk in lines.column(0).chunks:
            if len(chunk) == 0:
                continue
            if malformed is not None:
                chosen = malformed.random(len(chunk)) < MALFORMED_SHARE
                if chosen.any():
                    keep = malformed.uniform(0.2, 0.9, int(chosen.sum()))
                    texts = chunk.filter(pa.array(chosen)).to_pylist()
                    broken = [
                        t[: max(1, int(len(t) * k))] for t, k in zip(texts, keep, strict=True)
                    ]
                    chunk = pc.replace_with_mask(chunk, pa.array(chosen), pa.array(broken))
                    cut += len(broken)
            ended = pc.binary_join_element_wise(chunk, "", "\n")
            offsets = np.frombuffer(ended.buffers()[1], np.int32)[: len(ended) + 1]
            data = ended.buffers()[2]
            out.write(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
    return cut


def _malformed_rng(
    source: str, fmt: str, realism: bool, seed: int, number: int
) -> np.random.Generator | None:
    if source != "app_events" or fmt != "jsonl" or not realism:
        return None
    return np.random.default_rng([seed, number, 99])


def _rng(seed: int, source: str) -> np.random.Generator:
    return np.random.default_rng([seed, SOURCES.index(source)])


def _formats(formats: str | dict[str, str] | None) -> dict[str, str]:
    if isinstance(formats, str):
        chosen = dict.fromkeys(SOURCES, formats)
    else:
        unknown = set(formats or {}) - set(SOURCES)
        if unknown:
            raise LakehouseError(
                f"unknown source(s) {', '.join(sorted(unknown))}",
                f"the sources are {', '.join(SOURCES)}",
            )
        chosen = {**DEFAULT_FORMATS, **(formats or {})}
    bad = sorted({f for f in chosen.values() if f not in SUFFIXES})
    if bad:
        raise LakehouseError(
            f"unknown format(s) {', '.join(bad)}", "use 'jsonl', 'csv' or 'parquet'"
        )
    return chosen


def _default(given: int | None, events: int, source: str) -> int:
    return round(events * PER_EVENT[source]) if given is None else given


def _fresh_start(days: float) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    """A time column (timestamp, or ISO text) as microseconds since the epoch."""
    if not pa.types.is_timestamp(column.type):
        column = column.cast(g.TIMESTAMP)
    return np.asarray(column.cast(pa.int64()).to_numpy(), np.int64)


def _iso(micros: int) -> str:
    return (g.EPOCH + timedelta(microseconds=int(micros))).isoformat()


def _fresh_seed(manifest: dict[str, Any], seed: int | None) -> int:
    """A seed whose ids no earlier drop used (ids start with the source's seed)."""
    used = {s: set(entry["seeds"]) for s, entry in manifest["sources"].items()}

    def clashes(base: int) -> bool:
        return any(base + SEED_OFFSETS[s] in used[s] for s in SOURCES if s != "cdc_changes")

    if seed is not None:
        if clashes(seed):
            raise LakehouseError(
                f"seed {seed} was used for an earlier drop: its ids would repeat",
                "leave seed out to get a fresh one",
            )
        return seed
    base: int = manifest["parameters"]["seed"] + 1000 * len(manifest["drops"])
    while clashes(base):
        base += 1
    return base


def _load(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise LakehouseError(
            f"no {MANIFEST} in {root}", "write the sources first: write_sources(folder)"
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def _save(root: Path, manifest: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, root / MANIFEST)
