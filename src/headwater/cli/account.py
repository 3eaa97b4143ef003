"""`headwater login`, `logout`, `whoami` and `headwater token ...`: the CLI's own credentials,
and personal tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import typer

from headwater.cli.client import (
    Client,
    Login,
    credentials_path,
    forget_login,
    refusal,
    save_login,
    saved_login,
    server_url,
)
from headwater.cli.output import JsonOption, console, print_json, print_table, reports_errors
from headwater.errors import HeadwaterError

tokens = typer.Typer(no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
    app.add_typer(tokens, name="token", help="Your personal tokens (pip, uv, conda, twine).")


@reports_errors
def login(
    url: str = typer.Argument(..., help="The server, e.g. https://headwater.example.com"),
    username: str = typer.Option(None, "--username", "-u", help="Asked for when not given."),
    token: str = typer.Option(
        None, "--token", help="Sign in with an existing token instead of a password."
    ),
) -> None:
    """Sign in to a Headwater server; later commands act there, with your own rights. The
    token is kept in your config directory, readable by you only."""
    url = server_url(url)
    if token is None:
        username = username or typer.prompt("Username")
        password = typer.prompt("Password", hide_input=True)
        token = _sign_in(url, username, password)
    with Client(Login(url, token)) as client:
        account = client.get("/api/account")
    path = save_login(Login(url, token))
    console.print(f"signed in to {url} as {account['username']} (token kept in {path})")


def _sign_in(url: str, username: str, password: str) -> str:
    try:
        response = httpx.post(
            f"{url}/api/auth/login",
            json={"username": username, "password": password},
            timeout=60,
        )
    except httpx.HTTPError as error:
        raise HeadwaterError(f"could not reach {url}: {error}") from None
    if response.status_code != 200:
        raise HeadwaterError(refusal(response))
    return str(response.json()["token"])


@reports_errors
def logout() -> None:
    """End this session on the server and forget it here."""
    try:
        with Client() as client:
            current = [t for t in client.pages("/api/account/tokens") if t["current"]]
            for found in current:
                client.delete(f"/api/account/tokens/{found['id']}")
    except HeadwaterError as error:
        console.print(f"[yellow]the server was not told:[/yellow] {error.message}")
    forgotten = forget_login()
    console.print("signed out" if forgotten else f"no saved sign-in in {credentials_path()}")


@reports_errors
def whoami(as_json: bool = JsonOption) -> None:
    """Who the saved token signs in as, on which server."""
    with Client() as client:
        account = client.get("/api/account")
    if as_json:
        print_json(account)
        return
    groups = ", ".join(account["groups"]) or "none"
    organizations = ", ".join(
        f"{m['organization']} ({m['role']})" for m in account["organizations"]
    )
    console.print(
        f"{account['username']} on {saved_login().url}"
        f"{' (administrator)' if account['is_admin'] else ''}\n"
        f"organizations: {organizations or 'none'}\ngroups: {groups}",
        highlight=False,
    )


@tokens.command("list")
@reports_errors
def list_tokens(as_json: bool = JsonOption) -> None:
    """Your sessions and personal tokens."""
    with Client() as client:
        items = list(client.pages("/api/account/tokens"))
    if as_json:
        print_json(items)
        return
    print_table(
        "Tokens",
        ["id", "name", "kind", "carries", "expires", "last used"],
        [
            [
                t["id"],
                t["name"] + (" (this one)" if t["current"] else ""),
                t["kind"],
                _carries(t),
                t["expires_at"],
                t["last_used_at"],
            ]
            for t in items
        ],
    )


def _carries(token: dict[str, Any]) -> str:
    if token["kind"] == "session":
        return "everything you may do"
    scopes = ", ".join(token["scopes"] or [])
    channels = ", ".join(f"{r['channel']}:{r['role']}" for r in token["resources"])
    return "; ".join(part for part in (scopes, channels) if part)


@tokens.command("create")
@reports_errors
def create_token(
    name: str = typer.Argument(..., help="What the token is for."),
    scopes: list[str] = typer.Option(
        None,
        "--scope",
        help="artifact:view, artifact:create, channel:edit, mirror:edit, cve:manage or admin "
        "(repeat for more).",
    ),
    channels: list[str] = typer.Option(
        None, "--channel", help="channel:role (read, write, manage): limit it to channels."
    ),
    days: int = typer.Option(None, help="How many days it lasts (the server's default if not)."),
    as_json: bool = JsonOption,
) -> None:
    """Make a personal token; it is printed this once."""
    body: dict[str, object] = {"name": name}
    if scopes:
        body["scopes"] = scopes
    if channels:
        body["resources"] = [_resource(text) for text in channels]
    if days is not None:
        body["expires_at"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()
    with Client() as client:
        created = client.post("/api/account/tokens", body)
    if as_json:
        print_json(created)
        return
    console.print(f"token {created['id']} ({created['name']}), shown once:", highlight=False)
    console.print(created["token"], highlight=False, markup=False)


def _resource(text: str) -> dict[str, str]:
    channel, _, role = text.partition(":")
    return {"channel": channel, "role": role or "read"}


@tokens.command("revoke")
@reports_errors
def revoke_token(token_id: int) -> None:
    """Revoke one of your tokens: it stops working at once."""
    with Client() as client:
        client.delete(f"/api/account/tokens/{token_id}")
    console.print(f"token {token_id} revoked")
