"""Generators for the demo's sources: deterministic for a seed, sized by options.

Every generator draws its random numbers up front in numpy arrays and builds its columns
with Arrow compute, so ten million app events (and the other sources in proportion) take
seconds, not minutes. Timestamps are ``timestamp[us, tz=UTC]``, except the change events'
``changed_at``, which is ISO 8601 text as a database's change log writes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EVENT_TYPES = ["app_open", "page_view", "click", "scroll", "share", "purchase"]
EVENT_WEIGHTS = [0.15, 0.35, 0.25, 0.15, 0.04, 0.06]
INVALID_EVENT_TYPE = "unknown"  # what a broken client sends; silver flags it
APP_TYPES = ["ios", "android", "web"]
PAGES = ["/home", "/products", "/product/detail", "/cart", "/checkout", "/search", "/profile"]
TIMESTAMP = pa.timestamp("us", tz="UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)


def default_users(n: int) -> int:
    """The size of the user base for ``n`` app events: 50 events per user, at least 200."""
    return max(200, n // 50)


def app_events(
    n: int = 1500,
    *,
    users: int | None = None,
    days: float = 2,
    start: datetime | None = None,
    seed: int = 7,
    duplicate_share: float = 0.01,
    invalid_share: float = 0.02,
) -> pa.Table:
    """App events: event_id (string), user_id (int64), event_type (string), app_type
    (string), page (string), event_time (timestamp[us, UTC]), amount (float64, set on
    purchases only), in delivery order (about time order).

    ``users`` defaults to ``default_users(n)``; a few heavy users make many events. About
    ``duplicate_share`` of the rows are replays of an earlier event (same event_id, same
    values, delivered a little later), and about ``invalid_share`` of the events are invalid
    in one way: user_id null, event_type ``'unknown'``, or a purchase with a negative amount.
    """
    rng = np.random.default_rng(seed)
    users = default_users(n) if users is None else users
    replays = min(n - 1, round(n * duplicate_share)) if n > 1 else 0
    m = n - replays  # the distinct events
    seconds = np.sort(rng.integers(0, max(1, int(days * 86400)), m))
    kinds = rng.choice(len(EVENT_TYPES), m, p=EVENT_WEIGHTS)
    apps = rng.choice(len(APP_TYPES), m, p=[0.4, 0.35, 0.25])
    pages = rng.integers(0, len(PAGES), m)
    amounts = np.round(rng.gamma(2.0, 25.0, m), 2)
    # A skewed user base: a few heavy users, many light ones (a power law, as Zipf's).
    heavy = np.minimum(rng.random(m) ** (-1 / 0.6), 1e15).astype(np.int64)
    user_ids = (heavy - 1) % users + 1
    # Invalid events: one fault each.
    invalid = np.flatnonzero(rng.random(m) < invalid_share)
    fault = rng.integers(0, 3, invalid.size)
    no_user = np.zeros(m, bool)
    no_user[invalid[fault == 0]] = True
    kinds[invalid[fault == 1]] = len(EVENT_TYPES)  # the index of INVALID_EVENT_TYPE
    negative = invalid[fault == 2]
    purchase = EVENT_TYPES.index("purchase")
    kinds[negative] = purchase
    amounts[negative] = -amounts[negative]
    # Replays: a copy of an earlier event, delivered 1-200 events after it.
    originals = rng.integers(0, max(1, m), replays)
    later = np.minimum(originals + rng.integers(1, 201, replays), m - 1)
    order = np.argsort(np.concatenate([2 * np.arange(m), 2 * later + 1]), kind="stable")
    row = np.concatenate([np.arange(m), originals])[order]  # the event each row delivers
    kinds = kinds[row]
    return pa.table(
        {
            "event_id": _ids(f"e{seed}-", row, 8),
            "user_id": pa.array(user_ids[row], pa.int64(), mask=no_user[row]),
            "event_type": _pick([*EVENT_TYPES, INVALID_EVENT_TYPE], kinds),
            "app_type": _pick(APP_TYPES, apps[row]),
            "page": _pick(PAGES, pages[row]),
            "event_time": _times(start, seconds[row] * 1_000_000),
            "amount": pa.array(amounts[row], pa.float64(), mask=kinds != purchase),
        }
    )


CLICK_PAGES = ["/home", "/search", "/products", "/product/detail", "/cart", "/checkout"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) Chrome/131.0 Mobile",
]
MAX_CLICKS = 12


def clickstream(
    sessions: int = 800,
    *,
    users: int | None = None,
    days: float = 2,
    start: datetime | None = None,
    seed: int = 11,
) -> pa.Table:
    """Clicks grouped in sessions: click_id (string), session_id (string), user_id
    (int64), page (string), click_time (timestamp[us, UTC]), scroll_depth (int64, 0-100),
    user_agent (string). A session is 1-12 clicks (about 4 on average) 3 seconds to 5
    minutes apart, by one user with one user agent; its pages wander from the home page
    towards checkout. Sessions are numbered in the order they start; the clicks come in
    time order, as a collector logs them. ``users`` defaults to one per 25 sessions, at
    least 200."""
    rng = np.random.default_rng(seed)
    users = max(200, sessions // 25) if users is None else users
    span = max(1, int(days * 86400))
    clicks = np.minimum(rng.geometric(0.25, sessions), MAX_CLICKS)
    session_user = rng.integers(1, users + 1, sessions)
    session_agent = rng.integers(0, len(USER_AGENTS), sessions)
    # A session starts early enough to end (at most 55 minutes later) inside the window.
    begins = np.sort(rng.integers(0, max(1, span - min(3600, span // 2)), sessions))
    total = int(clicks.sum())
    session = np.repeat(np.arange(sessions), clicks)
    first = np.cumsum(clicks) - clicks  # each session's first click
    position = np.arange(total) - first[session]
    gaps = rng.integers(3, 300, total)
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= elapsed[first][session]
    depth = rng.integers(0, 101, total)
    steps = rng.integers(-1, 3, total)
    page = np.zeros(total, np.int64)
    for c in range(1, MAX_CLICKS):  # a walk over the pages, one click position at a time
        at = np.flatnonzero(position == c)
        page[at] = np.clip(page[at - 1] + steps[at], 0, len(CLICK_PAGES) - 1)
    # The collector logs clicks as they happen: sessions interleave.
    seconds = begins[session] + elapsed
    order = np.argsort(seconds, kind="stable")
    session, position, page, depth = session[order], position[order], page[order], depth[order]
    session_ids = _ids(f"s{seed}-", session, 6)
    click_ids = pc.binary_join_element_wise(
        pc.binary_replace_slice(session_ids, start=0, stop=1, replacement="c"),
        _pick([f"{c:02d}" for c in range(MAX_CLICKS)], position),
        "-",
    )
    return pa.table(
        {
            "click_id": click_ids,
            "session_id": session_ids,
            "user_id": pa.array(session_user[session], pa.int64()),
            "page": _pick(CLICK_PAGES, page),
            "click_time": _times(start, seconds[order] * 1_000_000),
            "scroll_depth": pa.array(depth, pa.int64()),
            "user_agent": _pick(USER_AGENTS, session_agent[session]),
        }
    )


CDC_TABLES = ["customers", "products"]
TIERS = ["free", "pro", "enterprise"]
CHANGE_OPERATIONS = ["insert", "update", "delete"]


def change_events(
    n: int = 300,
    *,
    days: float | None = None,
    start: datetime | None = None,
    seed: int = 13,
) -> pa.Table:
    """Database change events as a source database would emit them, in commit order:
    table_name (string: customers or products), operation (string: insert, update,
    delete), primary_key (int64), before and after (string: the row's JSON image, null
    where the operation has none), sequence (int64: a log position, 1, 2, 3, ...) and
    changed_at (string: ISO 8601 time). Updates and deletes only touch rows that exist, and
    an update's before image is the row as the previous change left it.

    Without ``days`` the changes come 1-600 seconds apart; with it they are spread over
    ``days`` from ``start``. The first ``k`` events of ``change_events(n)`` are those of
    ``change_events(k)`` (but for changed_at when ``days`` is given), so a longer log
    continues a shorter one."""
    rng = np.random.default_rng(seed)
    # One row of draws per event keeps a longer log's prefix equal to a shorter log.
    draws = rng.random((n, 6))
    table = (draws[:, 0] >= 0.5).astype(np.int64)  # 0 customers, 1 products
    operation, keys, before_of = _change_log(table, draws[:, 1], draws[:, 2])
    values = draws[:, 3]
    key_text = pa.array(keys).cast(pa.string())
    customer = pc.binary_join_element_wise(
        '{"customer_id": ',
        key_text,
        ', "email": "customer',
        key_text,
        '@example.com", "name": "customer ',
        key_text,
        '", "tier": "',
        _pick(TIERS, (values * len(TIERS)).astype(np.int64)),
        '"}',
        "",
    )
    cents = 100 + (values * 49901).astype(np.int64)  # a price of 1.00 to 500.00
    in_stock = draws[:, 4] > 0.2
    product = pc.binary_join_element_wise(
        '{"in_stock": ',
        _pick(["false", "true"], in_stock.astype(np.int64)),
        ', "name": "product ',
        key_text,
        '", "price": ',
        pa.array(cents // 100).cast(pa.string()),
        ".",
        _pick([f"{c:02d}" for c in range(100)], cents % 100),
        ', "product_id": ',
        key_text,
        "}",
        "",
    )
    image = pc.if_else(pa.array(table == 0), customer, product)
    deleted = operation == CHANGE_OPERATIONS.index("delete")
    after = pc.if_else(pa.array(deleted), pa.scalar(None, pa.string()), image)
    before = image.take(pa.array(before_of, mask=before_of < 0))
    gaps = 1 + (draws[:, 5] * 599).astype(np.int64)
    if days is None:
        micros = np.cumsum(gaps) * 1_000_000
    else:
        elapsed = np.cumsum(gaps)
        span = days * 86400 * 1_000_000
        micros = (elapsed / (elapsed[-1] + 300) * span).astype(np.int64) if n else elapsed
    return pa.table(
        {
            "table_name": _pick(CDC_TABLES, table),
            "operation": _pick(CHANGE_OPERATIONS, operation),
            "primary_key": pa.array(keys, pa.int64()),
            "before": before,
            "after": after,
            "sequence": pa.array(np.arange(1, n + 1), pa.int64()),
            "changed_at": iso_text(_times(start, micros)),
        }
    )


def _change_log(
    table: np.ndarray, roll: np.ndarray, pick: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replay the log's choices against the live rows: per event the operation (index in
    CHANGE_OPERATIONS), the primary key, and the event that wrote the image the row had
    before (-1 for an insert). The tables' rows are independent: each is replayed alone."""
    n = len(table)
    operation = np.zeros(n, np.int64)
    keys = np.zeros(n, np.int64)
    before_of = np.full(n, -1, np.int64)
    for t in range(len(CDC_TABLES)):
        at = np.flatnonzero(table == t)
        ops, ks, prev = _replay(roll[at].tolist(), pick[at].tolist())
        operation[at] = ops
        keys[at] = ks
        earlier = np.array(prev, np.int64)
        before_of[at] = np.where(earlier >= 0, at[np.maximum(earlier, 0)], -1)
    return operation, keys, before_of


def _replay(rolls: list[float], picks: list[float]) -> tuple[list[int], list[int], list[int]]:
    """One table's changes: an insert (a new key) when the roll is below 0.45 or no row
    exists, else an update (below 0.85) or a delete of a live row picked uniformly."""
    m = len(rolls)
    ops, keys, prev = [0] * m, [0] * m, [-1] * m
    rows: list[int] = []  # the live keys
    image = [-1]  # key -> the change that wrote its current image (keys count from 1)
    add_row, drop_last, add_image = rows.append, rows.pop, image.append
    live = 0
    for i, r, p in zip(range(m), rolls, picks, strict=False):
        if r < 0.45 or not live:
            key = len(image)
            add_image(i)
            add_row(key)
            live += 1
        else:
            j = int(p * live)
            key = rows[j]
            prev[i] = image[key]
            if r < 0.85:
                ops[i] = 1
                image[key] = i
            else:
                ops[i] = 2
                live -= 1
                last = drop_last()  # the last live key takes the deleted one's place
                if j < live:
                    rows[j] = last
        keys[i] = key
    return ops, keys, prev


USER_EVENT_TYPES = ["login", "click", "purchase", "logout"]
USER_EVENT_WEIGHTS = [0.2, 0.6, 0.08, 0.12]
USER_EVENT_PAGES = ["/home", "/products", "/product/detail", "/cart", "/checkout", "/account"]


def user_events(
    n: int = 3000,
    *,
    initial_users: int | None = None,
    growth_per_hour: float | None = None,
    active_share: float = 0.8,
    days: float = 2,
    start: datetime | None = None,
    seed: int = 17,
) -> pa.Table:
    """Events of the real-time path: event_id (string), user_id (int64), event_type
    (string: login, click, purchase, logout), page (string), source (string: web or
    mobile), amount (float64, set on purchases only), event_time (timestamp[us, UTC]), in
    time order. The user base grows from ``initial_users`` (default one per 30 events, at
    least 100) by ``growth_per_hour`` (default a fiftieth of the initial users); about
    ``active_share`` of the events come from a fifth of the users (the active ones)."""
    rng = np.random.default_rng(seed)
    initial = max(100, n // 30) if initial_users is None else initial_users
    growth = initial / 50 if growth_per_hour is None else growth_per_hour
    seconds = np.sort(rng.integers(0, max(1, int(days * 86400)), n))
    base = initial + (growth * seconds / 3600).astype(np.int64)
    active = np.maximum(1, base // 5)
    from_active = rng.random(n) < active_share
    which = rng.random(n)
    quiet = np.where(base > active, active + 1 + (which * (base - active)).astype(np.int64), 1)
    user = np.where(from_active, 1 + (which * active).astype(np.int64), quiet)
    kinds = rng.choice(len(USER_EVENT_TYPES), n, p=USER_EVENT_WEIGHTS)
    purchase = kinds == USER_EVENT_TYPES.index("purchase")
    pages = np.where(purchase, USER_EVENT_PAGES.index("/checkout"), rng.integers(0, 6, n))
    web = rng.random(n) < 0.55
    amounts = np.full(n, np.nan)
    amounts[purchase] = np.round(rng.gamma(2.0, 30.0, int(purchase.sum())), 2)
    return pa.table(
        {
            "event_id": _ids(f"u{seed}-", np.arange(n), 8),
            "user_id": pa.array(user, pa.int64()),
            "event_type": _pick(USER_EVENT_TYPES, kinds),
            "page": _pick(USER_EVENT_PAGES, pages),
            "source": _pick(["mobile", "web"], web.astype(np.int64)),
            "amount": pa.array(amounts, pa.float64(), mask=~purchase),
            "event_time": _times(start, seconds * 1_000_000),
        }
    )


def micros_since_epoch(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def iso_text(times: pa.Array, zone: str = "+00:00") -> pa.Array:
    """ISO 8601 text of UTC timestamps, as ``datetime.isoformat`` writes them: seconds
    only when every value is a whole second, else microseconds; ``zone`` ends each one
    (``"Z"`` is the other usual way to say UTC)."""
    micros = np.asarray(times.cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    if (micros % 1_000_000 == 0).all():
        naive = pa.array(micros // 1_000_000, pa.int64()).view(pa.timestamp("s"))
    else:
        naive = pa.array(micros, pa.int64()).view(pa.timestamp("us"))
    text = pc.replace_substring(naive.cast(pa.string()), " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, zone, "")


def _times(start: datetime | None, micros: np.ndarray) -> pa.Array:
    """``start`` (default 2026-11-01 UTC) plus microseconds, as timestamp[us, UTC]."""
    origin = micros_since_epoch(start or DEFAULT_START)
    return pa.array(np.asarray(micros, np.int64) + origin, pa.int64()).view(TIMESTAMP)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` and the number zero-padded to ``width`` digits, e.g. ``e7-00000012``
    (wider when a number needs more digits: then all are as wide)."""
    numbers = np.asarray(numbers, np.int64)
    if numbers.size:
        width = max(width, len(str(int(numbers.max()))))
    # 10**width + number is "1" and the padded digits; the "1" becomes the prefix.
    text = pa.array(numbers + 10**width, pa.int64()).cast(pa.string())
    return pc.binary_replace_slice(text, start=0, stop=1, replacement=prefix)


def _pick(values: list[str], index: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(index, pa.int64()))
