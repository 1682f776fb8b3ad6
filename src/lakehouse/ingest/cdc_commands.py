"""The ``lakehouse cdc`` commands: database changes into bronze, from PostgreSQL logical
replication (``cdc postgres``, ``setup``, ``status``, ``drop``) and Debezium files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from lakehouse.config import default_warehouse
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.ingest.postgres_cdc import CaptureReport
    from lakehouse.warehouse import Lakehouse

cdc_app = typer.Typer(
    help="Database changes into bronze: PostgreSQL logical replication, Debezium events.",
    no_args_is_help=True,
)
postgres_app = typer.Typer(
    help="Capture a PostgreSQL database's changes from a logical replication slot "
    "(without a subcommand: capture; see also setup, status, drop).",
)
cdc_app.add_typer(postgres_app, name="postgres")
console = Console()
err_console = Console(stderr=True)

Dsn = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="LAKEHOUSE_CDC_DSN",
        help="PostgreSQL connection string or URL (or LAKEHOUSE_CDC_DSN; PGPASSWORD works).",
        show_default=False,
    ),
]
Slot = Annotated[str | None, typer.Option("--slot", help="The logical replication slot.")]
Publication = Annotated[
    str, typer.Option("--publication", help="The publication naming the tables to capture.")
]
DEFAULT_PUBLICATION = "lakehouse"


def _lakehouse(ctx: typer.Context) -> Lakehouse:
    """The warehouse the root command was given (--warehouse / LAKEHOUSE_WAREHOUSE)."""
    from lakehouse.warehouse import Lakehouse

    return Lakehouse(ctx.find_root().params.get("warehouse") or default_warehouse())


def _required(value: str | None, option: str, example: str) -> str:
    if not value:
        raise LakehouseError(f"{option} is required", f"e.g. {option} {example}")
    return value


def _summary(report: CaptureReport) -> str:
    text = (
        f"{report.table}: {report.changes:,} change(s) in {report.transactions:,} "
        f"transaction(s), {report.batches} commit(s); stored up to LSN {report.last_lsn or '-'}"
    )
    if report.already_stored:
        text += f"; {report.already_stored} transaction(s) were stored already"
    return text


def _warn_truncates(report: CaptureReport) -> None:
    if report.truncated:
        err_console.print(
            f"[yellow]warning:[/yellow] TRUNCATE of {', '.join(sorted(set(report.truncated)))} "
            "captured as 'truncate' rows: the rows it removed are not listed one by one",
            highlight=False,
        )


@postgres_app.callback(invoke_without_command=True)
def postgres(
    ctx: typer.Context,
    dsn: Dsn = None,
    slot: Slot = None,
    publication: Publication = DEFAULT_PUBLICATION,
    table: Annotated[
        str | None, typer.Option("--table", "-t", help="Bronze table, e.g. bronze.pg_changes.")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Keep capturing until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between captures with --follow.")
    ] = 5.0,
    max_changes: Annotated[
        int, typer.Option("--max-changes", help="Messages per batch (whole transactions).")
    ] = 10_000,
    source_system: Annotated[
        str | None, typer.Option(help="Source name in _source_system (default postgres:DB).")
    ] = None,
) -> None:
    """Capture the slot's changes into a bronze table, each exactly once."""
    if ctx.invoked_subcommand is not None:
        return
    from lakehouse.ingest import postgres_cdc

    dsn = _required(dsn, "--dsn", "postgresql://user@host/db")
    slot = _required(slot, "--slot", "lakehouse")
    table = _required(table, "--table", "bronze.pg_changes")
    if interval < 0:
        raise LakehouseError("--interval must not be negative")
    lh = _lakehouse(ctx)
    if not follow:
        with console.status(f"capturing slot {slot} into {table}"):
            report = postgres_cdc.capture(
                lh,
                dsn,
                slot,
                publication,
                table,
                max_changes=max_changes,
                source_system=source_system,
            )
        console.print(_summary(report), highlight=False, soft_wrap=True)
        _warn_truncates(report)
        return

    def on_capture(report: CaptureReport) -> None:
        if report.changes:
            console.print(_summary(report), highlight=False, soft_wrap=True)
        _warn_truncates(report)

    def on_retry(error: LakehouseError) -> None:
        err_console.print(f"[yellow]waiting:[/yellow] {error.message}", highlight=False)

    console.print(
        f"following slot {slot} into {table} every {interval:g}s (Ctrl-C stops)", highlight=False
    )
    try:
        postgres_cdc.follow(
            lh,
            dsn,
            slot,
            publication,
            table,
            interval=interval,
            max_changes=max_changes,
            source_system=source_system,
            on_capture=on_capture,
            on_retry=on_retry,
        )
    except KeyboardInterrupt:
        console.print("stopped")


@postgres_app.command("setup")
def postgres_setup(
    dsn: Dsn = None,
    slot: Slot = None,
    publication: Publication = DEFAULT_PUBLICATION,
    source_table: Annotated[
        list[str] | None,
        typer.Option(
            "--source-table",
            help="A table to capture (schema.table, or table in public); repeat, or "
            "comma-separate. Default: all tables.",
        ),
    ] = None,
    replica_identity_full: Annotated[
        bool,
        typer.Option(
            "--replica-identity-full",
            help="Log whole old rows, so updates and deletes carry a full before image.",
        ),
    ] = False,
) -> None:
    """Create the publication and the slot where missing (running it again is harmless)."""
    from lakehouse.ingest import postgres_cdc

    dsn = _required(dsn, "--dsn", "postgresql://user@host/db")
    slot = _required(slot, "--slot", "lakehouse")
    tables = [t.strip() for value in source_table or [] for t in value.split(",") if t.strip()]
    report = postgres_cdc.setup(
        dsn, slot, publication, tables or None, replica_identity_full=replica_identity_full
    )
    pub = "created" if report.created_publication else "exists"
    console.print(f"publication {publication}: {pub}", highlight=False)
    if report.added_tables:
        console.print(f"  tables added: {', '.join(report.added_tables)}", highlight=False)
    if report.full_identity:
        console.print(
            f"  REPLICA IDENTITY FULL: {', '.join(report.full_identity)}", highlight=False
        )
    made = "created" if report.created_slot else "exists"
    console.print(f"slot {slot}: {made}, at LSN {report.slot_lsn}", highlight=False)


@postgres_app.command("status")
def postgres_status(
    ctx: typer.Context,
    dsn: Dsn = None,
    slot: Slot = None,
    table: Annotated[
        str | None, typer.Option("--table", "-t", help="The bronze table it captures into.")
    ] = None,
) -> None:
    """Where the slot is, how much WAL it holds back, what the table has stored."""
    from lakehouse.ingest import postgres_cdc

    dsn = _required(dsn, "--dsn", "postgresql://user@host/db")
    slot = _required(slot, "--slot", "lakehouse")
    lh = _lakehouse(ctx) if table else None
    found = postgres_cdc.status(dsn, slot, lh=lh, table=table)
    for key, value in found.items():
        console.print(f"{key:>18}  {value if value is not None else '-'}", highlight=False)


@postgres_app.command("drop")
def postgres_drop(
    dsn: Dsn = None,
    slot: Slot = None,
    publication: Annotated[
        str | None, typer.Option("--publication", help="Drop this publication too.")
    ] = None,
) -> None:
    """Drop the slot (the server stops keeping WAL for it), and the publication if named."""
    from lakehouse.ingest import postgres_cdc

    dsn = _required(dsn, "--dsn", "postgresql://user@host/db")
    slot = _required(slot, "--slot", "lakehouse")
    dropped = postgres_cdc.drop(dsn, slot, publication)
    console.print(f"dropped {', '.join(dropped)}" if dropped else "nothing to drop")


@cdc_app.command("debezium")
def debezium(
    ctx: typer.Context,
    folder: Annotated[str, typer.Argument(help="Folder of Debezium event files (JSON lines).")],
    table: Annotated[
        str, typer.Option("--table", "-t", help="Bronze table, e.g. bronze.db_changes.")
    ],
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="Key column(s) for events without a message key: id, or order_id,line_no; "
            "per table: customers=id (repeat for each table).",
        ),
    ] = None,
    source_system: Annotated[
        str | None, typer.Option(help="Name of the system the events come from.")
    ] = None,
) -> None:
    """Land the folder's new Debezium event files in a bronze table, each exactly once."""
    from lakehouse.ingest.debezium import ingest_folder

    keys = _key_columns(key or [])
    with console.status(f"ingesting {folder} into {table}"):
        report = ingest_folder(
            _lakehouse(ctx), folder, table, key_columns=keys, source_system=source_system
        )
    console.print(
        f"{table}: {len(report.files_ingested)} new file(s), {report.changes:,} change(s), "
        f"{report.quarantined} quarantined; {len(report.files_skipped)} file(s) already ingested",
        highlight=False,
        soft_wrap=True,
    )


def _key_columns(values: list[str]) -> dict[str, list[str]] | None:
    """--key values: "id" or "a,b" for every table, "customers=id" for one table."""
    found: dict[str, list[str]] = {}
    for value in values:
        table, _, columns = value.rpartition("=")
        names = [c.strip() for c in columns.split(",") if c.strip()]
        if not names:
            raise LakehouseError(f"--key {value!r} names no column", "e.g. --key customers=id")
        found[table.strip() or "*"] = names
    return found or None
