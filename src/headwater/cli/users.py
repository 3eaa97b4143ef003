"""`headwater user ...`"""

from __future__ import annotations

import typer

from headwater.cli.context import acting_user, console, reports_errors, writing
from headwater.services import auth

app = typer.Typer(no_args_is_help=True)


@app.command()
@reports_errors
def create(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    admin: bool = typer.Option(False, help="Make the user an administrator."),
) -> None:
    """Create a user who can sign in."""
    with writing() as session:
        auth.add_user(session, username, password, is_admin=admin)
    console.print(f"created user {username}")


@app.command("set-password")
@reports_errors
def set_password(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Set a user's password."""
    with writing() as session:
        auth.set_password(session, username, password)
    console.print(f"password of {username} changed; their tokens were revoked")


@app.command()
@reports_errors
def disable(username: str) -> None:
    """Disable a user: they cannot sign in, and their tokens stop working at once."""
    with writing() as session:
        auth.set_disabled(session, username, True, by=acting_user())
    console.print(f"user {username} disabled; their tokens were revoked")


@app.command()
@reports_errors
def enable(username: str) -> None:
    """Enable a disabled user again (they sign in anew)."""
    with writing() as session:
        auth.set_disabled(session, username, False, by=acting_user())
    console.print(f"user {username} enabled")
