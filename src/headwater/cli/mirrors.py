"""`headwater mirror ...`"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn

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
    upstream_policy,
    writing,
)
from headwater.cli.runs import print_run, run_detail
from headwater.filters import parse_filter_set
from headwater.models import RunTrigger
from headwater.schemas.mirrors import MirrorOut, MirrorSaved
from headwater.schemas.previews import PreviewOut
from headwater.schemas.runs import RunOut
from headwater.services import mirrors as mirror_service
from headwater.services import runs as run_service
from headwater.services.preview import PreviewQuery, preview_mirror

app = typer.Typer(no_args_is_help=True)


def _mirror_out(channel: str, mirror_id: int) -> MirrorOut:
    with database().reading() as session:
        mirror = mirror_service.get_mirror(session, channel, mirror_id)
        latest = run_service.latest_runs(session, [mirror.id]).get(mirror.id)
        return MirrorOut.of(mirror, channel, latest)


def _print_saved(channel: str, change: mirror_service.MirrorChange, as_json: bool) -> None:
    asyncio.run(mirror_service.check_projects(change, upstream_policy()))
    out = _mirror_out(channel, change.mirror.id)
    run = RunOut.of(change.run, change.mirror.mirror_name) if change.run else None
    saved = MirrorSaved(**out.model_dump(), warnings=change.warnings, run=run)
    if as_json:
        print_json(saved)
        return
    _print_mirror(saved)
    for warning in change.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if run:
        console.print(f"queued run #{run.id}")


def _print_mirror(mirror: MirrorOut) -> None:
    for key, value in mirror.model_dump(exclude={"last_run"}).items():
        console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@app.command("list")
@reports_errors
def list_mirrors(
    channel: str = typer.Argument(None, help="A channel; every channel's mirrors when omitted."),
    as_json: bool = JsonOption,
) -> None:
    """List mirrors with their state, step, last and next run."""
    with database().reading() as session:
        if channel:
            rows = [(m, channel) for m in mirror_service.list_channel_mirrors(session, channel)]
        else:
            rows, _ = mirror_service.list_all_mirrors(session, offset=0, limit=100_000)
        latest = run_service.latest_runs(session, [mirror.id for mirror, _ in rows])
        items = [MirrorOut.of(mirror, name, latest.get(mirror.id)) for mirror, name in rows]
    if as_json:
        print_json(items)
        return
    print_table(
        "Mirrors",
        ["channel", "id", "name", "type", "mode", "source", "state", "step", "next run"],
        [
            [
                m.channel,
                m.id,
                m.mirror_name,
                m.mirror_type,
                m.mirror_mode,
                m.source_root,
                m.state or "never run",
                m.step,
                m.next_run_at,
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
    cron: str = typer.Option("0 0 * * *", help="When to run, five-field cron in UTC."),
    proxy: str = typer.Option(None, help="An http(s) or socks5 proxy for this upstream."),
    filters: str = typer.Option(
        None, help='Filters as JSON, e.g. \'{"subdirs": ["linux-64", "noarch"]}\'.'
    ),
    run_now: bool = typer.Option(False, "--run-now", help="Queue the first run at once."),
    as_json: bool = JsonOption,
) -> None:
    """Create a mirror of an upstream conda channel or PyPI simple index."""
    mirror_filters = parse_json_option(filters, "--filters")
    if projects:
        mirror_filters = {**(mirror_filters or {}), "projects": projects}
    fields: dict[str, Any] = {
        "mirror_name": mirror_name,
        "source_root": source_root,
        "mirror_type": mirror_type,
        "mirror_mode": mirror_mode,
        "cron": cron,
        "proxy": proxy,
        "filters": mirror_filters,
        "run_now": run_now,
    }
    with writing() as session:
        change = mirror_service.create_mirror(
            session,
            channel,
            fields,
            policy=upstream_policy(),
            requested_by=acting_user(),
            proxy_allowed=True,  # the CLI acts as the administrator
        )
    _print_saved(channel, change, as_json)


@app.command()
@reports_errors
def show(channel: str, mirror_id: int, as_json: bool = JsonOption) -> None:
    """Show one mirror."""
    mirror = _mirror_out(channel, mirror_id)
    if as_json:
        print_json(mirror)
    else:
        _print_mirror(mirror)


@app.command()
@reports_errors
def edit(
    channel: str,
    mirror_id: int,
    mirror_name: str = typer.Option(None, "--name"),
    source_root: str = typer.Option(None, "--source"),
    mirror_mode: str = typer.Option(None, "--mode"),
    cron: str = typer.Option(None),
    proxy: str = typer.Option(None, help="A proxy URL; an empty string removes it."),
    filters: str = typer.Option(
        None, help="Filters to merge as JSON; a key set to null removes it."
    ),
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
            "cron": cron,
        }.items()
        if value is not None
    }
    if proxy is not None:
        changes["proxy"] = proxy or None
    if filters is not None:
        changes["filters"] = parse_json_option(filters, "--filters")
    if run_now:
        changes["run_now"] = True
    with writing() as session:
        change = mirror_service.update_mirror(
            session,
            channel,
            mirror_id,
            changes,
            policy=upstream_policy(),
            requested_by=acting_user(),
            proxy_allowed=True,  # the CLI acts as the administrator
        )
    _print_saved(channel, change, as_json)


@app.command()
@reports_errors
def delete(channel: str, mirror_id: int, yes: bool = typer.Option(False, "--yes")) -> None:
    """Delete a mirror with its history; the files it brought leave the channel."""
    if not yes:
        typer.confirm(f"Delete mirror {mirror_id} of {channel}?", abort=True)
    store = blob_store()
    with writing() as session:
        mirror_service.delete_mirror(session, store, channel, mirror_id)
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
    with writing() as session:
        mirror = mirror_service.get_mirror(session, channel, mirror_id)
        queued = run_service.request_run(
            session, mirror, trigger=RunTrigger.manual, requested_by=acting_user()
        )
        session.flush()
        run_id = queued.id
    if not wait:
        if as_json:
            print_json(run_detail(run_id))
        else:
            console.print(f"queued run #{run_id}")
        return
    detail = _follow(run_id, quiet=as_json)
    if as_json:
        print_json(detail)
    else:
        print_run(detail)
    if detail.state == "failed":
        raise typer.Exit(1)


def _follow(run_id: int, *, quiet: bool) -> Any:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task("queued", total=None)
        while True:
            detail = run_detail(run_id)
            bar.update(
                task,
                description=f"{detail.state}: {detail.step}",
                completed=detail.progress.done,
                total=detail.progress.total or None,
            )
            if detail.state in ("completed", "failed"):
                return detail
            time.sleep(0.5)


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
    draft_channel_filters = parse_json_option(channel_filters, "--channel-filters")
    with database().reading() as session:
        if mirror_id is not None:
            request = mirror_service.preview_request(session, channel, mirror_id, conda_names())
            if draft_channel_filters is not None:
                request = replace(request, channel_filters=parse_filter_set(draft_channel_filters))
        else:
            request = mirror_service.draft_preview_request(
                session,
                channel,
                {
                    "source_root": source_root,
                    "mirror_type": mirror_type,
                    "mirror_mode": mirror_mode,
                    "filters": parse_json_option(filters, "--filters"),
                },
                policy=upstream_policy(),
                proxy_allowed=True,
                channel_filters=draft_channel_filters,
                cve_names=conda_names(),
            )
    query = PreviewQuery(show=show, reason=reason, limit=limit)  # type: ignore[arg-type]
    result = PreviewOut.of(request, asyncio.run(preview_mirror(request, upstream_policy(), query)))
    if as_json:
        print_json(result)
        return
    counts = result.counts
    console.print(
        f"{counts.seen} records upstream: {counts.taken} taken, {counts.dropped} dropped",
        highlight=False,
    )
    for reason_name, count in sorted(counts.by_reason.items()):
        console.print(f"  dropped by {reason_name}: {count}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    print_table(
        "By subdir",
        ["subdir", "seen", "taken", "dropped", "reasons"],
        [
            [
                s.subdir + (" (missing upstream)" if s.missing else ""),
                s.seen,
                s.taken,
                s.dropped,
                ", ".join(f"{k}: {v}" for k, v in sorted(s.by_reason.items())),
            ]
            for s in result.subdirs
        ],
    )
    print_table(
        f"Files ({show}, {len(result.files.items)} of {result.files.total_count})",
        ["subdir", "file", "license", "taken", "why"],
        [
            [f.subdir, f.filename, f.license, "yes" if f.taken else "no", f.detail]
            for f in result.files.items
        ],
    )


@app.command()
@reports_errors
def stop(channel: str, mirror_id: int) -> None:
    """Stop the mirror's pending or running run."""
    with writing() as session:
        mirror = mirror_service.get_mirror(session, channel, mirror_id)
        stopped = run_service.stop_run(session, mirror, stopped_by=acting_user())
        run_id, state = stopped.id, stopped.state
    console.print(
        f"run #{run_id} {'stopped' if state == 'failed' else 'will stop at its next heartbeat'}"
    )


@app.command()
@reports_errors
def runs(
    channel: str,
    mirror_id: int,
    limit: int = typer.Option(20),
    as_json: bool = JsonOption,
) -> None:
    """The mirror's history, newest first."""
    with database().reading() as session:
        mirror = mirror_service.get_mirror(session, channel, mirror_id)
        history, _ = run_service.list_runs(session, mirror_ids=[mirror.id], offset=0, limit=limit)
        items = [RunOut.of(run, mirror.mirror_name) for run in history]
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
                r.id,
                r.state,
                r.step,
                r.started_at,
                r.finished_at,
                r.counters.seen,
                r.counters.added,
                r.counters.removed,
                r.counters.excluded,
                r.error,
            ]
            for r in items
        ],
    )
