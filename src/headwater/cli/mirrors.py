"""`headwater mirror ...`"""

from __future__ import annotations

from typing import Any

import typer

from headwater.cli.channels import (
    DEPENDENCIES_HELP,
    INCLUDE_DEPENDENCIES_HELP,
    channel_path,
    with_dependency_filters,
)
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
from headwater.cli.runs import follow, print_run, shown_state

app = typer.Typer(no_args_is_help=True)

ON_MISSING_FILE_HELP = (
    "What an active run does with a file upstream lists but answers 404 or 410 for: skip (leave "
    "it out with a warning, ask again next run) or fail (the channel keeps its revision)."
)


def mirror_path(channel: str, mirror_id: int) -> str:
    return f"{channel_path(channel)}/mirrors/{mirror_id}"


def _print_saved(saved: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(saved)
        return
    print_fields(saved, skip=("last_run", "warnings", "run"))
    for warning in saved.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if saved.get("run"):
        console.print(f"queued run #{saved['run']['id']}")


@app.command("list")
@reports_errors
def list_mirrors(
    channel: str = typer.Argument(None, help="A channel; the mirrors you may see when omitted."),
    as_json: bool = JsonOption,
) -> None:
    """List mirrors with their state, step, last and next run."""
    with Client() as client:
        path = f"{channel_path(channel)}/mirrors" if channel else "/api/mirrors"
        items = list(client.pages(path))
    if as_json:
        print_json(items)
        return
    print_table(
        "Mirrors",
        ["channel", "id", "name", "type", "mode", "source", "state", "step", "next run"],
        [
            [
                m["channel"],
                m["id"],
                m["mirror_name"],
                m["mirror_type"],
                m["mirror_mode"],
                m["source_root"],
                shown_state(m["last_run"]) if m["last_run"] else "never run",
                m["step"],
                m["next_run_at"],
            ]
            for m in items
        ],
    )


@app.command()
@reports_errors
def create(
    channel: str,
    mirror_name: str = typer.Option(
        ..., "--name", help="The mirror's name, unique in the channel."
    ),
    source_root: str = typer.Option(
        None,
        "--source",
        help="The upstream conda channel URL, or simple index URL (default for python_simple: "
        "https://pypi.org/simple/).",
    ),
    mirror_type: str = typer.Option(
        "conda", "--type", help="conda, or python_simple for a PyPI simple index."
    ),
    projects: list[str] = typer.Option(
        None, "--project", help="A PyPI project to mirror (python_simple; repeat for more)."
    ),
    mirror_mode: str = typer.Option("passive", "--mode", help="active or passive."),
    on_missing_file: str = typer.Option("skip", "--on-missing-file", help=ON_MISSING_FILE_HELP),
    cron: str = typer.Option("0 0 * * *", help="When to run, five-field cron in UTC."),
    proxy: str = typer.Option(None, help="A proxy of the server's allowlist (administrators)."),
    filters: str = typer.Option(
        None, help='Filters as JSON, e.g. \'{"subdirs": ["linux-64", "noarch"]}\'.'
    ),
    include_dependencies: bool | None = typer.Option(
        None, "--include-dependencies/--no-include-dependencies", help=INCLUDE_DEPENDENCIES_HELP
    ),
    dependencies: str = typer.Option(None, "--dependencies", help=DEPENDENCIES_HELP),
    run_now: bool = typer.Option(False, "--run-now", help="Queue the first run at once."),
    as_json: bool = JsonOption,
) -> None:
    """Create a mirror of an upstream conda channel or PyPI simple index."""
    mirror_filters = parse_json_option(filters, "--filters")
    if projects:
        mirror_filters = {**(mirror_filters or {}), "projects": projects}
    drafted = with_dependency_filters(
        {"filters": mirror_filters or {}}, include_dependencies, dependencies
    )
    if drafted:
        mirror_filters = {
            key: value for key, value in drafted["filters"].items() if value is not None
        }
    body: dict[str, Any] = {
        "mirror_name": mirror_name,
        "mirror_type": mirror_type,
        "mirror_mode": mirror_mode,
        "on_missing_file": on_missing_file,
        "cron": cron,
        "proxy": proxy,
        "filters": mirror_filters,
        "run_now": run_now,
    }
    if source_root is not None:
        body["source_root"] = source_root
    elif mirror_type == "python_simple":
        body["source_root"] = "https://pypi.org/simple/"
    with Client() as client:
        _print_saved(client.post(f"{channel_path(channel)}/mirrors", body), as_json)


@app.command()
@reports_errors
def show(channel: str, mirror_id: int, as_json: bool = JsonOption) -> None:
    """Show one mirror."""
    with Client() as client:
        mirror = client.get(mirror_path(channel, mirror_id))
    if as_json:
        print_json(mirror)
    else:
        print_fields(mirror, skip=("last_run",))


@app.command()
@reports_errors
def edit(
    channel: str,
    mirror_id: int,
    mirror_name: str = typer.Option(None, "--name"),
    source_root: str = typer.Option(None, "--source"),
    mirror_mode: str = typer.Option(None, "--mode"),
    on_missing_file: str = typer.Option(None, "--on-missing-file", help=ON_MISSING_FILE_HELP),
    cron: str = typer.Option(None),
    proxy: str = typer.Option(None, help="A proxy URL; an empty string removes it."),
    filters: str = typer.Option(
        None, help="Filters to merge as JSON; a key set to null removes it."
    ),
    include_dependencies: bool | None = typer.Option(
        None, "--include-dependencies/--no-include-dependencies", help=INCLUDE_DEPENDENCIES_HELP
    ),
    dependencies: str = typer.Option(None, "--dependencies", help=DEPENDENCIES_HELP),
    run_now: bool = typer.Option(False, "--run-now"),
    as_json: bool = JsonOption,
) -> None:
    """Edit a mirror; only the options given change, from its next run on."""
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "mirror_name": mirror_name,
            "source_root": source_root,
            "mirror_mode": mirror_mode,
            "on_missing_file": on_missing_file,
            "cron": cron,
        }.items()
        if value is not None
    }
    if proxy is not None:
        changes["proxy"] = proxy or None
    if filters is not None:
        changes["filters"] = parse_json_option(filters, "--filters")
    changes.update(with_dependency_filters(changes, include_dependencies, dependencies))
    if run_now:
        changes["run_now"] = True
    with Client() as client:
        _print_saved(client.patch(mirror_path(channel, mirror_id), changes), as_json)


@app.command()
@reports_errors
def delete(channel: str, mirror_id: int, yes: bool = typer.Option(False, "--yes")) -> None:
    """Delete a mirror with its history; the files it brought leave the channel."""
    if not yes:
        typer.confirm(f"Delete mirror {mirror_id} of {channel}?", abort=True)
    with Client() as client:
        client.delete(mirror_path(channel, mirror_id))
    console.print(f"deleted mirror {mirror_id}")


@app.command()
@reports_errors
def run(
    channel: str,
    mirror_id: int,
    wait: bool = typer.Option(
        False, "--wait", help="Follow the run until it ends; exit 1 if it fails."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run now: queue a run for a worker (the server's, or `headwater worker`)."""
    with Client() as client:
        queued = client.post(f"{mirror_path(channel, mirror_id)}/run")
        if not wait:
            if as_json:
                print_json(queued)
            else:
                console.print(f"queued run #{queued['id']}")
            return
        detail = follow(client, f"/api/runs/{queued['id']}", quiet=as_json)
    if as_json:
        print_json(detail)
    else:
        print_run(detail)
    if detail["state"] == "failed":
        raise typer.Exit(1)


@app.command()
@reports_errors
def preview(
    channel: str,
    mirror_id: int = typer.Argument(None, help="A saved mirror; omit it to preview a draft."),
    source_root: str = typer.Option(None, "--source", help="The upstream of a draft mirror."),
    mirror_type: str = typer.Option("conda", "--type", help="The draft mirror's type."),
    mirror_mode: str = typer.Option("passive", "--mode", help="The draft mirror's mode."),
    filters: str = typer.Option(None, help="The draft mirror's filters as JSON."),
    channel_filters: str = typer.Option(
        None, "--channel-filters", help="Try these channel filters instead of the channel's."
    ),
    show: str = typer.Option("dropped", help="Which files to list: all, taken or dropped."),
    reason: str = typer.Option(None, help="List only files dropped for this reason."),
    limit: int = typer.Option(20, help="How many files to list."),
    as_json: bool = JsonOption,
) -> None:
    """What a mirror would take and drop, and why, reading only the upstream's metadata."""
    query = {"show": show, "reason": reason, "limit": limit}
    draft_channel_filters = parse_json_option(channel_filters, "--channel-filters")
    with Client() as client:
        if mirror_id is not None:
            body: dict[str, Any] | None = (
                {"channel_filters": draft_channel_filters}
                if draft_channel_filters is not None
                else None
            )
            path = f"{mirror_path(channel, mirror_id)}/preview"
        else:
            body = {
                "source_root": source_root,
                "mirror_type": mirror_type,
                "mirror_mode": mirror_mode,
                "filters": parse_json_option(filters, "--filters"),
                "channel_filters": draft_channel_filters,
            }
            path = f"{channel_path(channel)}/mirrors/preview"
        params = {key: value for key, value in query.items() if value is not None}
        result = client.post(path, body, params=params)
    if as_json:
        print_json(result)
        return
    _print_preview(result, show)


def _print_preview(result: dict[str, Any], show: str) -> None:
    counts = result["counts"]
    console.print(
        f"{counts['seen']} records upstream: {counts['taken']} taken, {counts['dropped']} dropped",
        highlight=False,
    )
    for reason_name, count in sorted(counts["by_reason"].items()):
        console.print(f"  dropped by {reason_name}: {count}", highlight=False)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    print_table(
        "By subdir",
        ["subdir", "seen", "taken", "dropped", "reasons"],
        [
            [
                s["subdir"] + (" (missing upstream)" if s["missing"] else ""),
                s["seen"],
                s["taken"],
                s["dropped"],
                ", ".join(f"{k}: {v}" for k, v in sorted(s["by_reason"].items())),
            ]
            for s in result["subdirs"]
        ],
    )
    files = result["files"]
    print_table(
        f"Files ({show}, {len(files['items'])} of {files['total_count']})",
        ["subdir", "file", "license", "taken", "why"],
        [
            [f["subdir"], f["filename"], f["license"], "yes" if f["taken"] else "no", f["detail"]]
            for f in files["items"]
        ],
    )


@app.command()
@reports_errors
def stop(channel: str, mirror_id: int) -> None:
    """Stop the mirror's pending or running run."""
    with Client() as client:
        stopped = client.post(f"{mirror_path(channel, mirror_id)}/stop")
    state = "stopped" if stopped["state"] == "failed" else "will stop at its next heartbeat"
    console.print(f"run #{stopped['id']} {state}")


@app.command()
@reports_errors
def runs(
    channel: str,
    mirror_id: int,
    limit: int = typer.Option(20),
    as_json: bool = JsonOption,
) -> None:
    """The mirror's history, newest first."""
    with Client() as client:
        items = client.get(f"{mirror_path(channel, mirror_id)}/runs", limit=limit)["items"]
    if as_json:
        print_json(items)
        return
    print_table(
        f"Runs of {channel}/{mirror_id}",
        [
            "id",
            "state",
            "step",
            "started",
            "finished",
            "seen",
            "added",
            "removed",
            "excluded",
            "error",
        ],
        [
            [
                r["id"],
                shown_state(r),
                r["step"],
                r["started_at"],
                r["finished_at"],
                r["counters"]["seen"],
                r["counters"]["added"],
                r["counters"]["removed"],
                r["counters"]["excluded"],
                r["error"],
            ]
            for r in items
        ],
    )
