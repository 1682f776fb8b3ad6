"""Expectations: a name, a check, an action.

Row checks (a SQL boolean per row: ``expect``, not null, accepted values, range, regex,
referential, no rescued data) can warn (keep and record), drop (remove and record),
quarantine (move to ``<table>_quarantine`` with the failed names) or fail (abort the run).
Table checks (unique key, freshness, row-count bounds, schema completeness) can warn or
fail. A row whose check is NULL counts as failed: a check says what good rows look like.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from lakehouse.quoting import ident, string
from lakehouse.scratch import scratch

ROW_ACTIONS = ("warn", "drop", "quarantine", "fail")
TABLE_ACTIONS = ("warn", "fail")
ROW_CHECKS = (
    "expect",
    "not_null",
    "accepted_values",
    "range",
    "regex",
    "referential",
    "no_rescued_data",
)
TABLE_CHECKS = ("unique", "freshness", "row_count", "schema")
SAMPLE = 5
RESCUED = "_rescued_data"  # bronze: JSON of {column: raw value} for values that did not fit


@dataclass(frozen=True)
class Expectation:
    name: str
    check: str
    action: str
    params: Any
    line: int = 0
    sql: str | None = None  # row checks: what a good row satisfies

    @property
    def row_level(self) -> bool:
        return self.sql is not None

    @property
    def references(self) -> list[str]:
        """Tables the check reads (referential checks)."""
        if self.check == "referential":
            return [self.params["table"]]
        return []


@dataclass
class CheckResult:
    expectation: str
    check: str
    action: str
    passed: bool
    failed_rows: int
    total_rows: int
    detail: str = ""
    sample: list[dict[str, Any]] = field(default_factory=list)


class ExpectationError(ValueError):
    pass


q = ident


def lit(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return string(str(value))


def parse_expectation(item: Any, line: int = 0) -> Expectation:
    """One entry of a header's ``expectations`` list."""
    if not isinstance(item, dict):
        raise ExpectationError("an expectation is a mapping with a name, a check and an action")
    item = dict(item)
    name = item.pop("name", None)
    action = str(item.pop("action", "warn"))
    kinds = [k for k in item if k in ROW_CHECKS + TABLE_CHECKS]
    if len(kinds) != 1 or len(item) != 1:
        extra = sorted(set(item) - set(kinds))
        raise ExpectationError(
            f"expectation {name or '?'} needs exactly one check of "
            f"{', '.join(ROW_CHECKS + TABLE_CHECKS)}"
            + (f"; unknown key(s): {', '.join(extra)}" if extra else "")
        )
    check = kinds[0]
    params = item[check]
    if not name or not isinstance(name, str):
        name = f"{check}_{_slug(params)}"
    allowed = ROW_ACTIONS if check in ROW_CHECKS else TABLE_ACTIONS
    if action not in allowed:
        raise ExpectationError(
            f"expectation {name}: action {action!r} does not go with a {check} check; "
            f"use one of {', '.join(allowed)}"
        )
    sql = _row_sql(check, params, name) if check in ROW_CHECKS else None
    if check in TABLE_CHECKS:
        _check_table_params(check, params, name)
    return Expectation(name=name, check=check, action=action, params=params, line=line, sql=sql)


def _slug(params: Any) -> str:
    if isinstance(params, str):
        return "".join(c if c.isalnum() else "_" for c in params)[:40]
    if isinstance(params, list):
        return "_".join(str(p) for p in params)[:40]
    if isinstance(params, dict) and "column" in params:
        return str(params["column"])
    return "check"


def _columns(value: Any, name: str) -> list[str]:
    cols = [value] if isinstance(value, str) else value
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
        raise ExpectationError(f"expectation {name}: name a column or a list of columns")
    return cols


def _need(params: Any, name: str, *keys: str) -> dict[str, Any]:
    if not isinstance(params, dict) or any(k not in params for k in keys):
        raise ExpectationError(f"expectation {name}: give {', '.join(keys)}")
    return params


def _row_sql(check: str, params: Any, name: str) -> str:
    if check == "expect":
        if not isinstance(params, str) or not params.strip():
            raise ExpectationError(f"expectation {name}: expect takes a SQL boolean expression")
        return params
    if check == "no_rescued_data":
        return _no_rescued_sql(params, name)
    if check == "not_null":
        return " AND ".join(f"{q(c)} IS NOT NULL" for c in _columns(params, name))
    if check == "accepted_values":
        p = _need(params, name, "column", "values")
        if not isinstance(p["values"], list) or not p["values"]:
            raise ExpectationError(f"expectation {name}: values is a non-empty list")
        values = ", ".join(lit(v) for v in p["values"])
        return f"{q(p['column'])} IS NULL OR {q(p['column'])} IN ({values})"
    if check == "range":
        p = _need(params, name, "column")
        if "min" not in p and "max" not in p:
            raise ExpectationError(f"expectation {name}: give min, max or both")
        bounds = []
        if "min" in p:
            bounds.append(f"{q(p['column'])} >= {lit(p['min'])}")
        if "max" in p:
            bounds.append(f"{q(p['column'])} <= {lit(p['max'])}")
        return f"{q(p['column'])} IS NULL OR ({' AND '.join(bounds)})"
    if check == "regex":
        p = _need(params, name, "column", "pattern")
        return (
            f"{q(p['column'])} IS NULL OR regexp_full_match({q(p['column'])}, {lit(p['pattern'])})"
        )
    p = _need(params, name, "column", "table")  # referential
    to = p.get("to", p["column"])
    return f"{q(p['column'])} IS NULL OR {q(p['column'])} IN (SELECT {q(to)} FROM {p['table']})"


def _no_rescued_sql(params: Any, name: str) -> str:
    """No value of the row was rescued (kept in ``_rescued_data`` because it did not fit its
    column's type): ``true`` for any column, or a column or list of columns."""
    column = q(RESCUED)
    if params is True:
        return f"{column} IS NULL OR {column} IN ({string('')}, {string('{}')})"
    if params is False or params is None:
        raise ExpectationError(
            f"expectation {name}: no_rescued_data takes true (any column) or the column(s) "
            "whose rescued values fail the row"
        )
    names = ", ".join(lit(c) for c in _columns(params, name))
    return f"{column} IS NULL OR NOT list_has_any(json_keys({column}), [{names}])"


def _check_table_params(check: str, params: Any, name: str) -> None:
    if check == "unique":
        _columns(params, name)
    elif check == "freshness":
        _need(params, name, "column", "max_age")
    elif check == "row_count":
        if not isinstance(params, dict) or not ({"min", "max"} & set(params)):
            raise ExpectationError(f"expectation {name}: row_count takes min, max or both")
    elif check == "schema":
        _columns(params if not isinstance(params, dict) else list(params), name)


# -- evaluation ---------------------------------------------------------------------------
def flag_columns(expectations: list[Expectation]) -> list[tuple[Expectation, str]]:
    """Row checks and the boolean column each one's outcome is computed into."""
    return [(e, f"__lh_ok_{i}") for i, e in enumerate(e for e in expectations if e.row_level)]


def needs_columns(expectations: list[Expectation]) -> bool:
    """Whether ``with_flags`` must be told the query's columns (see there)."""
    return any(e.check == "no_rescued_data" for e in expectations)


def with_flags(sql: str, expectations: list[Expectation], columns: list[str] | None = None) -> str:
    """The dataset's query with one boolean column per row check. Given the query's
    ``columns``, a ``no_rescued_data`` check over rows without ``_rescued_data`` passes
    (nothing upstream was rescued yet: bronze adds the column with the first value)."""
    flags = flag_columns(expectations)
    if not flags:
        return sql

    def condition(e: Expectation) -> str | None:
        if e.check == "no_rescued_data" and columns is not None and RESCUED not in columns:
            return "true"
        return e.sql

    cols = ", ".join(f"coalesce(({condition(e)}), false) AS {c}" for e, c in flags)
    return f"SELECT *, {cols} FROM (\n{sql}\n) AS __lh_rows"


@dataclass
class Split:
    kept: pa.Table
    quarantined: pa.Table | None
    dropped: int
    failed: list[str]  # fail-action expectations with failing rows
    results: list[CheckResult]
    # dropped rows per expectation (a row failing several drop checks counts for the first)
    dropped_by: dict[str, int] = field(default_factory=dict)


def split_rows(table: pa.Table, expectations: list[Expectation]) -> Split:
    """Apply row checks to a computed batch (carrying the flag columns of ``with_flags``)."""
    flags = flag_columns(expectations)
    if not flags:
        return Split(table, None, 0, [], [])
    con = scratch()
    try:
        con.register("batch", table)
        cols = [c for c in table.column_names if not c.startswith("__lh_ok_")]
        plain = ", ".join(q(c) for c in cols)
        total = table.num_rows
        results, failed = [], []
        counts = con.sql(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE NOT {c})" for _, c in flags)
            + " FROM batch"
        ).fetchall()[0]
        for (e, c), bad in zip(flags, counts or [0] * len(flags), strict=True):
            sample = []
            if bad:
                rows = con.sql(f"SELECT {plain} FROM batch WHERE NOT {c} LIMIT {SAMPLE}")
                sample = [dict(zip(cols, r, strict=True)) for r in rows.fetchall()]
            results.append(
                CheckResult(e.name, e.check, e.action, bad == 0, int(bad), total, "", sample)
            )
            if bad and e.action == "fail":
                failed.append(e.name)
        removing = [c for e, c in flags if e.action in ("drop", "quarantine")]
        if not removing:
            kept = con.sql(f"SELECT {plain} FROM batch").to_arrow_table()
            return Split(kept, None, 0, failed, results)
        good = " AND ".join(removing)
        kept = con.sql(f"SELECT {plain} FROM batch WHERE {good}").to_arrow_table()
        to_quarantine = [(e, c) for e, c in flags if e.action == "quarantine"]
        quarantined = None
        dropped = total - kept.num_rows
        any_q = " OR ".join(f"NOT {c}" for _, c in to_quarantine) or "false"
        if to_quarantine:
            names = ", ".join(f"CASE WHEN NOT {c} THEN {lit(e.name)} END" for e, c in flags)
            quarantined = con.sql(
                f"SELECT {plain}, list_filter([{names}], lambda x: x IS NOT NULL) "
                f"AS _failed_expectations FROM batch WHERE {any_q}"
            ).to_arrow_table()
            dropped -= quarantined.num_rows
        dropped_by: dict[str, int] = {}
        drops = [(e, c) for e, c in flags if e.action == "drop"]
        if dropped and drops:
            first = " ".join(f"WHEN NOT {c} THEN {lit(e.name)}" for e, c in drops)
            dropped_by = dict(
                con.sql(
                    f"SELECT CASE {first} END, count(*) FROM batch "
                    f"WHERE NOT ({good}) AND NOT ({any_q}) GROUP BY 1"
                ).fetchall()
            )
        return Split(kept, quarantined, dropped, failed, results, dropped_by)
    finally:
        con.close()


def table_checks(
    con: duckdb.DuckDBPyConnection, relation: str, expectations: list[Expectation]
) -> list[CheckResult]:
    """Table checks over ``relation`` (the table as it will be after the write)."""
    out = []
    checks = [e for e in expectations if not e.row_level]
    total = con.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0] if checks else 0
    for e in checks:
        bad, detail, sample = 0, "", []
        if e.check == "unique":
            cols = ", ".join(q(c) for c in _columns(e.params, e.name))
            dupes = con.sql(
                f"SELECT {cols}, count(*) AS n FROM {relation} GROUP BY ALL HAVING n > 1 "
                "ORDER BY n DESC"
            )
            rows = dupes.fetchall()
            bad = sum(r[-1] - 1 for r in rows)
            names = dupes.columns
            sample = [dict(zip(names, r, strict=True)) for r in rows[:SAMPLE]]
            detail = f"{len(rows)} key(s) appear more than once" if rows else ""
        elif e.check == "row_count":
            low, high = e.params.get("min"), e.params.get("max")
            ok = (low is None or total >= low) and (high is None or total <= high)
            bad = 0 if ok else 1
            detail = f"{total} rows, expected {low if low is not None else '-'}.." + (
                f"{high}" if high is not None else ""
            )
        elif e.check == "freshness":
            column, age = e.params["column"], e.params["max_age"]
            newest, fresh = con.sql(
                f"SELECT max({q(column)}), max({q(column)}) >= now() - INTERVAL {lit(age)} "
                f"FROM {relation}"
            ).fetchall()[0]
            bad = 0 if fresh else 1
            detail = f"newest {column} is {newest}; allowed age {age}"
        elif e.check == "schema":
            have = set(con.sql(f"SELECT * FROM {relation} LIMIT 0").columns)
            want = e.params if not isinstance(e.params, dict) else list(e.params)
            missing = [c for c in _columns(want, e.name) if c not in have]
            bad = len(missing)
            detail = f"missing column(s): {', '.join(missing)}" if missing else ""
        out.append(
            CheckResult(e.name, e.check, e.action, bad == 0, int(bad), int(total), detail, sample)
        )
    return out


def sample_json(sample: list[dict[str, Any]]) -> str:
    return json.dumps(sample, default=str)
