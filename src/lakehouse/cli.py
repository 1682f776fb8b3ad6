"""The ``lakehouse`` command: a thin shell over the Python API."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from lakehouse.errors import LakehouseError
from lakehouse.ingest.commands import ingest_app
from lakehouse.ingest.commands import register as register_ingest

if TYPE_CHECKING:
    from lakehouse.settings import Settings
    from lakehouse.warehouse import Lakehouse

app = typer.Typer(
    help="Lakehouse: Delta Lake tables in bronze, silver and gold, with SQL over all of them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

_state: dict[str, Any] = {"warehouse": None, "config": None, "profile": None}

Warehouse = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        "-w",
        envvar="LAKEHOUSE_WAREHOUSE",
        help="Warehouse folder or URI (default ./lakehouse_data).",
        show_default=False,
    ),
]
Format = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]


@app.callback()
def _main(
    warehouse: Warehouse = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            envvar="LAKEHOUSE_CONFIG",
            help="Settings file (default ./lakehouse.yaml if there is one).",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            envvar="LAKEHOUSE_PROFILE",
            help="Settings profile (local, dev, staging, prod or any the file defines).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format", help="Logs as text or json (default: the settings).", show_default=False
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    # --debug is read in main(), before Typer parses
    _state.update(warehouse=warehouse, config=config, profile=profile, log_format=log_format)
    _state.pop("settings", None)
    # What this command starts (runs, server workers, scheduled jobs) reads the same
    # settings: the file and profile it was given pass on through the environment.
    if config:
        os.environ["LAKEHOUSE_CONFIG"] = os.path.abspath(config)
    if profile:
        os.environ["LAKEHOUSE_PROFILE"] = profile
    if log_format:
        os.environ["LAKEHOUSE_LOG_FORMAT"] = log_format
    _configure_logs(log_format)


def _configure_logs(log_format: str | None) -> None:
    """The logs of this process (stderr), as --log-format or the settings say; settings
    that cannot be read are reported by the command that reads them."""
    from lakehouse.ops.logs import configure, configure_from

    try:
        configure_from(settings(), log_format)
    except LakehouseError:
        if log_format is not None:
            configure(log_format)


def settings() -> Settings:
    """The settings every command reads: the file, its profile and the variables."""
    if "settings" not in _state:
        from lakehouse.settings import load_settings

        _state["settings"] = load_settings(_state.get("config"), _state.get("profile")).settings
    found: Settings = _state["settings"]
    return found


def _lh() -> Lakehouse:
    from lakehouse.warehouse import Lakehouse

    return Lakehouse.from_settings(settings(), warehouse=_state.get("warehouse"))


def _check_format(fmt: str) -> str:
    if fmt not in ("table", "json", "csv"):
        raise LakehouseError(f"unknown format {fmt!r}", "use --format table, json or csv")
    return fmt


def print_arrow(table: pa.Table, fmt: str, title: str | None = None) -> None:
    """Rows in a format: nested values (lists, structs, maps) as JSON values in ``json``
    and as JSON text in a CSV field or a grid cell; binary as hex, intervals as text."""
    from lakehouse.sql.result import as_text_columns, json_default, plain

    if fmt == "json":
        columns = [
            [plain(v, f.type) for v in c.to_pylist()]
            for f, c in zip(table.schema, table.columns, strict=True)
        ]
        rows = [dict(zip(table.column_names, r, strict=True)) for r in zip(*columns, strict=True)]
        sys.stdout.write(json.dumps(rows, default=json_default, indent=2) + "\n")
        return
    table = as_text_columns(table)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        sys.stdout.write(sink.getvalue().to_pybytes().decode())
        return
    from lakehouse.terminal_grid import print_grid

    print_grid(console, table, title)
    console.print(f"[dim]{table.num_rows} row{'s' if table.num_rows != 1 else ''}[/dim]")


def print_records(records: list[dict[str, Any]], fmt: str, title: str | None = None) -> None:
    if fmt == "json":
        from lakehouse.sql.result import json_default

        sys.stdout.write(json.dumps(records, default=json_default, indent=2) + "\n")
        return
    if not records:
        console.print("[dim]nothing to show[/dim]")
        return
    columns = list(records[0])
    table = pa.table({c: [_cell(r.get(c), fmt) for r in records] for c in columns})
    print_arrow(table, fmt, title)


def _cell(value: Any, fmt: str = "table") -> Any:
    if value is None or isinstance(value, int | float):
        return value  # numbers stay numbers, so the table right-aligns them
    if isinstance(value, datetime) and fmt == "table":  # csv keeps the text it had
        from lakehouse.terminal_grid import readable_time

        return readable_time(value)
    if isinstance(value, dict | list):
        from lakehouse.sql.result import json_default

        return json.dumps(value, default=json_default)
    return str(value)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _spinner(text: str) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn(text), TimeElapsedColumn(), console=err_console, transient=True
    )


# -- commands --------------------------------------------------------------------------------
@app.command()
def tables(
    layer: Annotated[str | None, typer.Option(help="Only this layer.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only tables (or columns) with this tag.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Text in name, description, columns.")
    ] = None,
    column: Annotated[str | None, typer.Option(help="Only tables with this column.")] = None,
    fmt: Format = "table",
) -> None:
    """List the tables the catalog knows."""
    _check_format(fmt)
    infos = _lh().tables(layer, tag=tag, search=search, column=column)
    records = [
        {
            "table": i.name,
            "layer": i.layer,
            "version": i.version,
            "rows": i.row_count,
            "files": i.num_files,
            "size": _size(i.size_bytes) if fmt == "table" else i.size_bytes,
            "owner": i.owner,
            "tags": ", ".join(i.tags) if fmt == "table" else i.tags,
            "updated": i.updated_at if fmt == "table" else i.updated_at.isoformat(),
        }
        for i in infos
    ]
    print_records(records, fmt, title="Tables")


@app.command()
def describe(table: str, fmt: Format = "table") -> None:
    """A table's metadata, schema and schema history."""
    from lakehouse.lineage.tags import table_inherited

    _check_format(fmt)
    lh = _lh()
    t = lh.table(table)
    info = t.info
    inherited = table_inherited(lh.catalog, info.name)  # column (lower case) -> origin
    if fmt != "table":
        out = info.to_dict()
        out["constraints"] = t.constraints
        out["inherited_tags"] = {c: {"pii": origin} for c, origin in inherited.items()}
        print_records([out], fmt)
        return
    from lakehouse.terminal_grid import readable_time

    grid = RichTable.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in [
        ("table", info.name),
        ("location", info.location),
        ("format", info.format),
        ("version", info.version),
        ("rows", f"{info.row_count:,}"),
        ("files", info.num_files),
        ("size", _size(info.size_bytes)),
        ("partitioned by", ", ".join(info.partition_by) or "-"),
        ("keys", ", ".join(info.keys) or "-"),
        ("compression", info.options.get("compression") or "-"),
        ("retention", f"{info.retention_days} days" if info.retention_days else "-"),
        ("owner", info.owner or "-"),
        ("description", info.description or "-"),
        ("tags", ", ".join(info.tags) or "-"),
        ("constraints", ", ".join(f"{k}: {v}" for k, v in t.constraints.items()) or "-"),
        ("created", readable_time(info.created_at)),
        ("updated", readable_time(info.updated_at)),
    ]:
        grid.add_row(label, str(value))
    console.print(grid)

    def tags_of(column: str) -> str:
        tags = list(info.column_tags.get(column, []))
        if column.lower() in inherited:
            tags.append(f"pii (inherited from {inherited[column.lower()]})")
        return ", ".join(tags)

    print_records(
        [
            {
                "column": c["name"],
                "type": c["type"],
                "nullable": c["nullable"],
                "tags": tags_of(c["name"]),
            }
            for c in info.columns
        ],
        "table",
        title="Schema",
    )
    if len(info.schema_history) > 1:
        print_records(
            [
                {"version": h["version"], "change": h["change"], "at": h["recorded_at"]}
                for h in info.schema_history
            ],
            "table",
            title="Schema history",
        )


@app.command()
def history(
    table: str,
    limit: Annotated[int | None, typer.Option(help="Only the newest N commits.")] = None,
    fmt: Format = "table",
) -> None:
    """A table's commits, newest first."""
    _check_format(fmt)
    entries = _lh().table(table).history(limit)
    if fmt == "table":
        from lakehouse.terminal_grid import readable_time

        for e in entries:
            stamp = e.get("timestamp")
            if isinstance(stamp, str):
                try:
                    e["timestamp"] = readable_time(datetime.fromisoformat(stamp))
                except ValueError:
                    pass  # shown as it came
            m = e.pop("metrics")
            e.pop("parameters")
            e["rows added"] = m.get("num_added_rows", m.get("num_target_rows_inserted"))
            e["files +/-"] = f"{m.get('num_added_files', m.get('num_target_files_added', 0))}/" + (
                f"{m.get('num_removed_files', m.get('num_target_files_removed', 0))}"
            )
    print_records(entries, fmt, title=f"History of {table}")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="The SQL; '-' reads it from standard input.")],
    fmt: Format = "table",
    limit: Annotated[int | None, typer.Option(help="Show at most N rows.")] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="duckdb (in this process), spark (translated to Spark SQL) or auto (by size)."
        ),
    ] = "duckdb",
    master: Annotated[
        str | None, typer.Option(help="Spark's master with --engine spark (local[N], spark://...).")
    ] = None,
) -> None:
    """Run SQL over the warehouse (layer.table names, VERSION AS OF, TIMESTAMP AS OF)."""
    _check_format(fmt)
    if query == "-":
        query = sys.stdin.read()
    result = _lh().sql(query, engine=engine, master=master)
    table = result.to_arrow()
    if limit is not None:
        table = table.slice(0, limit)
    print_arrow(table, fmt)
    if fmt == "table":
        on = f" on {result.engine}" if engine != "duckdb" else ""
        why = f" ({result.engine_why})" if result.engine_why else ""
        err_console.print(f"[dim]{result.seconds * 1000:.0f} ms{on}{why}[/dim]", soft_wrap=True)


@app.command()
def restore(table: str, version: str) -> None:
    """Restore a table to an earlier version (or timestamp); this adds a new version. A
    pipeline's table also gets back the input versions it had, and its quarantine the
    matching version, so the next run recomputes what the restore took away."""
    from lakehouse.service.restore import restore_table

    lh = _lh()
    with _spinner(f"restoring {table} to {version}"):
        restored = restore_table(lh, table, version)
    console.print(f"restored {table} to {version}: now at version {restored.version}")


@app.command()
def convert(
    table: str,
    to: Annotated[str, typer.Option("--to", help="The table format to convert to.")],
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the table's writers to finish.")
    ] = 0.0,
) -> None:
    """Rewrite a table in the other table format (delta or iceberg), keeping its current
    rows, schema, partitioning and catalog entry (owner, tags, grants, lineage); its
    versions start again. A table being written is refused (or waited for, --wait)."""
    from lakehouse.service.convert import convert as convert_table

    with _spinner(f"converting {table} to {to}"):
        done = convert_table(_lh(), table, to, wait)
    console.print(
        f"converted {done['table']} from {done['source']} (version {done['source_version']}) "
        f"to {done['target']}: {done['rows']} rows, now at version {done['version']} "
        f"({done['seconds']:.1f} s)"
    )
    for part in done["dropped_partitions"]:
        err_console.print(
            f"[yellow]partition {part} has no {done['target']} equivalent: not kept[/yellow]"
        )


@app.command()
def optimize(
    table: str,
    zorder: Annotated[
        str | None, typer.Option(help="Comma-separated columns to z-order by.")
    ] = None,
) -> None:
    """Compact small files (and z-order them on the columns given)."""
    t = _lh().table(table)
    with _spinner(f"optimizing {table}"):
        if zorder:
            metrics = t.zorder([c.strip() for c in zorder.split(",") if c.strip()])
        else:
            metrics = t.optimize()
    console.print(
        f"{table}: {metrics.get('numFilesRemoved', 0)} files rewritten into "
        f"{metrics.get('numFilesAdded', 0)}; now at version {t.version}"
    )


@app.command()
def vacuum(
    table: str,
    retain_hours: Annotated[
        float, typer.Option(help="Keep files needed by versions of the last N hours.")
    ] = 168,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be removed.")] = False,
) -> None:
    """Delete data files that no recent version needs."""
    with _spinner(f"vacuuming {table}"):
        files = _lh().table(table).vacuum(retain_hours, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    console.print(f"{table}: {verb} {len(files)} file{'s' if len(files) != 1 else ''}")


@ingest_app.command("files")
def ingest(
    folder: Annotated[
        str,
        typer.Argument(
            help="Folder (or s3://BUCKET/PREFIX) of CSV, JSON lines, JSON, Parquet files."
        ),
    ],
    table: Annotated[
        str, typer.Option("--table", "-t", "--into", help="Bronze table, e.g. bronze.events.")
    ],
    source_system: Annotated[
        str | None, typer.Option(help="Name of the system the files come from.")
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Keep landing new files as they arrive, until SIGINT or SIGTERM."
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=0.01, help="With --watch: seconds between looks; a file lands once settled."
        ),
    ] = 5.0,
) -> None:
    """Ingest the folder's new files into a bronze table, each file exactly once."""
    from lakehouse.ingest.files import ingest_folder

    if watch:
        _watch_folder(folder, table, source_system, interval)
        return
    with _spinner(f"ingesting {folder} into {table}"):
        report = ingest_folder(_lh(), folder, table, source_system=source_system)
    console.print(
        f"{table}: {len(report.files_ingested)} new file(s), {report.rows:,} rows, "
        f"{report.rescued} with rescued values, {report.quarantined} quarantined; "
        f"{len(report.files_skipped)} file(s) already ingested",
        soft_wrap=True,
    )
    for duplicate, first in report.duplicates.items():
        console.print(f"  {duplicate}: the same content as {first}", soft_wrap=True)


def _watch_folder(folder: str, table: str, source_system: str | None, interval: float) -> None:
    """``ingest FOLDER --watch``: batches until SIGINT or SIGTERM, the last one finished."""
    import signal

    from lakehouse.ingest.watch import watch_folder

    stopping: list[int] = []

    def stop_after_batch(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, stop_after_batch) for s in (signal.SIGINT, signal.SIGTERM)}
    said_waiting: set[str] = set()

    def on_batch(report: Any, files: list[Any]) -> None:
        console.print(
            f"{table}: {len(report.files_ingested)} new file(s), {report.rows:,} rows, "
            f"{report.quarantined} quarantined; {len(report.files_skipped)} already ingested",
            soft_wrap=True,
            highlight=False,
        )

    def on_waiting(files: list[Any]) -> None:
        for path in map(str, files):
            if path not in said_waiting:
                console.print(f"  waiting for {path} to settle", soft_wrap=True, highlight=False)
                said_waiting.add(path)

    said_trouble: list[str] = []

    def on_trouble(error: Exception) -> None:
        if said_trouble[-1:] != [str(error)]:  # told once while it lasts
            console.print(
                f"  {error}\n  looking again every {interval:g} s",
                soft_wrap=True,
                highlight=False,
            )
            said_trouble.append(str(error))

    console.print(
        f"watching {folder} for {table} every {interval:g} s (Ctrl-C to stop)", highlight=False
    )
    try:
        rows = watch_folder(
            _lh(),
            folder,
            table,
            interval=interval,
            stop=lambda: bool(stopping),
            on_batch=on_batch,
            on_waiting=on_waiting,
            on_trouble=on_trouble,
            source_system=source_system,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    console.print(f"stopped: {rows:,} row(s) landed", highlight=False)


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="How many app events (other sources scale).")] = 1500,
    pipeline: Annotated[
        str | None, typer.Option(help="The demo pipeline folder (default pipelines/demo).")
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Run the real-time path instead: a local broker, the user-event producer "
            "and the stream into bronze.user_events and realtime.*.",
        ),
    ] = False,
    rate: Annotated[float, typer.Option(help="--stream: user events a second.")] = 20.0,
    table_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="The table format of the demo's tables: delta or iceberg (default: the "
            "settings' format).",
            show_default=False,
        ),
    ] = None,
    seconds: Annotated[
        float | None, typer.Option(help="--stream: stop after this long (default: Ctrl-C).")
    ] = None,
) -> None:
    """Build the example platform: sources, bronze, silver and gold, with a summary."""
    from pathlib import Path

    from lakehouse.demo import run_demo

    if table_format is not None:
        if table_format not in ("delta", "iceberg"):
            raise LakehouseError(f"unknown table format {table_format!r}", "use delta or iceberg")
        # The settings of this process and of the runs it starts in child processes.
        os.environ["LAKEHOUSE_FORMAT"] = table_format
        _state["settings"] = settings().model_copy(update={"format": table_format})
    if stream:
        from lakehouse.demo.stream import run_stream_demo

        run_stream_demo(_lh(), console, rate=rate, seconds=seconds)
        return
    if events < 100:
        raise LakehouseError("--events must be at least 100")
    run_demo(
        _lh(),
        events=events,
        console=console,
        pipeline_folder=Path(pipeline) if pipeline else None,
    )


def _register_pipeline_commands() -> None:
    from lakehouse.pipeline.commands import register

    register(app, _lh, console, print_records)


_register_pipeline_commands()


def _register_server_command() -> None:
    from lakehouse.api.serve import register

    register(app, _lh)


_register_server_command()


def _register_schedule_commands() -> None:
    from lakehouse.ops.schedule_commands import register

    register(app, _lh, console, print_records)


_register_schedule_commands()


def _register_access_commands() -> None:
    from lakehouse.access.commands import register

    register(app, _lh, console, print_records)


_register_access_commands()


def _register_streaming_commands() -> None:
    from lakehouse.streaming.commands import register

    register(app, _lh, console)


_register_streaming_commands()


def _register_dashboard_commands() -> None:
    from lakehouse.dashboards.commands import register

    register(app, _lh, console, print_records)


_register_dashboard_commands()


register_ingest(app, _lh)


def _register_cdc_commands() -> None:
    from lakehouse.ingest.cdc_commands import cdc_app

    app.add_typer(cdc_app, name="cdc")


_register_cdc_commands()


def _register_serving_commands() -> None:
    from lakehouse.serving.commands import register

    register(app, _lh, console, print_records)


_register_serving_commands()


def _register_settings_commands() -> None:
    from lakehouse.settings.commands import register

    register(app, _state, console, print_records)


_register_settings_commands()


def _register_maintenance_commands() -> None:
    from lakehouse.ops.maintenance_commands import register

    register(app, _lh, console, print_records)


_register_maintenance_commands()


def _register_health_commands() -> None:
    from lakehouse.ops.health_commands import register

    register(app, _lh, console, print_records)


_register_health_commands()


def _register_airflow_commands() -> None:
    from lakehouse.airflow.commands import register

    def where() -> dict[str, Any]:
        """The warehouse, settings file and profile this command was given, for the tasks;
        with neither a warehouse nor a settings file, the default warehouse's full path."""
        from lakehouse.settings.load import find_config

        config = find_config(_state.get("config"))
        warehouse = _state.get("warehouse")
        if warehouse is None and config is None:
            warehouse = settings().warehouse
        return {
            "warehouse": warehouse,
            "config": str(config) if config else None,
            "profile": _state.get("profile") or os.environ.get("LAKEHOUSE_PROFILE"),
        }

    register(app, where, console)


_register_airflow_commands()


def main() -> None:
    debug = "--debug" in sys.argv or os.environ.get("LAKEHOUSE_DEBUG") == "1"
    try:
        app(prog_name="lakehouse")
    except LakehouseError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/bold red] {exc.message}", highlight=False)
        if exc.hint:
            err_console.print(f"[yellow]hint:[/yellow] {exc.hint}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last word for anything unexpected
        if debug:
            raise
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        err_console.print("[dim]run with --debug to see the traceback[/dim]")
        sys.exit(1)


if __name__ == "__main__":
    main()
