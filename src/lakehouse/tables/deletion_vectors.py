"""Deletion vectors: the row positions of a data file that a Delta version no longer has.

A deletion vector (Delta protocol, "Deletion Vectors") is a 64-bit roaring bitmap of row
indexes, stored inline in the log (``i``: Z85 text), in a file next to the data named by a
UUID (``u``) or in a file at an absolute path (``p``). Files hold a version byte, then per
vector a big-endian size, the bitmap and a CRC-32. The bitmap starts with a magic number
and is RoaringBitmap's portable 64-bit format: buckets of 32-bit roaring bitmaps, each made
of 16-bit containers (sorted arrays, 8 KiB bitsets or runs).
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from lakehouse.errors import LakehouseError

MAGIC = 1681511377
MAGIC_NATIVE = 1681511376
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_VALUE = {c: i for i, c in enumerate(_Z85)}
_SERIAL_COOKIE_NO_RUN = 12346
_SERIAL_COOKIE = 12347


class DeletionVectorError(LakehouseError):
    """A deletion vector that cannot be read: rows would be wrong, so nothing is read."""


@dataclass(frozen=True)
class Descriptor:
    """An ``add`` action's ``deletionVector``."""

    storage: str
    path_or_inline: str
    offset: int | None
    size: int
    cardinality: int

    @classmethod
    def of(cls, value: dict[str, Any]) -> Descriptor:
        offset = value.get("offset")
        return cls(
            storage=str(value["storageType"]),
            path_or_inline=str(value["pathOrInlineDv"]),
            offset=None if offset is None else int(offset),
            size=int(value["sizeInBytes"]),
            cardinality=int(value["cardinality"]),
        )

    @property
    def unique_id(self) -> str:
        base = f"{self.storage}{self.path_or_inline}"
        return base if self.offset is None else f"{base}@{self.offset}"

    def file_path(self, root: str) -> str:
        """Where an on-disk vector is, for a table at ``root`` (a local folder)."""
        if self.storage == "p":
            parsed = urlparse(self.path_or_inline)
            if parsed.scheme not in ("", "file"):
                raise DeletionVectorError(
                    f"deletion vector at {self.path_or_inline} is not on the local disk",
                    "local tables are read with their deletion vectors on the local disk",
                )
            return unquote(parsed.path) if parsed.scheme else self.path_or_inline
        if self.storage == "u":
            text = self.path_or_inline
            prefix, encoded = text[:-20], text[-20:]
            name = f"deletion_vector_{uuid.UUID(bytes=z85_decode(encoded))}.bin"
            return os.path.join(root, prefix, name) if prefix else os.path.join(root, name)
        raise DeletionVectorError(
            f"deletion vector storage type {self.storage!r} is not one of 'i', 'u', 'p'",
            "the table's log is damaged or from a newer Delta protocol",
        )


def z85_decode(text: str) -> bytes:
    if len(text) % 5:
        raise DeletionVectorError(f"Z85 text of {len(text)} characters is not a multiple of 5")
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for c in text[i : i + 5]:
            digit = _Z85_VALUE.get(c)
            if digit is None:
                raise DeletionVectorError(f"{c!r} is not a Z85 character")
            value = value * 85 + digit
        out += value.to_bytes(4, "big")
    return bytes(out)


def positions(descriptor: Descriptor, root: str) -> Any:
    """The deleted row indexes, a sorted numpy uint64 array of ``cardinality`` values."""
    if descriptor.storage == "i":
        data = z85_decode(descriptor.path_or_inline)[: descriptor.size]
        where = "inline deletion vector"
    else:
        path = descriptor.file_path(root)
        where = f"deletion vector file {path}"
        data = _read_stored(path, descriptor.offset or 0, descriptor.size, where)
    rows = decode_bitmap(data, where)
    if len(rows) != descriptor.cardinality:
        raise DeletionVectorError(
            f"{where} holds {len(rows)} row positions, the log says {descriptor.cardinality}",
            "the deletion vector does not belong to this version of the table",
        )
    return rows


def _read_stored(path: str, offset: int, size: int, where: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            head = handle.read(4)
            data = handle.read(size)
            crc = handle.read(4)
    except FileNotFoundError as exc:
        raise DeletionVectorError(
            f"{where} is missing", "it was removed (vacuum?) or never written"
        ) from exc
    if len(head) < 4 or len(data) < size or len(crc) < 4:
        raise DeletionVectorError(f"{where} ends before the vector at byte {offset}")
    (stored_size,) = struct.unpack(">i", head)
    if stored_size != size:
        raise DeletionVectorError(
            f"{where} has a vector of {stored_size} bytes at byte {offset}, the log says {size}"
        )
    if struct.unpack(">I", crc)[0] != zlib.crc32(data):
        raise DeletionVectorError(f"{where}: the checksum of the vector at byte {offset} fails")
    return data


def decode_bitmap(data: bytes, where: str = "deletion vector") -> Any:
    """A Delta ``RoaringBitmapArray`` as sorted uint64: the portable format (magic
    1681511377, little endian, 64-bit buckets) or Delta's native one (magic 1681511376,
    framing in the byte order of its magic: a count, then per 32-bit bitmap its length)."""
    import numpy as np

    view = memoryview(data)
    magic_le = struct.unpack_from("<i", view, 0)[0] if len(view) >= 4 else None
    magic_be = struct.unpack_from(">i", view, 0)[0] if len(view) >= 4 else None
    parts = []
    try:
        if magic_le == MAGIC:
            (buckets,) = struct.unpack_from("<q", view, 4)
            pos = 12
            for _ in range(buckets):
                (high,) = struct.unpack_from("<I", view, pos)
                low, pos = _decode_32(view, pos + 4, where)
                parts.append((np.uint64(high) << np.uint64(32)) | low.astype(np.uint64))
        elif MAGIC_NATIVE in (magic_le, magic_be):
            order = "<" if magic_le == MAGIC_NATIVE else ">"
            (count,) = struct.unpack_from(order + "i", view, 4)
            pos = 8
            for high in range(count):
                (length,) = struct.unpack_from(order + "i", view, pos)
                low, _ = _decode_32(view, pos + 4, where)
                pos += 4 + length
                parts.append((np.uint64(high) << np.uint64(32)) | low.astype(np.uint64))
        else:
            raise DeletionVectorError(
                f"{where} is not a RoaringBitmapArray (no magic number {MAGIC} or {MAGIC_NATIVE})",
                "the table's log or deletion vector file is damaged",
            )
    except struct.error as exc:
        raise DeletionVectorError(f"{where} ends in the middle of a roaring bitmap") from exc
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    return np.concatenate(parts)


def _decode_32(view: memoryview, pos: int, where: str) -> tuple[Any, int]:
    """One 32-bit roaring bitmap in the portable format from ``pos``: its values (uint32)
    and where it ends."""
    import numpy as np

    try:
        (cookie,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if cookie & 0xFFFF == _SERIAL_COOKIE:
            count = (cookie >> 16) + 1
            flags = bytes(view[pos : pos + (count + 7) // 8])
            pos += (count + 7) // 8
            runs = [bool(flags[i // 8] >> (i % 8) & 1) for i in range(count)]
            has_offsets = count >= 4
        elif cookie == _SERIAL_COOKIE_NO_RUN:
            (count,) = struct.unpack_from("<I", view, pos)
            pos += 4
            runs = [False] * count
            has_offsets = True
        else:
            raise DeletionVectorError(f"{where}: unknown roaring cookie {cookie}")
        header = np.frombuffer(view, dtype="<u2", count=2 * count, offset=pos).reshape(-1, 2)
        pos += 4 * count
        if has_offsets:
            pos += 4 * count
        parts = []
        for (key, card_minus_one), run in zip(header.tolist(), runs, strict=True):
            base = np.uint32(key) << np.uint32(16)
            if run:
                (n,) = struct.unpack_from("<H", view, pos)
                pairs = np.frombuffer(view, dtype="<u2", count=2 * n, offset=pos + 2)
                pos += 2 + 4 * n
                starts, lengths = pairs[0::2].astype(np.uint32), pairs[1::2].astype(np.uint32)
                spans = zip(starts.tolist(), lengths.tolist(), strict=True)
                values = np.concatenate(
                    [np.arange(s, s + ln + 1, dtype=np.uint32) for s, ln in spans]
                    or [np.zeros(0, dtype=np.uint32)]
                )
            elif card_minus_one + 1 <= 4096:
                values = np.frombuffer(
                    view, dtype="<u2", count=card_minus_one + 1, offset=pos
                ).astype(np.uint32)
                pos += 2 * (card_minus_one + 1)
            else:
                words = np.frombuffer(view, dtype="<u8", count=1024, offset=pos)
                pos += 8192
                bits = np.unpackbits(words.view(np.uint8), bitorder="little")
                values = np.flatnonzero(bits).astype(np.uint32)
            parts.append(base | values)
    except (struct.error, ValueError) as exc:
        raise DeletionVectorError(f"{where} ends in the middle of a roaring bitmap") from exc
    if not parts:
        return np.zeros(0, dtype=np.uint32), pos
    return np.concatenate(parts), pos
