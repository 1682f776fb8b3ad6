"""Find ``layer.table`` references and Databricks-style time travel clauses in SQL text,
skipping string literals and comments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from lakehouse.errors import SQLError
from lakehouse.names import LAYERS

_TOKEN = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*')
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<quoted>"(?:[^"]|"")+")
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>\d+)
  | (?P<dot>\.)
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int

    @property
    def ident(self) -> str | None:
        if self.kind == "word":
            return self.text.lower()
        if self.kind == "quoted":
            return self.text[1:-1].replace('""', '"')
        return None


@dataclass(frozen=True)
class TableRef:
    name: str  # layer.table
    start: int
    end: int  # end of the reference including any time travel clause
    version: int | None = None
    timestamp: datetime | None = None


def tokens(sql: str) -> list[Token]:
    return [
        Token(m.lastgroup or "other", m.group(), m.start(), m.end()) for m in _TOKEN.finditer(sql)
    ]


def find_references(sql: str) -> list[TableRef]:
    toks = [t for t in tokens(sql) if t.kind not in ("space", "comment")]
    refs: list[TableRef] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if (
            t.ident in LAYERS
            and i + 2 < len(toks)
            and toks[i + 1].kind == "dot"
            and toks[i + 2].ident is not None
            and (i == 0 or toks[i - 1].kind != "dot")
        ):
            name = f"{t.ident}.{toks[i + 2].ident}"
            end = toks[i + 2].end
            version = timestamp = None
            j = i + 3
            words = [x.ident for x in toks[j : j + 3]]
            if (
                len(words) == 3
                and words[1:] == ["as", "of"]
                and words[0]
                in (
                    "version",
                    "timestamp",
                )
            ):
                kind = words[0]
                k = j + 3
                if kind == "timestamp" and k < len(toks) and toks[k].ident == "timestamp":
                    k += 1  # TIMESTAMP AS OF TIMESTAMP '...'
                if k >= len(toks):
                    raise SQLError(f"{kind.upper()} AS OF needs a value after it")
                value = toks[k]
                if kind == "version":
                    if value.kind != "number":
                        raise SQLError(
                            f"VERSION AS OF needs a whole number, got {value.text!r}",
                            "e.g. SELECT * FROM silver.users VERSION AS OF 3",
                        )
                    version = int(value.text)
                else:
                    if value.kind != "string":
                        raise SQLError(
                            f"TIMESTAMP AS OF needs a quoted timestamp, got {value.text!r}",
                            "e.g. TIMESTAMP AS OF '2026-11-01 10:00:00'",
                        )
                    timestamp = parse_timestamp(value.text[1:-1].replace("''", "'"))
                end = value.end
                i = k
            refs.append(TableRef(name, t.start, end, version, timestamp))
            i += 3 if version is None and timestamp is None else 1
            continue
        i += 1
    return refs


def parse_timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise SQLError(
            f"cannot read {text!r} as a timestamp",
            "use ISO form, e.g. '2026-11-01 10:00:00' (UTC unless an offset is given)",
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
