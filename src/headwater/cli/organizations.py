"""`headwater org ...`: organizations, their members and groups."""

from __future__ import annotations

from urllib.parse import quote

import typer

from headwater.cli.client import Client
from headwater.cli.output import JsonOption, console, print_json, print_table, reports_errors

app = typer.Typer(no_args_is_help=True)


def _org(name: str) -> str:
    return f"/api/organizations/{quote(name, safe='')}"


@app.command("list")
@reports_errors
def list_organizations(as_json: bool = JsonOption) -> None:
    """Your organizations (every one, for an administrator)."""
    with Client() as client:
        items = list(client.pages("/api/organizations"))
    if as_json:
        print_json(items)
        return
    print_table(
        "Organizations", ["name", "description"], [[o["name"], o["description"]] for o in items]
    )


@app.command()
@reports_errors
def create(name: str, description: str = typer.Option("")) -> None:
    """Create an organization (administrators)."""
    with Client() as client:
        client.post("/api/organizations", {"name": name, "description": description})
    console.print(f"created organization {name}")


@app.command()
@reports_errors
def show(name: str, as_json: bool = JsonOption) -> None:
    """An organization's members and groups."""
    with Client() as client:
        members = list(client.pages(f"{_org(name)}/members"))
        groups = list(client.pages(f"{_org(name)}/groups"))
    if as_json:
        print_json({"members": members, "groups": groups})
        return
    print_table(
        f"Members of {name}",
        ["user", "role", "groups"],
        [[m["username"], m["role"], ", ".join(m["groups"])] for m in members],
    )
    print_table(
        f"Groups of {name}",
        ["group", "single sign-on group", "members"],
        [[g["name"], g["sso_group"], ", ".join(g["members"])] for g in groups],
    )


@app.command("add-member")
@reports_errors
def add_member(
    name: str, username: str, role: str = typer.Option("member", help="owner or member.")
) -> None:
    """Add a member, or change their role."""
    with Client() as client:
        client.put(f"{_org(name)}/members/{quote(username, safe='')}", {"role": role})
    console.print(f"{username} is {role} of {name}")


@app.command("remove-member")
@reports_errors
def remove_member(name: str, username: str) -> None:
    """Take a member out of the organization and its groups."""
    with Client() as client:
        client.delete(f"{_org(name)}/members/{quote(username, safe='')}")
    console.print(f"{username} left {name}")


@app.command("create-group")
@reports_errors
def create_group(
    name: str,
    group: str,
    sso_group: str = typer.Option(
        None, "--sso-group", help="The identity provider's group whose members are this one's."
    ),
) -> None:
    """Create a group in the organization."""
    with Client() as client:
        client.post(f"{_org(name)}/groups", {"name": group, "sso_group": sso_group})
    console.print(f"created group {name}/{group}")


@app.command("add-to-group")
@reports_errors
def add_to_group(name: str, group: str, username: str) -> None:
    """Put a user in a group (and in the organization)."""
    with Client() as client:
        client.put(
            f"{_org(name)}/groups/{quote(group, safe='')}/members/{quote(username, safe='')}"
        )
    console.print(f"{username} is in {name}/{group}")
