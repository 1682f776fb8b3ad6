"""How deeply JSON text nests, found without parsing it (no recursion, whatever the depth).

JSON parsers recurse once per level of nesting: Python's ``json`` raises RecursionError
after about a thousand levels, and the parser behind Arrow's JSON reader overflows the
stack of its thread (a crash of the whole process) after some ten thousand. Text is
therefore measured first, with array operations over its bytes, and text nested deeper
than ``MAX_DEPTH`` never reaches a parser.
"""

from __future__ import annotations

import numpy as np

MAX_DEPTH = 32  # levels of objects and arrays a JSON value may nest (a Delta table
# schema holds structs about 42 deep)
CHUNK = 8 << 20  # bytes measured at once (a longer segment is measured alone)

_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN, _CLOSE = 0x5B, 0x5D  # `[` and `]`; `{` and `}` are the same bytes with bit 0x20 set


def too_deep_message(depth: int, what: str = "the JSON") -> str:
    return f"{what} nests {depth} levels deep, more than the {MAX_DEPTH} allowed"


def document_depth(data: bytes | bytearray | memoryview) -> int:
    """The deepest nesting of one JSON text (its brackets outside strings)."""
    raw = np.frombuffer(data, np.uint8)
    deepest, _ = segment_depths(raw, np.zeros(1, np.int64))
    return int(deepest[0])


def segment_depths(raw: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each segment of ``raw`` (``starts`` ascending, the first 0; a segment runs to
    the next start): the deepest nesting of its brackets outside strings, and whether it
    is unbalanced (it ends at another depth than it starts, or closes more than it
    opened). A string runs from an unescaped quote to the next one in the same segment.
    Work is done on chunks of whole segments, so memory stays bounded."""
    count = len(starts)
    deepest = np.zeros(count, np.int64)
    unbalanced = np.zeros(count, bool)
    bounds = np.append(np.asarray(starts, np.int64), raw.size)
    first = 0
    while first < count:
        # Segments from `first` up to about CHUNK bytes (at least one).
        last = int(np.searchsorted(bounds, bounds[first] + CHUNK, "right")) - 1
        last = min(max(last, first + 1), count)
        lo, hi = int(bounds[first]), int(bounds[last])
        d, u = _measure(raw[lo:hi], bounds[first:last] - lo)
        deepest[first:last], unbalanced[first:last] = d, u
        first = last
    return deepest, unbalanced


def _measure(raw: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = len(starts)
    deepest = np.zeros(count, np.int64)
    unbalanced = np.zeros(count, bool)
    folded = raw & 0xDF  # `{` -> `[`, `}` -> `]`
    brackets = np.flatnonzero((folded == _OPEN) | (folded == _CLOSE))
    if brackets.size == 0:
        return deepest, unbalanced
    step = np.where(folded[brackets] == _OPEN, 1, -1)
    del folded
    # Each segment's brackets: from its first (``begin``), ``counts`` of them.
    begin = np.searchsorted(brackets, starts)
    counts = np.diff(np.append(begin, brackets.size))
    # A bracket is in a string when an odd number of quotes of its segment precede it:
    # the parity of the quotes up to it, against the parity where its segment starts.
    marks = np.zeros(raw.size, np.uint8)
    marks[_unescaped_quotes(raw)] = 1
    parity = np.bitwise_xor.accumulate(marks)
    del marks
    at_start = np.where(starts > 0, parity[np.maximum(starts - 1, 0)], 0)
    in_string = parity[brackets] != np.repeat(at_start, counts)
    del parity
    step[in_string] = 0
    level = np.cumsum(step)
    # The level within its segment: minus the running total before the segment began.
    before = np.where(begin > 0, level[np.maximum(begin - 1, 0)], 0)
    level -= np.repeat(before, counts)
    present = counts > 0
    first = begin[present]
    deepest[present] = np.maximum(np.maximum.reduceat(level, first), 0)
    ends = level[first + counts[present] - 1]
    unbalanced[present] = (ends != 0) | (np.minimum.reduceat(level, first) < 0)
    return deepest, unbalanced


def _unescaped_quotes(raw: np.ndarray) -> np.ndarray:
    """Positions of the quotes not escaped by an odd run of backslashes before them."""
    quotes = np.flatnonzero(raw == _QUOTE)
    backslashes = np.flatnonzero(raw == _BACKSLASH)
    if quotes.size == 0 or backslashes.size == 0:
        return quotes
    after_backslash = np.intersect1d(quotes, backslashes + 1, assume_unique=True)
    if after_backslash.size == 0:
        return quotes
    run_begins = np.ones(backslashes.size, bool)
    run_begins[1:] = np.diff(backslashes) != 1
    run_start = backslashes[run_begins][np.cumsum(run_begins) - 1]
    at = np.searchsorted(backslashes, after_backslash - 1)
    run = after_backslash - run_start[at]  # backslashes just before the quote
    escaped = after_backslash[run % 2 == 1]
    return np.setdiff1d(quotes, escaped, assume_unique=True)
