"""PostgreSQL change data capture into bronze, exactly once, from a logical replication slot.

The slot is read with SQL (``pg_logical_slot_peek_binary_changes``) through the built-in
``pgoutput`` plugin, whose binary messages ``pgoutput`` decodes. Each batch of whole
transactions is written to the bronze table together with a Delta transaction identifier
(``pg:<database>:<slot>``, the end LSN of the batch's last commit); only then is the slot
advanced past it. A capture that starts reads the identifier back and skips what the table
holds already, so a crash anywhere (before the commit, between the commit and the advance)
neither loses nor duplicates a change.

Change rows have one shape for every source (``change_rows.CHANGE_SCHEMA``), that of the
demo's ``bronze.cdc_changes``, so a pipeline's ``kind: cdc`` datasets apply them unchanged.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.ingest.change_rows import change_table, lsn_number, lsn_text
from lakehouse.ingest.pgoutput import Transaction, decode
from lakehouse.names import TableName, parse_table_name
from lakehouse.quoting import ident

if TYPE_CHECKING:
    import psycopg

    from lakehouse.warehouse import Lakehouse


# -- the database ------------------------------------------------------------------------------
class CaptureError(LakehouseError):
    """A PostgreSQL source that cannot be captured as asked: what is wrong and what to do."""


class SourceUnavailableError(CaptureError):
    """The server could not be reached (it may come back: a follow loop waits for it)."""


# How the session writes values (the same a replication connection asks for), so that
# their text does not depend on the server's or the user's settings.
SESSION_SETTINGS = {
    "DateStyle": "ISO",
    "TimeZone": "UTC",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
    "bytea_output": "hex",
}
PLUGIN = "pgoutput"


def _conninfo(dsn: str) -> str:
    """A libpq connection string or URL; SQLAlchemy's postgresql+psycopg:// is accepted."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", dsn.strip())


def where(dsn: str) -> str:
    """The server and database a DSN names, for messages (never its password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(_conninfo(dsn))
    except Exception:  # noqa: BLE001 - a DSN libpq cannot parse: say so, not where
        return "the DSN given"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or '(default)'}"


@contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection (logical decoding functions run outside transactions)."""
    try:
        import psycopg
    except ImportError as exc:
        raise CaptureError(
            "PostgreSQL capture needs psycopg", "pip install 'lakehouse[postgres]'"
        ) from exc
    try:
        conn = psycopg.connect(
            _conninfo(dsn), autocommit=True, application_name="lakehouse-cdc", connect_timeout=10
        )
    except psycopg.Error as exc:
        raise SourceUnavailableError(
            f"cannot connect to PostgreSQL at {where(dsn)}: {_first_line(exc)}",
            "check --dsn (host, port, database, user, password) and that the server runs",
        ) from exc
    try:
        for name, value in SESSION_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, false)", [name, value])
        yield conn
    finally:
        conn.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scalar(conn: psycopg.Connection, query: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def check_logical(conn: psycopg.Connection, dsn: str) -> None:
    level = _scalar(conn, "SHOW wal_level")
    if level != "logical":
        raise CaptureError(
            f"PostgreSQL at {where(dsn)} has wal_level = {level}: its WAL cannot be decoded "
            "into changes",
            "set wal_level = logical (ALTER SYSTEM SET wal_level = logical) and restart the server",
        )


def check_slot(conn: psycopg.Connection, dsn: str, slot: str) -> None:
    row = conn.execute(
        "SELECT plugin, slot_type, database FROM pg_replication_slots WHERE slot_name = %s",
        [slot],
    ).fetchone()
    database = _scalar(conn, "SELECT current_database()")
    setup = f"lakehouse cdc postgres setup --dsn ... --slot {slot}"
    if row is None:
        raise CaptureError(
            f"replication slot {slot!r} does not exist at {where(dsn)}", f"create it: {setup}"
        )
    plugin, kind, slot_database = row
    if kind != "logical":
        raise CaptureError(
            f"replication slot {slot!r} is a physical slot, not a logical one",
            f"name another slot, or create a logical one: {setup}",
        )
    if plugin != PLUGIN:
        raise CaptureError(
            f"replication slot {slot!r} decodes with the {plugin} plugin; capture reads "
            f"{PLUGIN}'s messages",
            f"drop it (SELECT pg_drop_replication_slot('{slot}')) and create it again: {setup}",
        )
    if slot_database != database:
        raise CaptureError(
            f"replication slot {slot!r} belongs to database {slot_database}, not {database}",
            f"connect to {slot_database} (dbname in --dsn)",
        )


def check_publication(conn: psycopg.Connection, publication: str) -> None:
    if _scalar(conn, "SELECT 1 FROM pg_publication WHERE pubname = %s", [publication]) is None:
        raise CaptureError(
            f"publication {publication!r} does not exist: it says which tables to capture",
            f"create it: lakehouse cdc postgres setup --dsn ... --publication {publication} "
            "--source-table TABLE",
        )


@contextmanager
def _exclusive(conn: psycopg.Connection, slot: str) -> Iterator[None]:
    """One capture per slot at a time: two would each filter what the table held when
    they started, and write a transaction twice. The session lock dies with its process."""
    import psycopg

    key = f"lakehouse.cdc:{slot}"
    if not _scalar(conn, "SELECT pg_try_advisory_lock(hashtext(%s))", [key]):
        raise CaptureError(
            f"another capture of slot {slot!r} is running",
            "run one capture per slot (a --follow capture keeps running)",
        )
    try:
        yield
    finally:
        try:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])
        except psycopg.Error:
            pass  # the connection is gone, and its lock with it


def _translate(exc: Exception, slot: str, publication: str) -> CaptureError:
    import psycopg.errors as pge

    text = _first_line(exc)
    if _went_away(exc):
        return SourceUnavailableError(f"lost the connection while reading slot {slot!r}: {text}")
    if isinstance(exc, pge.ObjectInUse):
        return CaptureError(
            f"replication slot {slot!r} is in use by another process: {text}",
            "stop the other reader of the slot (a subscription, pg_recvlogical) first",
        )
    if isinstance(exc, pge.UndefinedObject) and "publication" in text:
        return CaptureError(
            f"{text} (the slot decodes changes from before it was created)",
            f"create the publication before the slot, or a new slot: lakehouse cdc postgres "
            f"setup --slot NEW --publication {publication}",
        )
    if isinstance(exc, pge.InsufficientPrivilege):
        return CaptureError(
            f"not allowed to read replication slot {slot!r}: {text}",
            "capture needs a user with the REPLICATION attribute (ALTER ROLE ... REPLICATION)",
        )
    return CaptureError(f"reading replication slot {slot!r} failed: {text}")


def _codec(server_encoding: str) -> str:
    """Python's codec for a PostgreSQL encoding name (UTF8, LATIN1, WIN1252, EUC_JP, ...)."""
    name = server_encoding.upper()
    if name in ("UTF8", "SQL_ASCII"):  # SQL_ASCII holds whatever clients sent: mostly UTF-8
        return "utf-8"
    lower = name.lower()
    windows = ["cp" + lower[3:]] if lower.startswith("win") else []
    for candidate in [*windows, lower.replace("_", ""), lower.replace("koi8", "koi8_")]:
        try:
            return codecs.lookup(candidate).name
        except LookupError:
            continue
    raise CaptureError(
        f"the database's encoding {server_encoding} has no Python codec",
        "capture a UTF8 database",
    )


class _Slot:
    """A logical replication slot read with SQL, whole transactions at a time."""

    def __init__(self, conn: psycopg.Connection, slot: str, publication: str) -> None:
        self.conn = conn
        self.slot = slot
        self.publication = publication
        self.database = str(_scalar(conn, "SELECT current_database()"))
        self.codec = _codec(str(_scalar(conn, "SHOW server_encoding")))
        self._keys: dict[int, list[str]] = {}

    def peek(self, max_changes: int) -> list[Transaction]:
        """The next transactions after the slot's position, without moving it. Decoding
        stops at the first commit after ``max_changes`` messages: whole transactions only."""
        import psycopg

        quoted = ident(self.publication)
        try:
            messages = self.conn.execute(
                "SELECT (lsn - '0/0'::pg_lsn)::bigint, data "
                "FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
                "'proto_version', '1', 'publication_names', %s)",
                [self.slot, max_changes, quoted],
            ).fetchall()
        except psycopg.Error as exc:
            raise _translate(exc, self.slot, self.publication) from exc
        return decode(messages, self.database, self.primary_key, self.codec)

    def primary_key(self, oid: int) -> list[str]:
        if oid not in self._keys:
            rows = self.conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]) "
                "WHERE i.indrelid = %s AND i.indisprimary ORDER BY a.attnum",
                [oid],
            ).fetchall()
            self._keys[oid] = [r[0] for r in rows]
        return self._keys[oid]

    def position(self) -> int:
        text = _scalar(
            self.conn,
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            [self.slot],
        )
        return lsn_number(text) if text else 0

    def advance(self, lsn: int) -> None:
        """Mark everything up to ``lsn`` consumed (never backwards: a crashed capture may
        have advanced it already)."""
        import psycopg

        if lsn <= self.position():
            return
        try:
            self.conn.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", [self.slot, lsn_text(lsn)]
            )
        except psycopg.Error as exc:
            raise _translate(exc, self.slot, self.publication) from exc


# -- capture ----------------------------------------------------------------------------------
@dataclass
class CaptureReport:
    table: str
    slot: str
    app_id: str
    changes: int = 0  # change rows written
    transactions: int = 0  # transactions written
    batches: int = 0  # Delta commits
    already_stored: int = 0  # transactions the table held already (after a crash)
    truncated: list[str] = field(default_factory=list)  # tables truncated at the source
    last_lsn: str | None = None  # the end of the last transaction stored

    @property
    def last_lsn_number(self) -> int | None:
        return lsn_number(self.last_lsn) if self.last_lsn else None


def app_id_of(database: str, slot: str) -> str:
    """The Delta transaction identifier under which a slot's progress is stored."""
    return f"pg:{database}:{slot}"


def stored_lsn(lh: Lakehouse, table: str, app_id: str) -> int:
    """The end LSN of the last transaction the table holds from the slot (0: none)."""
    try:
        found = lh.table(table).transaction_version(app_id)
    except TableNotFoundError:
        return 0
    return found or 0


def capture(
    lh: Lakehouse,
    dsn: str,
    slot: str,
    publication: str,
    table: str,
    *,
    max_changes: int = 10_000,
    max_batches: int | None = None,
    source_system: str | None = None,
    on_batch: Callable[[CaptureReport], None] | None = None,
) -> CaptureReport:
    """Drain the slot into the bronze ``table``: batches of whole transactions (decoding
    stops at the first commit after ``max_changes`` messages), each committed with the
    transaction identifier ``pg:<database>:<slot>`` = its last commit's end LSN, then the
    slot advanced past it. ``max_batches`` stops earlier; ``on_batch`` sees the report after
    each batch."""
    import psycopg

    name = parse_table_name(table)
    if name.layer != "bronze":
        raise LakehouseError(f"changes are captured into bronze, not {name.layer}")
    if max_changes < 1:
        raise LakehouseError("max_changes must be at least 1")
    try:
        return _capture(
            lh, dsn, slot, publication, name, max_changes, max_batches, source_system, on_batch
        )
    except psycopg.Error as exc:
        if _went_away(exc):  # nothing is lost: the next capture resumes from the table
            raise SourceUnavailableError(
                f"lost the connection to PostgreSQL at {where(dsn)}: {_first_line(exc)}",
                "capture again when the server is back: it resumes where the table stands",
            ) from exc
        raise CaptureError(f"capture from {where(dsn)} failed: {_first_line(exc)}") from exc


def _went_away(exc: Exception) -> bool:
    """A lost connection or a server shutting down, not an error the server reported."""
    import psycopg

    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith(("08", "57P"))
    )


def _capture(
    lh: Lakehouse,
    dsn: str,
    slot: str,
    publication: str,
    name: TableName,
    max_changes: int,
    max_batches: int | None,
    source_system: str | None,
    on_batch: Callable[[CaptureReport], None] | None,
) -> CaptureReport:
    with connect(dsn) as conn:
        check_logical(conn, dsn)
        check_slot(conn, dsn, slot)
        check_publication(conn, publication)
        source = _Slot(conn, slot, publication)
        report = CaptureReport(str(name), slot, app_id_of(source.database, slot))
        with _exclusive(conn, slot):
            stored = stored_lsn(lh, str(name), report.app_id)
            if stored:
                report.last_lsn = lsn_text(stored)
            while max_batches is None or report.batches < max_batches:
                transactions = source.peek(max_changes)
                if not transactions:
                    break
                fresh = [t for t in transactions if t.end_lsn > stored]
                report.already_stored += len(transactions) - len(fresh)
                rows = [row for t in fresh for row in t.rows]
                if rows:
                    written = lh.write(
                        str(name),
                        change_table(rows),
                        source_system=source_system or f"postgres:{source.database}",
                        source=f"slot {slot}",
                        txn=(report.app_id, fresh[-1].end_lsn),
                    )
                    if not written.skipped:
                        report.changes += len(rows)
                        report.transactions += len(fresh)
                        report.truncated += [t for x in fresh for t in x.truncated]
                        report.batches += 1
                    stored = fresh[-1].end_lsn
                    report.last_lsn = lsn_text(stored)
                # Only now, with the changes in the table, may the slot let them go.
                before = source.position()
                source.advance(transactions[-1].end_lsn)
                if on_batch is not None and rows:
                    on_batch(report)
                if source.position() <= before:
                    break  # the slot did not move: nothing more to read now
    return report


def follow(
    lh: Lakehouse,
    dsn: str,
    slot: str,
    publication: str,
    table: str,
    *,
    interval: float = 5.0,
    max_changes: int = 10_000,
    source_system: str | None = None,
    on_capture: Callable[[CaptureReport], None] | None = None,
    on_retry: Callable[[SourceUnavailableError], None] | None = None,
    rounds: int | None = None,
) -> None:
    """Capture every ``interval`` seconds until interrupted (or ``rounds`` captures). A
    server that goes away after the first capture is waited for (``on_retry`` hears why);
    a source that cannot be captured as asked stops the loop at once."""
    done = 0
    while rounds is None or done < rounds:
        try:
            report = capture(
                lh,
                dsn,
                slot,
                publication,
                table,
                max_changes=max_changes,
                source_system=source_system,
            )
        except SourceUnavailableError as exc:
            if done == 0:
                raise
            if on_retry is not None:
                on_retry(exc)
        else:
            if on_capture is not None:
                on_capture(report)
        done += 1
        if rounds is None or done < rounds:
            time.sleep(interval)


# -- setting a source up ----------------------------------------------------------------------
@dataclass
class SetupReport:
    publication: str
    slot: str
    created_publication: bool = False
    added_tables: list[str] = field(default_factory=list)
    full_identity: list[str] = field(default_factory=list)
    created_slot: bool = False
    slot_lsn: str | None = None


def _table_ident(table: str) -> Any:
    from psycopg import sql

    schema, _, name = table.rpartition(".")
    return sql.Identifier(schema or "public", name)


def setup(
    dsn: str,
    slot: str,
    publication: str,
    tables: list[str] | None = None,
    *,
    replica_identity_full: bool = False,
) -> SetupReport:
    """Create what capture reads, where missing (running it again changes nothing): the
    publication (for ``tables``, ``schema.table`` or ``table`` in public; for all tables
    when None), then the slot (pgoutput; it keeps changes from its creation on). With
    ``replica_identity_full`` the tables (all published ones when None) log whole old
    rows, so updates and deletes carry a full before image."""
    import psycopg
    from psycopg import sql

    report = SetupReport(publication, slot)
    with connect(dsn) as conn:
        check_logical(conn, dsn)
        try:
            exists = conn.execute(
                "SELECT puballtables FROM pg_publication WHERE pubname = %s", [publication]
            ).fetchone()
            pub = sql.Identifier(publication)
            if exists is None:
                if tables:
                    targets = sql.SQL(", ").join(_table_ident(t) for t in tables)
                    conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(pub, targets))
                    report.added_tables = list(tables)
                else:
                    conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(pub))
                report.created_publication = True
            elif tables and not exists[0]:
                have = set(_published(conn, publication))
                for t in tables:
                    if _qualified_name(t) not in have:
                        conn.execute(
                            sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                                pub, _table_ident(t)
                            )
                        )
                        report.added_tables.append(t)
            if replica_identity_full:
                for t in [_qualified_name(t) for t in tables or []] or _published(
                    conn, publication
                ):
                    conn.execute(
                        sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(_table_ident(t))
                    )
                    report.full_identity.append(t)
            if _scalar(conn, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot]):
                check_slot(conn, dsn, slot)
            else:
                conn.execute("SELECT pg_create_logical_replication_slot(%s, %s)", [slot, PLUGIN])
                report.created_slot = True
            report.slot_lsn = _scalar(
                conn,
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                [slot],
            )
        except psycopg.Error as exc:
            raise CaptureError(
                f"setting up capture at {where(dsn)} failed: {_first_line(exc)}",
                "check the table names; the user needs to own the tables, CREATE on the "
                "database and REPLICATION (a publication FOR ALL TABLES needs a superuser)",
            ) from exc
    return report


def _qualified_name(table: str) -> str:
    schema, _, name = table.rpartition(".")
    return f"{schema or 'public'}.{name}"


def _published(conn: psycopg.Connection, publication: str) -> list[str]:
    rows = conn.execute(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY 1, 2",
        [publication],
    ).fetchall()
    return [f"{s}.{t}" for s, t in rows]


def drop(dsn: str, slot: str, publication: str | None = None) -> list[str]:
    """Drop the slot (the server stops keeping WAL for it) and, if named, the publication.
    Returns what was dropped."""
    import psycopg
    from psycopg import sql

    dropped = []
    with connect(dsn) as conn:
        try:
            if _scalar(conn, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot]):
                conn.execute("SELECT pg_drop_replication_slot(%s)", [slot])
                dropped.append(f"slot {slot}")
            if publication and _scalar(
                conn, "SELECT 1 FROM pg_publication WHERE pubname = %s", [publication]
            ):
                conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication)))
                dropped.append(f"publication {publication}")
        except psycopg.Error as exc:
            raise CaptureError(
                f"dropping slot {slot} or publication {publication} failed "
                f"(dropped: {', '.join(dropped) or 'nothing'}): {_first_line(exc)}",
                "a slot in use cannot be dropped: stop its capture first",
            ) from exc
    return dropped


def status(
    dsn: str, slot: str, *, lh: Lakehouse | None = None, table: str | None = None
) -> dict[str, Any]:
    """Where the slot is, how much WAL it holds back and, given a warehouse and the table
    the slot is captured into, what the table has stored."""
    with connect(dsn) as conn:
        check_slot(conn, dsn, slot)
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text, restart_lsn::text, active, "
            "(pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, current_database() "
            "FROM pg_replication_slots WHERE slot_name = %s",
            [slot],
        ).fetchone()
    assert row is not None
    confirmed, restart, active, pending, database = row
    out: dict[str, Any] = {
        "slot": slot,
        "confirmed_lsn": confirmed,
        "restart_lsn": restart,
        "active": active,
        "pending_wal_bytes": pending,
    }
    if lh is not None and table is not None:
        stored = stored_lsn(lh, table, app_id_of(database, slot))
        out["table"] = table
        out["stored_lsn"] = lsn_text(stored) if stored else None
    return out
