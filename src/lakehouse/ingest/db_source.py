"""A database table to read: its URL (PostgreSQL, MySQL/MariaDB or SQLite), the table,
its columns as the database declares them, and the SQL of a read in the database's own
dialect.

Rows are read as Arrow: PostgreSQL and SQLite through their ADBC drivers (PostgreSQL's
binary COPY, faster than connectorx on a million rows), MySQL and MariaDB through
connectorx (there is no ADBC driver for them).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pyarrow as pa

from lakehouse.errors import LakehouseError

SCHEMES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}
URL_HINT = (
    "use postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, "
    "mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (MariaDB too) or sqlite:///PATH"
)


@dataclass(frozen=True)
class DbSource:
    dialect: str  # postgresql, mysql or sqlite
    url: str  # as the driver takes it
    schema: str | None  # None: the connection's default (SQLite: main)
    table: str

    @property
    def shown(self) -> str:
        """The source without its password: ``_source`` of the rows and the marks' key."""
        if self.dialect == "sqlite":
            return f"sqlite:{self.url}/{self.qualified_name}"
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{self.dialect}://{host}{port}{parts.path}/{self.qualified_name}"

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def quote(self, name: str) -> str:
        if self.dialect == "mysql":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    @property
    def from_clause(self) -> str:
        if self.schema:
            return f"{self.quote(self.schema)}.{self.quote(self.table)}"
        return self.quote(self.table)


def parse_source(url: str, table: str) -> DbSource:
    """The source a URL and a ``[SCHEMA.]TABLE`` name; a URL of another database, or
    without a host or database, is refused with the forms it may take."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower() if ":" in url else ""
    dialect = SCHEMES.get(scheme)
    if dialect is None:
        raise LakehouseError(f"unsupported database URL {_redacted(url)!r}", URL_HINT)
    schema, _, name = table.rpartition(".")
    if not name:
        raise LakehouseError(
            f"no table in {table!r}", "name it as SCHEMA.TABLE, e.g. public.orders"
        )
    if dialect == "sqlite":
        path = url.split(":", 1)[1]
        path = path[3:] if path.startswith("///") else path.lstrip("/")
        if not path or not Path(path).is_file():
            raise LakehouseError(
                f"no SQLite database file at {path!r}",
                "sqlite:///relative/path.db or sqlite:////absolute/path.db",
            )
        return DbSource("sqlite", path, None if schema in ("", "main") else schema, name)
    parts = urlsplit(url)
    if not parts.hostname or not parts.path.strip("/"):
        raise LakehouseError(f"the URL {_redacted(url)!r} names no host or database", URL_HINT)
    plain = urlunsplit((dialect, parts.netloc, parts.path, parts.query, ""))
    if dialect == "mysql":  # a MySQL schema is a database: SCHEMA.TABLE picks it
        database = unquote(parts.path.strip("/"))
        return DbSource("mysql", plain, schema or database, name)
    return DbSource("postgresql", plain, schema or "public", name)


def _redacted(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


# -- connecting and reading ----------------------------------------------------------------
def read_arrow(source: DbSource, sql: str) -> pa.Table:
    """The rows a query returns, as Arrow (the driver's types; see ``db_types``)."""
    try:
        if source.dialect == "mysql":
            import connectorx as cx

            return cx.read_sql(source.url, sql, return_type="arrow")
        with _connect(source) as con, con.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()
    except LakehouseError:
        raise
    except Exception as exc:  # noqa: BLE001 - every driver raises its own errors
        raise _connection_error(source, exc) from exc


def _connect(source: DbSource) -> Any:
    if source.dialect == "postgresql":
        import adbc_driver_postgresql.dbapi as pg

        return pg.connect(source.url)
    import adbc_driver_sqlite.dbapi as sqlite

    return sqlite.connect(source.url)


def query_rows(source: DbSource, sql: str) -> list[dict[str, Any]]:
    """A small query's rows (the catalog's). MySQL's go through PyMySQL, which fails at
    once on a wrong password or host where connectorx's pool retries for half a minute."""
    if source.dialect != "mysql":
        rows: list[dict[str, Any]] = read_arrow(source, sql).to_pylist()
        return rows
    import pymysql
    import pymysql.cursors

    parts = urlsplit(source.url)
    try:
        con = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.strip("/")),
            connect_timeout=10,
            cursorclass=pymysql.cursors.DictCursor,
        )
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            con.close()
    except pymysql.MySQLError as exc:
        raise _connection_error(source, exc) from exc


def _connection_error(source: DbSource, exc: Exception) -> LakehouseError:
    text = " ".join(str(exc).split())[:400]
    lowered = text.lower()
    if "password" in lowered or "access denied" in lowered or "authentication" in lowered:
        hint = "check the user name and password in the URL"
    elif any(
        s in lowered
        for s in ("connection refused", "could not connect", "can't connect", "timed out")
    ):
        hint = "check the host and port, and that the server is running and reachable"
    elif "does not exist" in lowered or "unknown database" in lowered:
        hint = "check the database (and table) names"
    else:
        hint = "check the URL, the table and the user's rights on it"
    return LakehouseError(f"reading {source.shown} failed: {text}", hint)


# -- the table's columns ---------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    declared: str  # the type as the database names it, e.g. numeric(12,2)
    precision: int | None = None
    scale: int | None = None


def columns(source: DbSource) -> list[Column]:
    """The table's columns in order; a table that is not there is named with the tables
    that are (the hint)."""
    if source.dialect == "sqlite":
        found = query_rows(
            source,
            f"SELECT name, type FROM pragma_table_info({_text(source.table)}"
            + (f", {_text(source.schema)}" if source.schema else "")
            + ") ORDER BY cid",
        )
        cols = [Column(r["name"], (r["type"] or "").lower()) for r in found]
    else:
        declared = "udt_name" if source.dialect == "postgresql" else "column_type"
        found = query_rows(
            source,
            f"SELECT column_name AS name, {declared} AS declared, numeric_precision AS p, "
            "numeric_scale AS s, data_type AS kind FROM information_schema.columns "
            f"WHERE table_schema = {_text(source.schema or '')} "
            f"AND table_name = {_text(source.table)} ORDER BY ordinal_position",
        )
        cols = [
            Column(
                _lower_keys(r)["name"],
                str(_lower_keys(r)["declared"]).lower(),
                _int(_lower_keys(r)["p"]),
                _int(_lower_keys(r)["s"]),
            )
            for r in found
        ]
    if not cols:
        raise LakehouseError(
            f"no table {source.qualified_name} in {source.shown}", _tables_hint(source)
        )
    return cols


def _lower_keys(row: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in row.items()}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _tables_hint(source: DbSource) -> str:
    try:
        if source.dialect == "sqlite":
            names = [
                r["name"]
                for r in query_rows(
                    source, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                )
            ]
        else:
            names = [
                f"{_lower_keys(r)['s']}.{_lower_keys(r)['t']}"
                for r in query_rows(
                    source,
                    "SELECT table_schema AS s, table_name AS t FROM information_schema.tables "
                    "WHERE table_schema NOT IN "
                    "('pg_catalog', 'information_schema', 'mysql', 'performance_schema', 'sys')",
                )
            ]
    except LakehouseError:
        names = []
    if not names:
        return "the database has no tables this user can see"
    return "the tables are " + ", ".join(sorted(names)[:20])


def _text(value: str) -> str:
    return "'" + value.replace("'", "''").replace("\\", "\\\\") + "'"


def sql_literal(source: DbSource, value: Any) -> str:
    """A mark value as a literal of the source's dialect."""
    if isinstance(value, bool) or not isinstance(value, int | dt.date):
        raise LakehouseError(f"cannot compare with {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
        if source.dialect == "postgresql":
            kind = "timestamptz" if value.tzinfo else "timestamp"
            return f"{_text(text)}::{kind}"
        if value.tzinfo is not None:  # MySQL: TIMESTAMP values are compared in UTC
            text = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        return _text(text)
    if source.dialect == "postgresql":
        return f"{_text(value.isoformat())}::date"
    return _text(value.isoformat())
