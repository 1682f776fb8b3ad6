"""What the SQL editor's text needs before and after it runs: ``:name`` parameters turned
into the engine's ``$name`` placeholders (values are bound, never written into the text),
the parameters' values typed, and where in the text an engine error points."""

from __future__ import annotations

import re
from typing import Any

from lakehouse.sql.names import tokens

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parameter_names(sql: str) -> list[str]:
    """The ``:name`` (and ``$name``) parameters of ``sql``, in order of first use; a cast
    (``::type``), strings and comments are not parameters."""
    return list(dict.fromkeys(name for name, _, _ in _placeholders(sql)))


def _placeholders(sql: str) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    toks = tokens(sql)
    for i, tok in enumerate(toks):
        if tok.kind != "other" or tok.text not in (":", "$") or i + 1 >= len(toks):
            continue
        word = toks[i + 1]
        if word.kind != "word" or word.start != tok.end:
            continue
        if tok.text == ":" and (
            (i > 0 and toks[i - 1].text == ":") or (i + 1 < len(toks) and word.text == ":")
        ):
            continue
        found.append((word.text, tok.start, word.end))
    return found


def engine_text(sql: str) -> str:
    """``sql`` with each ``:name`` written as DuckDB's ``$name``."""
    out: list[str] = []
    last = 0
    for name, start, end in _placeholders(sql):
        out.append(sql[last:start])
        out.append(f"${name}")
        last = end
    out.append(sql[last:])
    return "".join(out)


def typed(value: Any) -> Any:
    """A parameter's value as typed on a page: whole numbers and decimals as numbers,
    true/false as booleans, anything else as text (compared as DuckDB casts it)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if re.fullmatch(r"[+-]?\d{1,18}", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def bound(sql: str, values: dict[str, Any]) -> dict[str, Any] | None:
    """The values of ``sql``'s parameters (None when it has none); a missing one is null."""
    names = parameter_names(sql)
    if not names:
        return None
    return {n: typed(values.get(n)) for n in names}


def error_position(message: str, sql: str) -> dict[str, int] | None:
    """Where an engine error points in ``sql`` (1-based line and column): the parser's
    ``LINE n:`` caret, or the first quoted name of the message found as a word of the
    text; None when neither is found."""
    lines = sql.split("\n")
    caret = re.search(r"LINE (\d+): (.*)\n( *)\^", message)
    if caret is not None:
        prefix = len(f"LINE {caret.group(1)}: ")
        at = len(caret.group(3)) - prefix
        snippet = caret.group(2)
        word = re.match(r"[\w\"]+|\S", snippet[at:] if 0 <= at < len(snippet) else "")
        wanted = int(caret.group(1)) - 1
        if word is not None:
            found = _find_word(lines, word.group(0), wanted, at)
            if found is not None:
                return found
        if 0 <= wanted < len(lines):
            return {"line": wanted + 1, "column": max(at, 0) + 1}
    for quoted in re.findall(r'"([^"\n]+)"', message):
        found = _find_word(lines, quoted, 0, 0)
        if found is not None:
            return found
    return None


def _find_word(
    lines: list[str], word: str, near_line: int, near_column: int
) -> dict[str, int] | None:
    """The occurrence of ``word`` (as a whole word) nearest the line and column given."""
    pattern = re.compile(r"(?<![\w.])" + re.escape(word) + r"(?!\w)", re.IGNORECASE)
    best: tuple[int, int, int] | None = None  # score, line, column
    for n, line in enumerate(lines):
        for m in pattern.finditer(line):
            score = abs(n - near_line) * 1000 + abs(m.start() - near_column)
            if best is None or score < best[0]:
                best = (score, n, m.start())
    return None if best is None else {"line": best[1] + 1, "column": best[2] + 1}
