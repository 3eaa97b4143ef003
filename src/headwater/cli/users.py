"""`headwater user ...`"""

from __future__ import annotations

import typer

from headwater.cli.context import console, reports_errors, writing
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
    console.print(f"password of {username} changed")
