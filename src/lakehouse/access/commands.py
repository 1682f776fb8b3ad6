"""The access commands of the CLI: token create/list/revoke, grant, revoke, grants."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from lakehouse.service import access as service

Fmt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
To = Annotated[
    str, typer.Option("--to", help="A role (admin, engineer, analyst, viewer) or a token name.")
]
Privilege = Annotated[str, typer.Argument(help="read or pii.")]
On = Annotated[str, typer.Argument(help="A layer (bronze) or a table (silver.users).")]


def register(app: typer.Typer, lh_factory: Any, console: Console, printer: Any) -> None:
    tokens = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
    app.add_typer(tokens, name="token")

    @tokens.command("create")
    def token_create(
        name: Annotated[str, typer.Option("--name", help="Who the token is for, e.g. alice.")],
        role: Annotated[str, typer.Option("--role", help="admin, engineer, analyst or viewer.")],
    ) -> None:
        """Create a token and print it (once)."""
        secret = service.create_token(lh_factory(), name, role)
        console.print(f"token {name} ({role}):", highlight=False)
        console.print(secret, highlight=False, soft_wrap=True, markup=False)
        console.print(
            "[yellow]It will not be shown again: store it now.[/yellow] "
            "Send it as 'Authorization: Bearer <token>'.",
            highlight=False,
        )

    @tokens.command("list")
    def token_list(fmt: Fmt = "table") -> None:
        """The tokens (live and revoked) with their role and last use; never the secrets."""
        rows = [
            {
                "name": t["name"],
                "role": t["role"],
                "status": "revoked" if t["revoked_at"] else "live",
                "created_at": _time(t["created_at"]),
                "last_used_at": _time(t["last_used_at"]),
                "revoked_at": _time(t["revoked_at"]),
            }
            for t in service.list_tokens(lh_factory())
        ]
        if not rows and fmt == "table":
            console.print("[dim]no tokens yet: lakehouse token create --name NAME --role ROLE")
            return
        printer(rows, fmt, "tokens")

    @tokens.command("revoke")
    def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
        """Revoke a token: it stops working within 2 seconds, in every process."""
        revoked = service.revoke_token(lh_factory(), name)
        console.print(f"revoked token {name}", highlight=False)
        if revoked.kept_grants:
            listed = ", ".join(f"{g['privilege']} on {g['on']}" for g in revoked.kept_grants)
            console.print(
                f"[dim]its grants ({listed}) stay for a new token named {name}; "
                f"lakehouse revoke PRIVILEGE ON --to {name} removes them[/dim]",
                highlight=False,
            )

    @app.command()
    def grant(privilege: Privilege, on: On, to: To) -> None:
        """Give a role or a token read (or pii) on a layer or a table."""
        service.grant(lh_factory(), privilege, on, to)
        console.print(f"granted {privilege} on {on} to {to}", highlight=False)

    @app.command()
    def revoke(privilege: Privilege, on: On, to: To) -> None:
        """Take a grant back (within 2 seconds in a running server)."""
        service.revoke(lh_factory(), privilege, on, to)
        console.print(f"revoked {privilege} on {on} from {to}", highlight=False)

    @app.command()
    def grants(fmt: Fmt = "table") -> None:
        """The grants, added to the roles' defaults (see docs/API.md)."""
        rows = [
            {
                "privilege": g["privilege"],
                "on": g["on"],
                "to": g["to"],
                "granted_at": _time(g["granted_at"]),
            }
            for g in service.list_grants(lh_factory())
        ]
        if not rows and fmt == "table":
            console.print("[dim]no grants: every role has its defaults[/dim]")
            return
        printer(rows, fmt, "grants")


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None
