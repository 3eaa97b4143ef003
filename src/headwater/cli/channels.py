"""`headwater channel ...`"""

from __future__ import annotations

from pathlib import Path

import typer

from headwater.cli.context import (
    JsonOption,
    acting_user,
    blob_store,
    conda_names,
    console,
    database,
    parse_json_option,
    print_json,
    print_table,
    reports_errors,
    writing,
)
from headwater.schemas.channels import ChannelOut, FileOut
from headwater.services import channels as channel_service
from headwater.services import packages as package_service
from headwater.services import uploads
from headwater.services.cve_matching import match_channel

app = typer.Typer(no_args_is_help=True)


def _channel_out(name: str) -> ChannelOut:
    with database().reading() as session:
        channel = channel_service.get_channel(session, name)
        stats = channel_service.channel_stats(session, [channel.id])[channel.id]
        return ChannelOut.of(channel, stats)


@app.command("list")
@reports_errors
def list_channels(as_json: bool = JsonOption) -> None:
    """List every channel."""
    with database().reading() as session:
        channels, _ = channel_service.list_channels(session, offset=0, limit=100_000)
        stats = channel_service.channel_stats(session, [channel.id for channel in channels])
        items = [ChannelOut.of(channel, stats[channel.id]) for channel in channels]
    if as_json:
        print_json(items)
        return
    print_table(
        "Channels",
        ["name", "privacy", "files", "mirrors", "description"],
        [[c.name, c.privacy, c.file_count, c.mirror_count, c.description] for c in items],
    )


@app.command()
@reports_errors
def create(
    name: str,
    description: str = typer.Option("", help="A line saying what the channel is for."),
    privacy: str = typer.Option("public", help="public, authenticated or private."),
    filters: str = typer.Option(
        None, help='Channel filters as JSON, e.g. \'{"subdirs": ["linux-64", "noarch"]}\'.'
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create a channel."""
    with writing() as session:
        channel_service.create_channel(
            session,
            name,
            owner=acting_user(),
            description=description,
            privacy=privacy,
            filters=parse_json_option(filters, "--filters"),
        )
    _show(name, as_json)


@app.command()
@reports_errors
def show(name: str, as_json: bool = JsonOption) -> None:
    """Show one channel."""
    _show(name, as_json)


def _show(name: str, as_json: bool) -> None:
    channel = _channel_out(name)
    if as_json:
        print_json(channel)
        return
    for key, value in channel.model_dump().items():
        console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@app.command()
@reports_errors
def edit(
    name: str,
    description: str = typer.Option(None),
    privacy: str = typer.Option(None, help="public, authenticated or private."),
    filters: str = typer.Option(
        None, help="Filters to merge as JSON; a key set to null removes it; 'null' clears all."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Edit a channel; only the options given change."""
    changes: dict[str, object] = {}
    if description is not None:
        changes["description"] = description
    if privacy is not None:
        changes["privacy"] = privacy
    if filters is not None:
        changes["filters"] = parse_json_option(filters, "--filters")
    with writing() as session:
        channel_service.update_channel(session, name, changes)
    _show(name, as_json)


@app.command()
@reports_errors
def delete(name: str, yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Delete a channel with its mirrors, history and files."""
    if not yes:
        typer.confirm(f"Delete channel {name} and everything in it?", abort=True)
    with writing() as session:
        channel_service.delete_channel(session, blob_store(), name)
    console.print(f"deleted channel {name}")


@app.command()
@reports_errors
def upload(
    name: str,
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    as_json: bool = JsonOption,
) -> None:
    """Upload conda packages (.conda, .tar.bz2) and Python wheels and sdists into a channel."""
    store = blob_store()
    added = []
    for path in files:
        with path.open("rb") as stream:
            staged = uploads.stage_upload(store, stream)
        file = uploads.upload_package(
            database(),
            store,
            lambda session: channel_service.get_channel(session, name),
            path.name,
            staged,
            uploaded_by=acting_user(),
        )
        added.append(FileOut.of(name, file))
        if not as_json:
            console.print(f"uploaded {file.repo_path}")
    if added:
        with database().reading() as session:
            channel_id = channel_service.get_channel(session, name).id
        match_channel(database(), conda_names(), channel_id)
    if as_json:
        print_json(added)


@app.command()
@reports_errors
def packages(name: str, search: str = typer.Option(None), as_json: bool = JsonOption) -> None:
    """List the packages of a channel."""
    with database().reading() as session:
        summaries, _ = package_service.list_packages(
            session, name, offset=0, limit=100_000, search=search
        )
    if as_json:
        print_json({"items": [vars(summary) for summary in summaries]})
        return
    print_table(
        f"Packages in {name}",
        ["name", "type", "latest version", "files", "subdirs"],
        [
            [
                s.name,
                ", ".join("PyPI" if t == "python" else t for t in s.package_types),
                s.latest_version,
                s.file_count,
                ", ".join(s.subdirs),
            ]
            for s in summaries
        ],
    )
