"""Delta tables as other engines write them, built for the reader's tests.

Features delta-rs can write (change data feed, timestamp without time zone, generated
columns, classic checkpoints, deletes) are written with ``deltalake``. Those it cannot
(deletion vectors, column mapping, identity columns, v2 checkpoints with sidecars) are
written by hand from the Delta protocol: the ``_delta_log`` JSON and the parquet files
(pyarrow), deletion vectors as RoaringBitmapArrays (portable format) stored inline in Z85
or in deletion vector files. Each builder returns the rows every version must read as.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
DV_MAGIC = 1681511377


# -- deletion vector encoding ---------------------------------------------------------------
def z85_encode(data: bytes) -> str:
    assert len(data) % 4 == 0
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i : i + 4], "big")
        chunk = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            chunk.append(_Z85[digit])
        out.append("".join(reversed(chunk)))
    return "".join(out)


def _container(lows: list[int]) -> tuple[bool, bytes]:
    """(is a run container, bytes) for the sorted 16-bit values of one container: runs when
    they are shorter, else an array (up to 4096 values) or a bitset."""
    runs: list[tuple[int, int]] = []
    for v in lows:
        if runs and runs[-1][0] + runs[-1][1] + 1 == v:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((v, 0))
    plain = 2 * len(lows) if len(lows) <= 4096 else 8192
    if 2 + 4 * len(runs) < plain:
        return True, struct.pack("<H", len(runs)) + b"".join(
            struct.pack("<HH", s, n) for s, n in runs
        )
    if len(lows) <= 4096:
        return False, struct.pack(f"<{len(lows)}H", *lows)
    words = bytearray(8192)
    for v in lows:
        words[v // 8] |= 1 << (v % 8)
    return False, bytes(words)


def roaring32(values: list[int]) -> bytes:
    """A 32-bit roaring bitmap in the portable serialization format."""
    by_key: dict[int, list[int]] = {}
    for v in sorted(set(values)):
        by_key.setdefault(v >> 16, []).append(v & 0xFFFF)
    containers = [(k, lows, *_container(lows)) for k, lows in by_key.items()]
    count = len(containers)
    any_run = any(c[2] for c in containers)
    out = bytearray()
    if any_run:
        out += struct.pack("<I", 12347 | ((count - 1) << 16))
        flags = bytearray((count + 7) // 8)
        for i, c in enumerate(containers):
            if c[2]:
                flags[i // 8] |= 1 << (i % 8)
        out += flags
    else:
        out += struct.pack("<II", 12346, count)
    for key, lows, _, _ in containers:
        out += struct.pack("<HH", key, len(lows) - 1)
    if not any_run or count >= 4:
        offset = len(out) + 4 * count
        for _, _, _, body in containers:
            out += struct.pack("<I", offset)
            offset += len(body)
    for _, _, _, body in containers:
        out += body
    return bytes(out)


def roaring_array(rows: list[int]) -> bytes:
    """Delta's RoaringBitmapArray: magic, then the portable 64-bit format."""
    buckets: dict[int, list[int]] = {}
    for r in sorted(set(rows)):
        buckets.setdefault(r >> 32, []).append(r & 0xFFFFFFFF)
    out = struct.pack("<iq", DV_MAGIC, len(buckets))
    for high, lows in buckets.items():
        out += struct.pack("<I", high) + roaring32(lows)
    return out


def inline_dv(rows: list[int]) -> dict[str, Any]:
    data = roaring_array(rows)
    padded = data + b"\0" * (-len(data) % 4)
    return {
        "storageType": "i",
        "pathOrInlineDv": z85_encode(padded),
        "sizeInBytes": len(data),
        "cardinality": len(set(rows)),
    }


def write_dv_file(path: str, vectors: list[list[int]]) -> list[tuple[int, int]]:
    """A deletion vector file holding ``vectors``; the (offset, size) of each."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = bytearray(b"\x01")
    places = []
    for rows in vectors:
        data = roaring_array(rows)
        places.append((len(out), len(data)))
        out += struct.pack(">i", len(data)) + data + struct.pack(">I", zlib.crc32(data))
    with open(path, "wb") as handle:
        handle.write(out)
    return places


def uuid_dv(root: str, prefix: str, vectors: list[list[int]]) -> list[dict[str, Any]]:
    """Descriptors (storage ``u``) of ``vectors`` in one new file under ``root/prefix``."""
    ident = uuid.uuid4()
    path = os.path.join(root, prefix, f"deletion_vector_{ident}.bin")
    places = write_dv_file(path, vectors)
    encoded = prefix + z85_encode(ident.bytes)
    return [
        {
            "storageType": "u",
            "pathOrInlineDv": encoded,
            "offset": offset,
            "sizeInBytes": size,
            "cardinality": len(set(rows)),
        }
        for (offset, size), rows in zip(places, vectors, strict=True)
    ]


def absolute_dv(path: str, vectors: list[list[int]]) -> list[dict[str, Any]]:
    places = write_dv_file(path, vectors)
    return [
        {
            "storageType": "p",
            "pathOrInlineDv": "file://" + path,
            "offset": offset,
            "sizeInBytes": size,
            "cardinality": len(set(rows)),
        }
        for (offset, size), rows in zip(places, vectors, strict=True)
    ]


# -- hand-written logs ------------------------------------------------------------------------
def field_json(name: str, type_: Any, nullable: bool = True, **metadata: Any) -> dict:
    return {"name": name, "type": type_, "nullable": nullable, "metadata": metadata}


def struct_type(*fields: dict) -> dict:
    return {"type": "struct", "fields": list(fields)}


@dataclass
class HandTable:
    """A Delta table written action by action."""

    root: str
    version: int = -1
    files: int = 0
    timestamp: int = 1_700_000_000_000
    schema: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        os.makedirs(os.path.join(self.root, "_delta_log"), exist_ok=True)

    def commit(self, *actions: dict, operation: str = "WRITE") -> int:
        self.version += 1
        self.timestamp += 1000
        info = {"commitInfo": {"timestamp": self.timestamp, "operation": operation}}
        lines = [json.dumps(info)] + [json.dumps(a) for a in actions]
        path = os.path.join(self.root, "_delta_log", f"{self.version:020d}.json")
        with open(path, "x", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        return self.version

    @staticmethod
    def protocol(reader: int, writer: int, reader_features=None, writer_features=None) -> dict:
        p: dict[str, Any] = {"minReaderVersion": reader, "minWriterVersion": writer}
        if reader_features is not None:
            p["readerFeatures"] = reader_features
        if writer_features is not None:
            p["writerFeatures"] = writer_features
        return {"protocol": p}

    def metadata(self, schema: dict, partitions=(), configuration=None) -> dict:
        self.schema = schema
        return {
            "metaData": {
                "id": "00000000-0000-0000-0000-000000000001",
                "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps(schema),
                "partitionColumns": list(partitions),
                "configuration": configuration or {},
                "createdTime": self.timestamp,
            }
        }

    def parquet(self, table: pa.Table, folder: str = "") -> dict:
        """Write ``table`` as a data file; its ``add`` action (without partition values)."""
        self.files += 1
        rel = os.path.join(folder, f"part-{self.files:05d}-{uuid.uuid4()}.c000.snappy.parquet")
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pq.write_table(table, path, row_group_size=50_000)
        return {
            "add": {
                "path": rel,
                "partitionValues": {},
                "size": os.path.getsize(path),
                "modificationTime": self.timestamp,
                "dataChange": True,
                "stats": json.dumps({"numRecords": table.num_rows}),
            }
        }

    def remove(self, add: dict) -> dict:
        a = add["add"]
        body = {
            "path": a["path"],
            "deletionTimestamp": self.timestamp,
            "dataChange": True,
            "extendedFileMetadata": True,
            "partitionValues": a["partitionValues"],
            "size": a["size"],
        }
        if "deletionVector" in a:
            body["deletionVector"] = a["deletionVector"]
        return {"remove": body}


def with_dv(add: dict, descriptor: dict) -> dict:
    out = json.loads(json.dumps(add))
    out["add"]["deletionVector"] = descriptor
    return out


def partitioned(add: dict, values: dict[str, str | None]) -> dict:
    out = json.loads(json.dumps(add))
    out["add"]["partitionValues"] = values
    return out


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def _drop(rows: list[dict], positions: set[int]) -> list[dict]:
    return [r for i, r in enumerate(rows) if i not in positions]


# -- the tables ----------------------------------------------------------------------------
Versions = dict[int, list[dict]]


def deletion_vector_table(root: str) -> Versions:
    """Partitioned by ``part``; the protocol lists deletionVectors from version 0.

    v0: two files, no vector yet; v1: file A gets an inline vector (and the delete's change
    data file); v2: file B (70,000 rows,
    two roaring containers: a run, an array and a bitset) gets a vector in a ``u`` file
    with a random prefix; v3: file A's vector grows, stored in a ``p`` (absolute) file
    holding two vectors; v4: a plain file C is added beside A; v5: every row of C is deleted."""
    t = HandTable(root)
    schema = struct_type(
        field_json("id", "long"), field_json("name", "string"), field_json("part", "string")
    )
    a_rows = pa.table({"id": pa.array(range(10), pa.int64()), "name": [f"a{i}" for i in range(10)]})
    n = 70_000
    b_rows = pa.table(
        {"id": pa.array(range(100, 100 + n), pa.int64()), "name": [f"b{i}" for i in range(n)]}
    )
    c_rows = pa.table({"id": pa.array([7, 8], pa.int64()), "name": ["c0", "c1"]})
    a = partitioned(t.parquet(a_rows, "part=a"), {"part": "a"})
    b = partitioned(t.parquet(b_rows, "part=b"), {"part": "b"})
    feats = ["deletionVectors"]
    t.commit(
        t.protocol(3, 7, feats, [*feats, "changeDataFeed"]),
        t.metadata(
            schema,
            ["part"],
            {"delta.enableDeletionVectors": "true", "delta.enableChangeDataFeed": "true"},
        ),
        a,
        b,
    )

    def rows_of(table: pa.Table, part: str, deleted: set[int]) -> list[dict]:
        return [{**r, "part": part} for r in _drop(_rows(table), deleted)]

    versions: Versions = {0: rows_of(a_rows, "a", set()) + rows_of(b_rows, "b", set())}
    a_del = {0, 3, 9}
    a1 = with_dv(a, inline_dv(sorted(a_del)))
    # The change data of the delete, which a reader of the table's rows must not read.
    gone = a_rows.take(sorted(a_del)).append_column("_change_type", pa.array(["delete"] * 3))
    cdc_rel = f"_change_data/cdc-00000-{uuid.uuid4()}.c000.snappy.parquet"
    os.makedirs(os.path.join(root, "_change_data"))
    pq.write_table(gone, os.path.join(root, cdc_rel))
    size = os.path.getsize(os.path.join(root, cdc_rel))
    cdc = {"path": cdc_rel, "partitionValues": {"part": "a"}, "size": size, "dataChange": False}
    t.commit(t.remove(a), a1, {"cdc": cdc}, operation="DELETE")
    versions[1] = rows_of(a_rows, "a", a_del) + rows_of(b_rows, "b", set())
    b_del = set(range(1000, 3000)) | {5, 17, 40_000} | set(range(65_536, 70_000, 3))
    (b_dv,) = uuid_dv(root, "ab", [sorted(b_del)])
    b1 = with_dv(b, b_dv)
    t.commit(t.remove(b), b1, operation="DELETE")
    versions[2] = rows_of(a_rows, "a", a_del) + rows_of(b_rows, "b", b_del)
    a_del2 = a_del | {5}
    _, a_dv2 = absolute_dv(os.path.join(root, "dvs", "shared.bin"), [[1, 2], sorted(a_del2)])
    a2 = with_dv(a, a_dv2)
    t.commit(a2, t.remove(a1), operation="DELETE")  # the add first: order is free
    versions[3] = rows_of(a_rows, "a", a_del2) + rows_of(b_rows, "b", b_del)
    c = partitioned(t.parquet(c_rows, "part=a"), {"part": "a"})  # beside file A
    t.commit(c)
    versions[4] = versions[3] + rows_of(c_rows, "a", set())
    t.commit(t.remove(c), with_dv(c, inline_dv([0, 1])), operation="DELETE")
    versions[5] = versions[3]
    return versions


def _cm(name: str, type_: Any, ident: int, physical: str, nullable: bool = True) -> dict:
    return field_json(
        name,
        type_,
        nullable,
        **{"delta.columnMapping.id": ident, "delta.columnMapping.physicalName": physical},
    )


def _pa_field(name: str, type_: pa.DataType, ident: int | None) -> pa.Field:
    meta = {b"PARQUET:field_id": str(ident).encode()} if ident is not None else None
    return pa.field(name, type_, metadata=meta)


def column_mapping_table(root: str, mode: str, reader: int) -> Versions:
    """Column mapping in ``mode`` (name or id) on reader version 2 (no features) or 3
    (``columnMapping`` listed). Physical names differ from the logical ones at every level:
    a struct, a list of structs and a map of structs, and the partition column.

    v0: one file; v1: ``name`` renamed to ``full name``, the partition column ``region``
    to ``area``, and a file added; v2: ``info``
    dropped, ``score`` added (new physical name), a file added; on reader version 3, v3:
    rows of the first file deleted by a deletion vector."""
    t = HandTable(root)
    P = {
        k: f"col-{uuid.uuid4()}"
        for k in "id name info city zip tags d props v region score".split()
    }
    ids = {k: i + 1 for i, k in enumerate(P)}

    def f(key: str, logical: str, type_: Any) -> dict:
        return _cm(logical, type_, ids[key], P[key])

    info_t = struct_type(f("city", "city", "string"), f("zip", "zip", "integer"))
    tags_t = {
        "type": "array",
        "elementType": struct_type(f("d", "d", "integer")),
        "containsNull": True,
    }
    props_t = {
        "type": "map",
        "keyType": "string",
        "valueType": struct_type(f("v", "v", "long")),
        "valueContainsNull": True,
    }
    base = [
        f("id", "id", "long"),
        f("info", "info", info_t),
        f("tags", "tags", tags_t),
        f("props", "props", props_t),
        f("region", "region", "string"),
    ]
    area = f("region", "area", "string")  # the partition column, renamed at v1
    schema0 = struct_type(base[0], f("name", "name", "string"), *base[1:])
    schema1 = struct_type(base[0], f("name", "full name", "string"), *base[1:4], area)
    schema2 = struct_type(
        base[0], f("name", "full name", "string"), *base[2:4], area, f("score", "score", "double")
    )
    features = None if reader == 2 else ["columnMapping", "deletionVectors"]
    wfeatures = None if reader == 2 else ["columnMapping", "deletionVectors"]
    config = {"delta.columnMapping.mode": mode, "delta.columnMapping.maxColumnId": str(len(P))}

    def physical(rows: list[dict], with_info: bool, with_score: bool) -> pa.Table:
        fid = ids.__getitem__
        info_pa = pa.struct(
            [
                _pa_field(P["city"], pa.string(), fid("city")),
                _pa_field(P["zip"], pa.int32(), fid("zip")),
            ]
        )
        elem = pa.struct([_pa_field(P["d"], pa.int32(), fid("d"))])
        tags_pa = pa.list_(_pa_field("element", elem, None))
        props_pa = pa.map_(
            pa.string(), pa.field("value", pa.struct([_pa_field(P["v"], pa.int64(), fid("v"))]))
        )
        fields = [
            _pa_field(P["id"], pa.int64(), fid("id")),
            _pa_field(P["name"], pa.string(), fid("name")),
        ]
        if with_info:
            fields.append(_pa_field(P["info"], info_pa, fid("info")))
        fields += [
            _pa_field(P["tags"], tags_pa, fid("tags")),
            _pa_field(P["props"], props_pa, fid("props")),
        ]
        if with_score:
            fields.append(_pa_field(P["score"], pa.float64(), fid("score")))
        cols: dict[str, list] = {
            P["id"]: [r["id"] for r in rows],
            P["name"]: [r["name"] for r in rows],
        }
        if with_info:
            cols[P["info"]] = [
                None
                if r["info"] is None
                else {P["city"]: r["info"]["city"], P["zip"]: r["info"]["zip"]}
                for r in rows
            ]
        cols[P["tags"]] = [
            None
            if r["tags"] is None
            else [None if e is None else {P["d"]: e["d"]} for e in r["tags"]]
            for r in rows
        ]
        cols[P["props"]] = [
            None
            if r["props"] is None
            else [(k, None if v is None else {P["v"]: v["v"]}) for k, v in r["props"].items()]
            for r in rows
        ]
        if with_score:
            cols[P["score"]] = [r["score"] for r in rows]
        schema = pa.schema(fields)
        return pa.table([pa.array(cols[fl.name], fl.type) for fl in schema], schema=schema)

    def rows(start: int, n: int, region: str) -> list[dict]:
        out = []
        for i in range(start, start + n):
            out.append(
                {
                    "id": i,
                    "name": f"n{i}" if i % 4 else None,
                    "info": None if i % 5 == 0 else {"city": f"c{i % 3}", "zip": 1000 + i},
                    "tags": None if i % 6 == 0 else [{"d": i}, None, {"d": -i}],
                    "props": None if i % 7 == 0 else {"k": {"v": i * 10}, "z": None},
                    "score": i / 2,
                    "region": region,
                }
            )
        return out

    def logical(rs: list[dict], version: int, file_has_info: bool, has_score: bool) -> list[dict]:
        out = []
        for r in rs:
            row = {"id": r["id"]}
            row["name" if version == 0 else "full name"] = r["name"]
            if version < 2:
                row["info"] = r["info"] if file_has_info else None
            row["tags"] = r["tags"]
            row["props"] = None if r["props"] is None else list(r["props"].items())
            row["region" if version == 0 else "area"] = r["region"]
            if version >= 2:
                row["score"] = r["score"] if has_score else None
            out.append(row)
        return out

    r0, r1, r2 = rows(0, 20, "eu"), rows(20, 10, "us"), rows(30, 8, "eu")
    add0 = partitioned(t.parquet(physical(r0, True, False), "r0"), {P["region"]: "eu"})
    t.commit(
        t.protocol(reader, 5 if reader == 2 else 7, features, wfeatures),
        t.metadata(schema0, ["region"], config),
        add0,
    )
    add1 = partitioned(t.parquet(physical(r1, True, False), "r1"), {P["region"]: "us"})
    t.commit(t.metadata(schema1, ["area"], config), add1, operation="RENAME COLUMN")
    add2 = partitioned(t.parquet(physical(r2, False, True), "r2"), {P["region"]: "eu"})
    t.commit(t.metadata(schema2, ["area"], config), add2, operation="DROP COLUMN")
    versions: Versions = {0: logical(r0, 0, True, False)}
    versions[1] = logical(r0, 1, True, False) + logical(r1, 1, True, False)
    versions[2] = (
        logical(r0, 2, True, False) + logical(r1, 2, True, False) + logical(r2, 2, False, True)
    )
    if reader == 3:  # v3: rows deleted by a vector, as Databricks writes by default
        gone = {0, 7, 19}
        t.commit(t.remove(add0), with_dv(add0, inline_dv(sorted(gone))), operation="DELETE")
        kept = [r for i, r in enumerate(r0) if i not in gone]
        versions[3] = (
            logical(kept, 2, True, False)
            + logical(r1, 2, True, False)
            + logical(r2, 2, False, True)
        )
    return versions


def id_only_table(root: str) -> Versions:
    """Column mapping by id where a file's column names are not the physical names the
    schema gives (renamed by the engine that wrote it): only the field ids match. Version 1
    adds a file without field ids, read by physical name as delta-rs does."""
    t = HandTable(root)
    schema = struct_type(_cm("a", "long", 1, "col-a"), _cm("b", "string", 2, "col-b"))
    data = pa.table(
        [pa.array([1, 2, 3], pa.int64()), pa.array(["x", "y", None])],
        schema=pa.schema(
            [_pa_field("other_a", pa.int64(), 1), _pa_field("other_b", pa.string(), 2)]
        ),
    )
    t.commit(
        t.protocol(3, 7, ["columnMapping"], ["columnMapping"]),
        t.metadata(schema, [], {"delta.columnMapping.mode": "id"}),
        t.parquet(data),
    )
    # A file with no field ids at all (written before the mode was set): by physical name.
    t.commit(t.parquet(pa.table({"col-b": ["z"], "col-a": pa.array([4], pa.int64())})))
    first = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": None}]
    return {0: first, 1: first + [{"a": 4, "b": "z"}]}


def identity_table(root: str) -> Versions:
    """An identity column (writer feature ``identityColumns``) beside plain ones."""
    t = HandTable(root)
    ident = field_json(
        "id",
        "long",
        False,
        **{
            "delta.identity.start": 1,
            "delta.identity.step": 1,
            "delta.identity.highWaterMark": 3,
            "delta.identity.allowExplicitInsert": False,
        },
    )
    schema = struct_type(ident, field_json("v", "string"))
    first = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": ["a", "b", "c"]})
    t.commit(
        t.protocol(1, 7, None, ["identityColumns", "invariants", "appendOnly"]),
        t.metadata(schema),
        t.parquet(first),
    )
    second = pa.table({"id": pa.array([4, 5], pa.int64()), "v": ["d", None]})
    meta = t.metadata(json.loads(json.dumps(schema)))
    meta["metaData"]["schemaString"] = meta["metaData"]["schemaString"].replace(
        '"delta.identity.highWaterMark": 3', '"delta.identity.highWaterMark": 5'
    )
    t.commit(meta, t.parquet(second))
    return {0: first.to_pylist(), 1: first.to_pylist() + second.to_pylist()}


def v2_checkpoint_table(root: str) -> Versions:
    """Reader feature v2Checkpoint: a UUID-named JSON checkpoint at version 2 whose file
    actions are in a sidecar (one of them with a deletion vector), the commits up to it
    cleaned up, and a commit after it."""
    t = HandTable(root)
    schema = struct_type(field_json("id", "long"), field_json("s", "string"))
    feats = ["v2Checkpoint", "deletionVectors"]
    proto = t.protocol(3, 7, feats, feats)
    meta = t.metadata(schema, [], {"delta.checkpointPolicy": "v2"})

    def data(lo: int, hi: int) -> pa.Table:
        return pa.table(
            {"id": pa.array(range(lo, hi), pa.int64()), "s": [str(i) for i in range(lo, hi)]}
        )

    f0, f1, f2 = t.parquet(data(0, 5)), t.parquet(data(5, 9)), t.parquet(data(9, 12))
    f2 = with_dv(f2, inline_dv([1]))  # id 10 deleted
    t.commit(proto, meta, f0)
    t.commit(f1)
    t.commit(t.remove(f0), f2, operation="DELETE")
    sidecar_name = f"{uuid.uuid4()}.parquet"
    sidecars = os.path.join(root, "_delta_log", "_sidecars")
    os.makedirs(sidecars)
    add_type = pa.struct(
        [
            ("path", pa.string()),
            ("partitionValues", pa.map_(pa.string(), pa.string())),
            ("size", pa.int64()),
            ("modificationTime", pa.int64()),
            ("dataChange", pa.bool_()),
            ("stats", pa.string()),
            (
                "deletionVector",
                pa.struct(
                    [
                        ("storageType", pa.string()),
                        ("pathOrInlineDv", pa.string()),
                        ("offset", pa.int32()),
                        ("sizeInBytes", pa.int32()),
                        ("cardinality", pa.int64()),
                    ]
                ),
            ),
        ]
    )
    remove_type = pa.struct(
        [("path", pa.string()), ("deletionTimestamp", pa.int64()), ("dataChange", pa.bool_())]
    )
    adds = [{**a["add"], "partitionValues": [], "dataChange": False} for a in (f1, f2)]
    removes = [{"path": f0["add"]["path"], "deletionTimestamp": t.timestamp, "dataChange": True}]
    side = pa.table(
        {
            "add": pa.array(adds + [None], add_type),
            "remove": pa.array([None, None] + removes, remove_type),
        }
    )
    pq.write_table(side, os.path.join(sidecars, sidecar_name))
    size = os.path.getsize(os.path.join(sidecars, sidecar_name))
    checkpoint = os.path.join(root, "_delta_log", f"{2:020d}.checkpoint.{uuid.uuid4()}.json")
    lines = [
        {"checkpointMetadata": {"version": 2, "tags": {}}},
        proto,
        meta,
        {
            "sidecar": {
                "path": sidecar_name,
                "sizeInBytes": size,
                "modificationTime": t.timestamp,
                "tags": {},
            }
        },
    ]
    with open(checkpoint, "w", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(x) for x in lines) + "\n")
    with open(os.path.join(root, "_delta_log", "_last_checkpoint"), "w") as handle:
        json.dump({"version": 2, "size": 4}, handle)
    for v in (0, 1, 2):
        os.remove(os.path.join(root, "_delta_log", f"{v:020d}.json"))
    f3 = t.parquet(data(12, 14))
    t.commit(f3)
    two = [r for r in data(5, 12).to_pylist() if r["id"] != 10]
    return {2: two, 3: two + data(12, 14).to_pylist()}


def unknown_feature_commit(root: str, version: int, feature: str) -> None:
    """Append a commit that upgrades the protocol to a reader feature no reader knows."""
    path = os.path.join(root, "_delta_log", f"{version:020d}.json")
    proto = {
        "protocol": {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": [feature],
            "writerFeatures": [feature],
        }
    }
    info = {"commitInfo": {"timestamp": 1_800_000_000_000, "operation": "UPGRADE PROTOCOL"}}
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(json.dumps(info) + "\n" + json.dumps(proto) + "\n")


# -- tables delta-rs writes ----------------------------------------------------------------
def deltalake_tables(base: str) -> dict[str, str]:
    """Tables delta-rs writes itself: name -> path."""
    from deltalake import DeltaTable, Field, Schema, write_deltalake

    paths = {}
    # Change data feed: updates and deletes leave _change_data files beside the data.
    cdf = paths["cdf"] = os.path.join(base, "cdf")
    data = pa.table(
        {
            "id": pa.array(range(6), pa.int64()),
            "k": ["a", "b"] * 3,
            "v": [1.5, None, 2.5, 3.0, 4.0, 5.0],
        }
    )
    write_deltalake(
        cdf, data, partition_by=["k"], configuration={"delta.enableChangeDataFeed": "true"}
    )
    DeltaTable(cdf).update(predicate="id = 1", updates={"v": "10.0"})
    DeltaTable(cdf).delete("id >= 4")
    write_deltalake(cdf, data.slice(0, 2), mode="append")
    # Timestamps without time zone, partitioned by one.
    ntz = paths["ntz"] = os.path.join(base, "ntz")
    stamps = [dt.datetime(2024, 1, 1, 12, 30), dt.datetime(1999, 12, 31, 23, 59, 59, 123456), None]
    write_deltalake(
        ntz,
        pa.table(
            {
                "t": pa.array(stamps, pa.timestamp("us")),
                "day": pa.array(
                    [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)] * 1 + [None],
                    pa.timestamp("us"),
                ),
                "n": pa.array([1, 2, 3], pa.int32()),
            }
        ),
        partition_by=["day"],
    )
    write_deltalake(
        ntz,
        pa.table(
            {
                "t": pa.array([dt.datetime(2030, 6, 1)], pa.timestamp("us")),
                "day": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us")),
                "n": pa.array([4], pa.int32()),
            }
        ),
        mode="append",
    )
    # Generated columns: delta-rs computes ``doubled`` from ``x``.
    gen = paths["generated"] = os.path.join(base, "generated")
    DeltaTable.create(
        gen,
        Schema(
            [
                Field("x", "long", nullable=True),
                Field(
                    "doubled",
                    "long",
                    nullable=True,
                    metadata={"delta.generationExpression": "x * 2"},
                ),
            ]
        ),
    )
    write_deltalake(gen, pa.table({"x": pa.array([1, 2, None], pa.int64())}), mode="append")
    write_deltalake(gen, pa.table({"x": pa.array([5], pa.int64())}), mode="append")
    # Classic checkpoint in the middle of the history, the commits before it cleaned up.
    chk = paths["checkpoint"] = os.path.join(base, "checkpoint")
    for i in range(3):
        write_deltalake(chk, pa.table({"i": pa.array([i, i + 10], pa.int64())}), mode="append")
    DeltaTable(chk).delete("i = 1")
    DeltaTable(chk).create_checkpoint()
    write_deltalake(chk, pa.table({"i": pa.array([99], pa.int64())}), mode="append")
    return paths
