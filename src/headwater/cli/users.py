"""`headwater user ...`: users, for administrators, over the server's REST API."""

from __future__ import annotations

from urllib.parse import quote

import typer

from headwater.cli.client import Client
from headwater.cli.output import JsonOption, console, print_json, print_table, reports_errors

app = typer.Typer(no_args_is_help=True)


def _user(username: str) -> str:
    return f"/api/users/{quote(username, safe='')}"


@app.command("list")
@reports_errors
def list_users(as_json: bool = JsonOption) -> None:
    """Every user, with how they sign in."""
    with Client() as client:
        items = list(client.pages("/api/users"))
    if as_json:
        print_json(items)
        return
    print_table(
        "Users",
        ["username", "signs in", "administrator", "disabled", "last sign-in"],
        [
            [u["username"], u["source"], u["is_admin"], u["disabled"], u["last_sign_in_at"]]
            for u in items
        ],
    )


@app.command()
@reports_errors
def create(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    admin: bool = typer.Option(False, help="Make the user an administrator."),
) -> None:
    """Create a user who signs in with a password."""
    with Client() as client:
        client.post("/api/users", {"username": username, "password": password, "is_admin": admin})
    console.print(f"created user {username}")


@app.command("set-password")
@reports_errors
def set_password(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Set a user's password; their tokens are revoked."""
    with Client() as client:
        client.patch(_user(username), {"password": password})
    console.print(f"password of {username} changed; their tokens were revoked")


@app.command()
@reports_errors
def disable(username: str) -> None:
    """Disable a user: they cannot sign in, and their tokens stop working at once."""
    with Client() as client:
        client.patch(_user(username), {"disabled": True})
    console.print(f"user {username} disabled; their tokens were revoked")


@app.command()
@reports_errors
def enable(username: str) -> None:
    """Enable a disabled user again (they sign in anew)."""
    with Client() as client:
        client.patch(_user(username), {"disabled": False})
    console.print(f"user {username} enabled")
