"""``lakehouse config init|validate|show``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, SecretStr
from rich.console import Console

from lakehouse.errors import LakehouseError
from lakehouse.settings.load import FILE_NAMES, LoadedSettings, SettingsError, load_settings

HIDDEN = "********"


def template() -> str:
    """The commented ``lakehouse.yaml`` that ``config init`` writes."""
    return resources.files("lakehouse.settings").joinpath("template.yaml").read_text("utf-8")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value, secrets hidden; lists of plain values stay whole."""
    if isinstance(value, BaseModel):
        value = {k: getattr(value, k) for k in type(value).model_fields}
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and any(isinstance(v, BaseModel | dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}{i}."))
        return out
    if isinstance(value, SecretStr):
        value = HIDDEN
    elif isinstance(value, list):
        value = [HIDDEN if isinstance(v, SecretStr) else v for v in value]
    elif isinstance(value, dict):
        value = {}
    return {prefix.rstrip("."): value}


def effective(loaded: LoadedSettings) -> list[dict[str, Any]]:
    """Every setting with its value (secrets hidden) and where it came from."""
    return [
        {"key": key, "value": value, "source": loaded.source_of(key)}
        for key, value in flatten(loaded.settings).items()
    ]


def register(app: typer.Typer, state: dict[str, Any], console: Console, printer: Any) -> None:
    group = typer.Typer(
        help="The settings: lakehouse.yaml, its profiles and LAKEHOUSE_* variables.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="config")

    @group.command("init")
    def init(
        path: Annotated[str, typer.Argument(help="Where to write it.")] = FILE_NAMES[0],
        force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    ) -> None:
        """Write a commented lakehouse.yaml with every section and its defaults."""
        target = Path(path)
        if target.exists() and not force:
            raise LakehouseError(f"{target} exists", "give --force to replace it")
        target.write_text(template(), encoding="utf-8")
        console.print(f"wrote {target}; check it with: lakehouse config validate")

    @group.command("validate")
    def validate(
        fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    ) -> None:
        """Report every problem of the settings, with its key path, line and what is
        allowed; exit 1 when there is one."""
        try:
            loaded = load_settings(state.get("config"), state.get("profile"))
        except SettingsError as exc:
            if fmt == "json":
                problems = [
                    {"key": p.path, "where": p.where, "problem": p.message} for p in exc.problems
                ]
                print(json.dumps({"valid": False, "problems": problems}, indent=2))
                raise typer.Exit(1) from exc
            raise
        where = str(loaded.file) if loaded.file else "no lakehouse.yaml: the defaults"
        if fmt == "json":
            body = {"valid": True, "file": where, "profile": loaded.profile, "problems": []}
            print(json.dumps(body, indent=2))
            return
        console.print(f"valid ({where}, profile {loaded.profile})")

    @group.command("show")
    def show(
        profile: Annotated[
            str | None, typer.Option("--profile", help="Show this profile's settings.")
        ] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    ) -> None:
        """The effective settings, each with where it came from (file line, variable,
        default); secrets are never printed."""
        loaded = load_settings(state.get("config"), profile or state.get("profile"))
        rows = effective(loaded)
        if fmt != "json":  # one column of text
            for row in rows:
                value = row["value"]
                row["value"] = value if isinstance(value, str) else json.dumps(value)
        where = loaded.file or "defaults"
        printer(rows, fmt, f"settings ({where}, profile {loaded.profile})")
