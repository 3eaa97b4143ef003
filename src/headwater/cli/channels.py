"""`headwater channel ...`: channels, their packages, uploads, and roles on them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from headwater.cli.client import Client
from headwater.cli.output import (
    JsonOption,
    console,
    parse_json_option,
    print_fields,
    print_json,
    print_table,
    reports_errors,
)

app = typer.Typer(no_args_is_help=True)
roles = typer.Typer(no_args_is_help=True)
app.add_typer(roles, name="role", help="Who holds which role on a channel.")


def channel_path(name: str) -> str:
    return f"/api/channels/{quote(name, safe='')}"


INCLUDE_DEPENDENCIES_HELP = (
    "Take, from the same upstream, what kept packages depend on (--no-include-dependencies "
    "stops it)."
)
DEPENDENCIES_HELP = (
    "Which versions of a dependency to take: all (every one that satisfies it), newest (only "
    "the newest), or default (remove the setting: the channel's choice, else all)."
)


def dependency_filters(include: bool | None, versions: str | None) -> dict[str, Any]:
    """The filter keys the --include-dependencies and --dependencies options set; a null
    removes a key when filters merge."""
    changes: dict[str, Any] = {}
    if include is not None:
        changes["include_dependencies"] = True if include else None
    if versions is not None:
        choice = versions.strip().lower()
        if choice not in ("all", "newest", "default", ""):
            raise typer.BadParameter(
                f"{versions!r} is not one of all, newest, default", param_hint="--dependencies"
            )
        changes["dependencies"] = None if choice in ("default", "") else choice
    return changes


def with_dependency_filters(
    body: dict[str, Any], include: bool | None, versions: str | None
) -> dict[str, Any]:
    """`body`'s filters with the keys of --include-dependencies and --dependencies added, as
    the changes to make to `body` (none when neither option was given)."""
    keys = dependency_filters(include, versions)
    if not keys:
        return {}
    filters = body.get("filters") if "filters" in body else {}
    if not isinstance(filters, dict):
        raise typer.BadParameter(
            "--filters must be a JSON object to combine with --include-dependencies or "
            "--dependencies"
        )
    return {"filters": {**filters, **keys}}


# A --must-install value's platform, after its last "@": `numpy >=1.26@linux-64`. A PEP 508
# direct reference (`name @ https://...`) ends with a URL, which this never matches.
_PLATFORM_SUFFIX = re.compile(r"[a-z0-9_-]+")


def must_install_entry(value: str) -> dict[str, str | None]:
    """`SPEC` or `SPEC@PLATFORM` as the REST API takes it."""
    spec, at, platform = value.rpartition("@")
    if at and spec.strip() and _PLATFORM_SUFFIX.fullmatch(platform.strip()):
        return {"spec": spec.strip(), "platform": platform.strip()}
    return {"spec": value.strip(), "platform": None}


@app.command("list")
@reports_errors
def list_channels(as_json: bool = JsonOption) -> None:
    """The channels you may read."""
    with Client() as client:
        items = list(client.pages("/api/channels"))
    if as_json:
        print_json(items)
        return
    print_table(
        "Channels",
        ["name", "privacy", "owner", "files", "mirrors", "description"],
        [
            [
                c["name"],
                c["privacy"],
                c["owner"],
                c["file_count"],
                c["mirror_count"],
                c["description"],
            ]
            for c in items
        ],
    )


@app.command()
@reports_errors
def create(
    name: str,
    description: str = typer.Option("", help="A line saying what the channel is for."),
    privacy: str = typer.Option("public", help="public, authenticated or private."),
    organization: str = typer.Option(
        None, help="The organization that owns it (you, when not given)."
    ),
    filters: str = typer.Option(
        None, help='Channel filters as JSON, e.g. \'{"subdirs": ["linux-64", "noarch"]}\'.'
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create a channel."""
    body = {
        "name": name,
        "description": description,
        "privacy": privacy,
        "organization": organization,
        "filters": parse_json_option(filters, "--filters"),
    }
    with Client() as client:
        _show(client.post("/api/channels", body), as_json)


@app.command()
@reports_errors
def show(name: str, as_json: bool = JsonOption) -> None:
    """Show one channel."""
    with Client() as client:
        _show(client.get(channel_path(name)), as_json)


def _show(channel: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(channel)
    else:
        print_fields(channel)


@app.command()
@reports_errors
def edit(
    name: str,
    description: str = typer.Option(None),
    privacy: str = typer.Option(None, help="public, authenticated or private."),
    organization: str = typer.Option(None, help="Give the channel to this organization."),
    filters: str = typer.Option(
        None, help="Filters to merge as JSON; a key set to null removes it; 'null' clears all."
    ),
    include_dependencies: bool | None = typer.Option(
        None, "--include-dependencies/--no-include-dependencies", help=INCLUDE_DEPENDENCIES_HELP
    ),
    dependencies: str = typer.Option(None, "--dependencies", help=DEPENDENCIES_HELP),
    must_install: list[str] = typer.Option(
        None,
        "--must-install",
        metavar="SPEC[@PLATFORM]",
        help="A spec every new revision must be able to install (repeat for more; they replace "
        "the stored ones), e.g. 'numpy >=1.26' or 'numpy >=1.26@linux-64' for one platform "
        "only; without a platform it is solved for every platform the revision holds.",
    ),
    clear_must_install: bool = typer.Option(
        False, "--clear-must-install", help="Remove every must_install spec."
    ),
    also_available: list[str] = typer.Option(
        None,
        "--also-available",
        metavar="URL",
        help="A channel URL clients use beside this one, whose packages count as present "
        "(repeat for more; they replace the stored ones).",
    ),
    clear_also_available: bool = typer.Option(
        False, "--clear-also-available", help="Remove every also_available URL."
    ),
    on_unsolvable: str = typer.Option(
        None,
        "--on-unsolvable",
        metavar="fail|warn",
        help="When the must_install specs cannot be solved: fail the run (the previous revision "
        "stays the head) or warn (publish the revision and report it).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Edit a channel; only the options given change."""
    changes: dict[str, object] = {}
    for key, value in (
        ("description", description),
        ("privacy", privacy),
        ("organization", organization),
        ("on_unsolvable", on_unsolvable),
    ):
        if value is not None:
            changes[key] = value
    if filters is not None:
        changes["filters"] = parse_json_option(filters, "--filters")
    changes.update(with_dependency_filters(changes, include_dependencies, dependencies))
    if must_install and clear_must_install:
        raise typer.BadParameter("give --must-install or --clear-must-install, not both")
    if must_install:
        changes["must_install"] = [must_install_entry(value) for value in must_install]
    elif clear_must_install:
        changes["must_install"] = None
    if also_available and clear_also_available:
        raise typer.BadParameter("give --also-available or --clear-also-available, not both")
    if also_available:
        changes["also_available"] = list(also_available)
    elif clear_also_available:
        changes["also_available"] = None
    with Client() as client:
        _show(client.patch(channel_path(name), changes), as_json)


@app.command()
@reports_errors
def delete(name: str, yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Delete a channel with its mirrors, history and files."""
    if not yes:
        typer.confirm(f"Delete channel {name} and everything in it?", abort=True)
    with Client() as client:
        client.delete(channel_path(name))
    console.print(f"deleted channel {name}")


@app.command()
@reports_errors
def upload(
    name: str,
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    as_json: bool = JsonOption,
) -> None:
    """Upload conda packages (.conda, .tar.bz2) and Python wheels and sdists into a channel."""
    added = []
    with Client() as client:
        for path in files:
            file = client.upload(f"{channel_path(name)}/files", path)
            added.append(file)
            if not as_json:
                console.print(f"uploaded {file['url']}", highlight=False)
    if as_json:
        print_json(added)


@app.command()
@reports_errors
def packages(name: str, search: str = typer.Option(None), as_json: bool = JsonOption) -> None:
    """List the packages of a channel."""
    with Client() as client:
        items = list(client.pages(f"{channel_path(name)}/packages", search=search))
    if as_json:
        print_json({"items": items, "total_count": len(items)})
        return
    print_table(
        f"Packages in {name}",
        ["name", "type", "latest version", "files", "subdirs"],
        [
            [
                p["name"],
                ", ".join("PyPI" if t == "python" else t for t in p["package_types"]),
                p["latest_version"],
                p["file_count"],
                ", ".join(p["subdirs"]),
            ]
            for p in items
        ],
    )


@app.command()
@reports_errors
def revisions(name: str, as_json: bool = JsonOption) -> None:
    """The channel's revisions, newest first: what changed each time, why, and by whom."""
    with Client() as client:
        items = list(client.pages(f"{channel_path(name)}/revisions"))
    if as_json:
        print_json({"items": items, "total_count": len(items)})
        return
    print_table(
        f"Revisions of {name}",
        ["revision", "when", "cause", "by", "files", "added", "removed", "kept as"],
        [
            [
                f"{r['number']}{' (head)' if r['head'] else ''}",
                r["created_at"][:19].replace("T", " "),
                _cause(r),
                r["actor"] or "",
                r["file_count"],
                r["added"],
                r["removed"],
                r["keep"] or "",
            ]
            for r in items
        ],
    )


def _cause(revision: dict[str, Any]) -> str:
    if revision["rolled_back_to"] is not None:
        return f"rollback to {revision['rolled_back_to']}"
    if revision["run_id"] is not None:
        return f"run #{revision['run_id']}"
    return str(revision["cause"])


@app.command()
@reports_errors
def rollback(name: str, revision: int, as_json: bool = JsonOption) -> None:
    """Make a new head revision whose contents equal an older revision's."""
    with Client() as client:
        landed = client.post(f"{channel_path(name)}/revisions/{revision}/rollback")
    if as_json:
        print_json(landed)
        return
    console.print(
        f"channel {name} is at revision {landed['number']}, with the contents of revision "
        f"{revision} (+{landed['added']} -{landed['removed']} files)",
        highlight=False,
    )


@app.command()
@reports_errors
def keep(
    name: str,
    revision: int,
    keep_as: str = typer.Argument(None, help="The name to keep it under; leave out to let go."),
    as_json: bool = JsonOption,
) -> None:
    """Keep a revision past retention under a name clients can pin (<channel>@<name>)."""
    with Client() as client:
        kept = client.put(f"{channel_path(name)}/revisions/{revision}", {"keep": keep_as})
    if as_json:
        print_json(kept)
    elif keep_as:
        console.print(f"revision {revision} of {name} is kept as {keep_as}", highlight=False)
    else:
        console.print(f"revision {revision} of {name} is no longer kept", highlight=False)


def _grantee(user: str | None, group: str | None) -> str:
    if (user is None) == (group is None):
        raise typer.BadParameter("name either --user or --group (organization/group)")
    if user is not None:
        return f"users/{quote(user, safe='')}"
    assert group is not None
    organization, _, name = group.partition("/")
    return f"groups/{quote(organization, safe='')}/{quote(name, safe='')}"


@roles.command("list")
@reports_errors
def list_roles(name: str, as_json: bool = JsonOption) -> None:
    """Who holds a role on the channel (besides its owner and administrators)."""
    with Client() as client:
        items = list(client.pages(f"{channel_path(name)}/roles"))
    if as_json:
        print_json(items)
        return
    print_table(
        f"Roles on {name}",
        ["kind", "name", "role"],
        [[r["kind"], r["name"], r["role"]] for r in items],
    )


@roles.command("grant")
@reports_errors
def grant_role(
    name: str,
    role: str = typer.Argument(..., help="read, write or manage."),
    user: str = typer.Option(None, "--user"),
    group: str = typer.Option(None, "--group", help="organization/group"),
) -> None:
    """Give a user or a group a role on the channel."""
    with Client() as client:
        granted = client.put(f"{channel_path(name)}/roles/{_grantee(user, group)}", {"role": role})
    console.print(f"{granted['kind']} {granted['name']} holds {granted['role']} on {name}")


@roles.command("revoke")
@reports_errors
def revoke_role(
    name: str,
    user: str = typer.Option(None, "--user"),
    group: str = typer.Option(None, "--group", help="organization/group"),
) -> None:
    """Take a user's or a group's role on the channel away."""
    with Client() as client:
        client.delete(f"{channel_path(name)}/roles/{_grantee(user, group)}")
    console.print(f"role on {name} revoked")
