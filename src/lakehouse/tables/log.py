"""What delta-rs's file listing leaves out: the deletion vector each live file has.

delta-rs replays the log and lists a version's live files, but not their deletion vector
descriptors. They are found here by the protocol's own replay, newest first: the commits
after the newest checkpoint at or before the version, then that checkpoint (classic,
multi-part, or v2 with its actions inline or in sidecar files). The newest ``add`` of a
live path carries its current vector (a commit that changes a file's vector removes the
old pair and adds the new one; only adds matter for a path known to be live).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.quoting import string_list
from lakehouse.scratch import scratch
from lakehouse.tables.deletion_vectors import Descriptor

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CLASSIC = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_MULTI = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_UUID = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$")


class LogError(LakehouseError):
    """A log that does not hold the version asked for."""


def deletion_vectors(root: str, version: int, live: set[str]) -> dict[str, Descriptor]:
    """The deletion vector of each of the ``live`` files (paths as the log spells them) of
    ``version`` of the table at ``root`` (a local folder) that has one."""
    log = os.path.join(root, "_delta_log")
    commits: dict[int, str] = {}
    checkpoints: dict[int, list[str]] = {}
    parts: dict[tuple[int, int], set[int]] = {}
    for name in os.listdir(log):
        if m := _COMMIT.match(name):
            commits[int(m.group(1))] = name
        elif m := _CLASSIC.match(name) or _UUID.match(name):
            checkpoints.setdefault(int(m.group(1)), []).append(name)
        elif m := _MULTI.match(name):
            key = (int(m.group(1)), int(m.group(3)))
            parts.setdefault(key, set()).add(int(m.group(2)))
    for (v, total), have in parts.items():
        if have == set(range(1, total + 1)):
            checkpoints.setdefault(v, []).extend(
                f"{v:020d}.checkpoint.{i:010d}.{total:010d}.parquet" for i in range(1, total + 1)
            )
    start = max((v for v in checkpoints if v <= version), default=-1)
    found: dict[str, Descriptor | None] = {}
    for v in range(version, start, -1):
        commit = commits.get(v)
        if commit is None:
            raise LogError(
                f"{root}: the log has no commit {v} nor a checkpoint after it, so the files "
                f"of version {version} cannot be told",
                "the log was cleaned up past this version; read a later one",
            )
        with open(os.path.join(log, commit), encoding="utf-8") as handle:
            actions = [json.loads(line) for line in handle if line.strip()]
        for action in actions:
            add = action.get("add")
            if add is not None and add["path"] in live and add["path"] not in found:
                vector = add.get("deletionVector")
                found[add["path"]] = Descriptor.of(vector) if vector else None
        if len(found) == len(live):
            break
    else:
        if start >= 0 and len(found) < len(live):
            for path, vector in _checkpoint_vectors(log, checkpoints[start]).items():
                if path in live and path not in found:
                    found[path] = vector
    return {p: d for p, d in found.items() if d is not None}


def commit_times(root: str) -> list[dict[str, int]]:
    """``version`` and ``timestamp`` (ms) of each commit still in the log of the table at
    ``root``, read from the commits themselves (in-commit timestamp first, as the protocol
    asks, else the commit info's, else the file's time)."""
    log = os.path.join(root, "_delta_log")
    out = []
    for name in os.listdir(log):
        m = _COMMIT.match(name)
        if m is None:
            continue
        path = os.path.join(log, name)
        stamp = None
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                info = json.loads(line).get("commitInfo") if line.strip() else None
                if info is not None:
                    stamp = info.get("inCommitTimestamp", info.get("timestamp"))
                    break
        if stamp is None:
            stamp = int(os.path.getmtime(path) * 1000)
        out.append({"version": int(m.group(1)), "timestamp": int(stamp)})
    return out


def _checkpoint_vectors(log: str, names: list[str]) -> dict[str, Descriptor]:
    """Deletion vectors of the ``add`` actions of one checkpoint (first file name that
    reads: several checkpoints of one version are equivalent)."""
    uuid_named = [n for n in names if _UUID.match(n)]
    name = (uuid_named or names)[0]
    path = os.path.join(log, name)
    if name.endswith(".json"):
        adds, sidecars = [], []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                action = json.loads(line)
                if "add" in action:
                    adds.append(action["add"])
                elif "sidecar" in action:
                    sidecars.append(action["sidecar"]["path"])
        out = {
            a["path"]: Descriptor.of(a["deletionVector"]) for a in adds if a.get("deletionVector")
        }
        files = [_sidecar(log, s) for s in sidecars]
    else:
        files = [os.path.join(log, n) for n in (names if _MULTI.match(name) else [name])]
        out = {}
        sidecars = _parquet_sidecars(files)
        files = files + [_sidecar(log, s) for s in sidecars]
    if files:
        out.update(_parquet_vectors(files))
    return out


def _sidecar(log: str, path: str) -> str:
    return path if "://" in path or os.path.isabs(path) else os.path.join(log, "_sidecars", path)


def _quoted_list(paths: list[str]) -> str:
    return string_list(paths)


def _columns(con: Any, source: str) -> dict[str, str]:
    relation = con.sql(f"SELECT * FROM {source} LIMIT 0")
    return {c: str(t) for c, t in zip(relation.columns, relation.types, strict=True)}


def _parquet_sidecars(files: list[str]) -> list[str]:
    con = scratch()
    try:
        source = f"read_parquet({_quoted_list(files)}, union_by_name = true)"
        if "sidecar" not in _columns(con, source):
            return []
        rows = con.sql(f"SELECT sidecar.path FROM {source} WHERE sidecar IS NOT NULL").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def _parquet_vectors(files: list[str]) -> dict[str, Descriptor]:
    con = scratch()
    try:
        source = f"read_parquet({_quoted_list(files)}, union_by_name = true)"
        add = _columns(con, source).get("add", "")
        if "deletionVector" not in add:
            return {}
        rows = con.sql(
            "SELECT add.path, add.deletionVector.storageType, add.deletionVector.pathOrInlineDv, "
            "add.deletionVector.offset, add.deletionVector.sizeInBytes, "
            f"add.deletionVector.cardinality FROM {source} "
            "WHERE add IS NOT NULL AND add.deletionVector IS NOT NULL"
        ).fetchall()
    finally:
        con.close()
    return {
        path: Descriptor(storage, inline, offset, int(size), int(card))
        for path, storage, inline, offset, size, card in rows
    }
