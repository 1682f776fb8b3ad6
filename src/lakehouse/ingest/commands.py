"""The ``lakehouse ingest`` commands: a folder's files (``ingest FOLDER``, the default,
also ``ingest files FOLDER``), a database table (``ingest db``) and a REST API
(``ingest api FILE``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

console = Console()


class FilesByDefault(TyperGroup):
    """A group whose first argument, when it names no subcommand, is a folder for
    ``files``: ``lakehouse ingest FOLDER -t bronze.x`` as before subcommands came."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["files", *args]
        parsed: list[str] = super().parse_args(ctx, args)
        return parsed


ingest_app = typer.Typer(
    cls=FilesByDefault,
    help="Load sources into bronze: a folder's files (ingest FOLDER), a database table "
    "(ingest db), a REST API (ingest api FILE).",
    no_args_is_help=True,
)


_opener: list[Callable[[], Any]] = []  # the root command's warehouse (see ``register``)


def register(app: typer.Typer, opener: Callable[[], Any]) -> None:
    """Add ``ingest`` to the root command; ``opener`` opens the warehouse it was given."""
    _opener[:] = [opener]
    app.add_typer(ingest_app, name="ingest")


def _lakehouse() -> Any:
    return _opener[0]()


@ingest_app.command("db")
def db(
    url: Annotated[
        str,
        typer.Option(
            "--url",
            envvar="LAKEHOUSE_SOURCE_URL",
            help="postgresql://, mysql:// (MariaDB too) or sqlite:/// URL "
            "(or LAKEHOUSE_SOURCE_URL).",
            show_default=False,
        ),
    ],
    table: Annotated[str, typer.Option("--table", help="The source table, SCHEMA.TABLE.")],
    into: Annotated[str, typer.Option("--into", help="The bronze table, e.g. bronze.orders.")],
    incremental_column: Annotated[
        str | None,
        typer.Option(
            "--incremental-column",
            help="Load only rows at or past the last load's mark of this column.",
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Replace the table with the whole source (default).")
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", help="Key ranges read side by side (default: by size)."),
    ] = None,
    source_system: Annotated[
        str | None, typer.Option(help="Name of the system the rows come from.")
    ] = None,
) -> None:
    """Load a database table into bronze: whole, or incrementally and exactly once."""
    from lakehouse.service.sources import ingest_database

    with console.status(f"loading {table} into {into}"):
        report = ingest_database(
            _lakehouse(),
            url,
            table,
            into,
            incremental_column=incremental_column,
            full=full,
            source_system=source_system,
            parallel=parallel,
        )
    text = f"{into}: {report['rows']:,} row(s) landed of {report['read']:,} read ({report['mode']})"
    if report["mode"] == "incremental":
        text += f"; mark {report['previous_mark']} -> {report['mark']}"
        if report["already_held"]:
            text += f"; {report['already_held']} row(s) at the mark were held already"
    console.print(text, soft_wrap=True, highlight=False)
    for change in report["schema_changes"]:
        console.print(f"  {change}", soft_wrap=True, highlight=False)


@ingest_app.command("api")
def api(
    file: Annotated[str, typer.Argument(help="The REST source's YAML file.")],
    into: Annotated[
        str | None, typer.Option("--into", help="The bronze table (default: the file's into).")
    ] = None,
) -> None:
    """Load a REST API's records into bronze, exactly once (see docs/SOURCES.md)."""
    from lakehouse.service.sources import ingest_api

    with console.status(f"loading {file}"):
        report = ingest_api(_lakehouse(), file, into=into)
    text = (
        f"{report['table']}: {report['rows']:,} row(s) landed of {report['records']:,} "
        f"record(s) in {report['pages']} page(s), {report['quarantined']} quarantined, "
        f"{report['retries']} retried request(s)"
    )
    if report["mark"] is not None or report["previous_mark"] is not None:
        text += f"; mark {report['previous_mark']} -> {report['mark']}"
    console.print(text, soft_wrap=True, highlight=False)
