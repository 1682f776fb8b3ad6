"""A REST API into bronze, exactly once: every page of the endpoint is fetched (page
number, offset, cursor or Link header pagination), under a rate limit, with retries and
exponential backoff on 429, 5xx and time-outs (a ``Retry-After`` is honoured), and the
records land in one commit.

An incremental source sends its mark as a query parameter (inclusive: records at or
after it) and commits the new mark with the rows as Delta transaction identifiers
(``api:<url>:<field>``, the mark: an integer as is, a time in microseconds since 1970;
``api:<url>:load``, the load's sequence number), as database loads do. Records at the
mark whose content the table holds (``_record_hash``, md5 of the record's JSON with sorted
keys) are dropped. A record that is not a JSON object, or whose mark field cannot be read,
goes to ``<table>_quarantine`` with its payload and the reason, under the same load
number (a re-run after a crash does not quarantine it twice).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.ingest import jsonlines
from lakehouse.ingest.rest_config import RestSource
from lakehouse.names import parse_table_name
from lakehouse.quoting import string

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
RETRIED = {429, 500, 502, 503, 504}


@dataclass
class ApiReport:
    table: str
    source: str
    pages: int = 0
    records: int = 0  # records fetched
    rows: int = 0  # rows landed
    already_held: int = 0
    quarantined: int = 0
    retries: int = 0
    version: int | None = None
    mark: Any = None
    previous_mark: Any = None
    schema_changes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Fetcher:
    """Requests under the source's rate limit, retried with exponential backoff."""

    def __init__(self, source: RestSource, report: ApiReport, sleep: Any = time.sleep) -> None:
        self.source = source
        self.report = report
        self.sleep = sleep
        headers = dict(source.headers)
        if source.auth is not None:
            headers.update(source.auth.headers())
        self.client = httpx.Client(
            headers=headers,
            auth=source.auth.basic() if source.auth is not None else None,
            timeout=source.timeout,
            follow_redirects=True,
        )
        self.last = 0.0

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, params: dict[str, Any] | None) -> httpx.Response:
        retries = self.source.retries
        delay = retries.backoff
        for attempt in range(1, retries.attempts + 1):
            self._pace()
            try:
                response = self.client.get(url, params=params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt == retries.attempts:
                    raise LakehouseError(
                        f"GET {url} failed after {attempt} attempt(s): {exc}",
                        "check the base URL and that the API is reachable",
                    ) from exc
                wait = delay
            else:
                if response.status_code not in RETRIED:
                    if response.status_code >= 400:
                        raise _http_error(url, response)
                    return response
                if attempt == retries.attempts:
                    raise _http_error(url, response, attempt)
                wait = _retry_after(response) or delay
            self.report.retries += 1
            self.sleep(min(wait, retries.max_backoff))
            delay *= 2
        raise AssertionError("unreachable")

    def _pace(self) -> None:
        if self.source.rate_limit:
            gap = 1.0 / self.source.rate_limit - (time.monotonic() - self.last)
            if gap > 0:
                self.sleep(gap)
        self.last = time.monotonic()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


def _http_error(url: str, response: httpx.Response, attempts: int = 1) -> LakehouseError:
    code = response.status_code
    hint = {
        401: "check the credentials (auth) and the environment variable holding them",
        403: "the credentials are not allowed this endpoint",
        404: "check base_url and endpoint",
        429: "the API kept throttling: lower rate_limit or raise retries.attempts",
    }.get(code, "the API failed: see its answer above, or retry later")
    body = response.text[:200].replace("\n", " ")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return LakehouseError(f"GET {url} answered {code}{tries}: {body}", hint)


def _path(value: Any, path: str | None) -> Any:
    for key in (path or "").split("."):
        if not key:
            continue
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def fetch(source: RestSource, mark: Any, report: ApiReport, sleep: Any = time.sleep) -> list[Any]:
    """Every record of every page (as parsed JSON values; quarantined later if bad)."""
    fetcher = Fetcher(source, report, sleep)
    pages = source.pagination
    params: dict[str, Any] = dict(source.params)
    if source.incremental is not None and mark is not None:
        params[source.incremental.param] = mark
    records: list[Any] = []
    url: str | None = source.url
    number, offset = pages.start, 0
    try:
        while url is not None and report.pages < pages.max_pages:
            query = dict(params)
            if pages.type == "page":
                query[pages.page_param] = number
                if pages.size_param:
                    query[pages.size_param] = pages.size
            elif pages.type == "offset":
                query[pages.offset_param] = offset
                query[pages.limit_param] = pages.size
            response = fetcher.get(url, query if url == source.url else None)
            report.pages += 1
            try:
                body = response.json()
            except ValueError as exc:
                raise LakehouseError(
                    f"page {report.pages} of {source.url} is not JSON: {exc}",
                    "check records_path and that the endpoint answers JSON",
                ) from exc
            found = _path(body, source.records_path)
            if found is None:
                found = []
            if not isinstance(found, list):
                found = [found]
            records += found
            url, params = _next(source, response, body, found, url, params)
            number += 1
            offset += len(found)
    finally:
        fetcher.close()
    return records


def _next(
    source: RestSource,
    response: httpx.Response,
    body: Any,
    found: list[Any],
    url: str,
    params: dict[str, Any],
) -> tuple[str | None, dict[str, Any]]:
    """The next page's URL and parameters; None when this was the last page."""
    pages = source.pagination
    if pages.type == "none":
        return None, params
    if pages.type in ("page", "offset"):
        return (url if found else None), params
    if pages.type == "cursor":
        cursor = _path(body, pages.cursor_path)
        if cursor in (None, "") or not found:
            return None, params
        return url, {**params, pages.cursor_param: cursor}
    link = response.links.get("next", {}).get("url")
    return (str(response.url.join(link)) if link else None), params


# -- landing -------------------------------------------------------------------------------
def mark_id(source: RestSource) -> str:
    assert source.incremental is not None
    return f"api:{source.url}:{source.incremental.field}"


def load_id(source: RestSource) -> str:
    return f"api:{source.url}:load"


def _encode(value: Any) -> tuple[int, str] | None:
    """A mark value as a transaction number, and how it was written (int or time)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value, "int"
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int((when - EPOCH) // dt.timedelta(microseconds=1)), "time"
    return None


def _decode(number: int, kind: str) -> Any:
    if kind == "int":
        return number
    when = EPOCH + dt.timedelta(microseconds=number)
    return when.isoformat().replace("+00:00", "Z")


def record_hash(record: dict[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.md5(text.encode()).hexdigest()


def ingest_api(
    lh: Lakehouse, source: RestSource, *, sleep: Any = time.sleep, into: str | None = None
) -> ApiReport:
    name = parse_table_name(into or source.into)
    if name.layer != "bronze":
        raise LakehouseError(f"API records are ingested into bronze, not {name.layer}")
    table = str(name)
    report = ApiReport(table, source.url)
    sequence, mark, kind = 0, None, "int"
    inc = source.incremental
    if lh.exists(table):
        t = lh.table(table)
        sequence = t.transaction_version(load_id(source)) or 0
        if inc is not None:
            held = t.transaction_version(mark_id(source))
            if held is not None:
                kind = "time" if t.transaction_version(mark_id(source) + ":time") else "int"
                mark = _decode(held, kind)
    if mark is None and inc is not None:
        mark = inc.initial
    report.previous_mark = mark
    records = fetch(source, mark, report, sleep)
    report.records = len(records)
    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    top: tuple[int, str] | None = None
    for record in records:
        if not isinstance(record, dict):
            bad.append(_bad(record, "not a JSON object"))
            continue
        if inc is not None:
            value = _encode(record.get(inc.field))
            if value is None:
                reason = f"its {inc.field!r} is not an integer or an ISO time"
                bad.append(_bad(record, reason))
                continue
            top = value if top is None or value[0] > top[0] else top
        good.append(record)
    hashes = [record_hash(r) for r in good]
    if mark is not None and inc is not None and good and lh.exists(table):
        good, hashes, report.already_held = _drop_held(lh, table, source, good, hashes, mark)
    txn = [(load_id(source), sequence + 1)]
    if top is not None:
        txn.append((mark_id(source), top[0]))
        if top[1] == "time":
            txn.append((mark_id(source) + ":time", 1))
        report.mark = _decode(*top)
    else:
        report.mark = mark
    if bad:
        written = lh.write(
            f"{table}_quarantine",
            bad,
            source_system=source.source_system,
            source=source.url,
            txn=txn[:1],
            description=f"Records of {table} that could not be read: payload and reason",
        )
        if not written.skipped:
            report.quarantined = len(bad)
    if not good:
        if lh.exists(table) and (top is not None or bad):
            lh.write(table, pa.table({}), evolve=True, txn=txn)  # the mark moves on
        return report
    rows, _ = jsonlines.fit_rows(lh, table, good)
    rows = rows.append_column("_record_hash", pa.array(hashes, pa.string()))
    written = lh.write(
        table, rows, evolve=True, source_system=source.source_system, source=source.url, txn=txn
    )
    if written.skipped:
        raise LakehouseError(
            f"another load of {source.url} into {table} committed first",
            "nothing was written: run the load again to take what is newer",
        )
    report.rows = rows.num_rows
    report.version = written.version
    report.schema_changes = written.schema_changes
    return report


def _drop_held(
    lh: Lakehouse,
    table: str,
    source: RestSource,
    good: list[dict[str, Any]],
    hashes: list[str],
    mark: Any,
) -> tuple[list[dict[str, Any]], list[str], int]:
    """Without the records the table holds already (the source sends those at the mark
    again: its parameter is inclusive)."""
    held = lh.sql(
        f"SELECT DISTINCT _record_hash FROM {table} WHERE _source = {string(source.url)}"
    ).to_arrow()
    seen = set(held.column(0).to_pylist())
    keep = [i for i, h in enumerate(hashes) if h not in seen]
    return [good[i] for i in keep], [hashes[i] for i in keep], len(good) - len(keep)


def _bad(record: Any, reason: str) -> dict[str, Any]:
    return {"raw_payload": json.dumps(record, default=str), "reason": reason}
