"""`headwater storage`: the blob store's usage per channel and mirror, and the last garbage
collection (administrators; `headwater job run blob-collect` queues one)."""

from __future__ import annotations

from typing import Any

import typer

from headwater.cli.client import Client
from headwater.cli.output import JsonOption, console, print_json, print_table, reports_errors, size

app = typer.Typer(invoke_without_command=True)


@app.callback()
def storage(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The blob store's usage (the same as `headwater storage show`)."""
    if ctx.invoked_subcommand is None:
        show_usage(as_json)


@app.command()
def show(as_json: bool = JsonOption) -> None:
    """What the store holds, what nothing references any more, what each channel and mirror
    holds, and the last garbage collection."""
    show_usage(as_json)


@reports_errors
def show_usage(as_json: bool) -> None:
    with Client() as client:
        usage: dict[str, Any] = client.get("/api/storage")
    if as_json:
        print_json(usage)
        return
    console.print(
        f"backend {usage['backend']}: {usage['blobs']} blobs, {size(usage['bytes'])}; "
        f"unreferenced {usage['unreferenced']} blobs, {size(usage['unreferenced_bytes'])} "
        f"(collected once untouched for {usage['grace_hours']:g} hours)",
        highlight=False,
        markup=False,
    )
    console.print(f"last collection: {_collection(usage['last_collection'])}", highlight=False)
    print_table(
        "Channels",
        ["channel", "files", "package bytes", "index bytes"],
        [
            [row["name"], row["files"], size(row["package_bytes"]), size(row["index_bytes"])]
            for row in usage["channels"]
        ],
    )
    print_table(
        "Mirrors",
        ["mirror", "files", "package bytes"],
        [[row["name"], row["files"], size(row["package_bytes"])] for row in usage["mirrors"]],
    )


def _collection(last: dict[str, Any] | None) -> str:
    if last is None:
        return "never"
    when = last["finished_at"] or f"queued {last.get('created_at') or ''}".strip()
    shown = f"run #{last['run_id']} {last['state']} ({when})"
    collected = last.get("collected")
    if collected:
        shown += (
            f": deleted {collected['deleted']} blobs, reclaimed {size(collected['bytes_deleted'])}"
        )
    return shown
