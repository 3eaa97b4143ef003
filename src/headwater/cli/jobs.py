"""`headwater job ...`: the runs of every job of the deployment, and running one now."""

from __future__ import annotations

from typing import Any

import typer

from headwater.cli.client import Client
from headwater.cli.output import (
    JsonOption,
    console,
    print_json,
    print_table,
    reports_errors,
    size,
)
from headwater.cli.runs import follow, print_progress

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@reports_errors
def list_jobs(
    kind: str = typer.Option(
        None, help="Only this kind: mirror, cve-refresh, revision-prune or blob-collect."
    ),
    limit: int = typer.Option(50, min=1, max=1000, help="How many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """The newest runs of every job of the deployment (administrators)."""
    params = {"limit": limit} | ({"kind": kind} if kind else {})
    with Client() as client:
        items = client.get("/api/jobs", **params)["items"]
    if as_json:
        print_json(items)
        return
    print_table(
        "Jobs",
        ["run", "kind", "state", "trigger", "queued", "finished", "step or error"],
        [
            [
                f"#{job['id']}",
                job["kind"] + (f" (mirror {job['mirror_id']})" if job["mirror_id"] else ""),
                job["state"],
                job["trigger"],
                job["created_at"],
                job["finished_at"] or "",
                job["error"] or job["step"],
            ]
            for job in items
        ],
    )


@app.command()
@reports_errors
def show(run_id: int, as_json: bool = JsonOption) -> None:
    """One run of any job, with its log."""
    with Client() as client:
        detail = client.get(f"/api/jobs/{run_id}")
    if as_json:
        print_json(detail)
        return
    print_job(detail)


@app.command("run")
@reports_errors
def run_job(
    kind: str = typer.Argument(
        ..., help="The job: revision-prune, blob-collect, or cve-refresh when feeds are set."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="Follow the run until it ends; exit 1 if it fails."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run one of the deployment's jobs now, as its schedule would (administrators); refused
    while one is under way."""
    with Client() as client:
        queued = client.post("/api/jobs", {"kind": kind})
        if not wait:
            if as_json:
                print_json(queued)
            else:
                console.print(f"queued {queued['kind']} run #{queued['id']}", highlight=False)
            return
        detail = follow(client, f"/api/jobs/{queued['id']}", quiet=as_json)
    if as_json:
        print_json(detail)
    else:
        print_job(detail)
    if detail["state"] == "failed":
        raise typer.Exit(1)


def print_job(detail: dict[str, Any]) -> None:
    """A run of any job: its state, progress, error, report and log."""
    console.print(
        f"run #{detail['id']} ({detail['kind']}): [bold]{detail['state']}[/bold] "
        f"({detail['step']})",
        highlight=False,
    )
    if detail["state"] == "running" and detail.get("progress"):
        print_progress(detail["progress"])
    if detail["error"]:
        console.print(f"error: {detail['error']}", style="red", highlight=False, markup=False)
    print_job_report(detail.get("report"))
    for line in detail["log"]:
        console.print(
            f"  {line['at'][11:19]} {line['level']:7} {line['message']}",
            highlight=False,
            markup=False,
        )


def print_job_report(report: dict[str, Any] | None) -> None:
    """What a job's run reported: a garbage collection, what it listed, deleted, reclaimed."""
    if not report:
        return
    collected = report.get("collected")
    if collected:
        console.print(
            f"collected: listed {collected['listed']} blobs ({collected['adopted']} found "
            f"without a record), deleted {collected['deleted']}, reclaimed "
            f"{size(collected['bytes_deleted'])}; {collected['kept_in_grace']} unreferenced "
            "still in their grace period",
            highlight=False,
            markup=False,
        )
    for key, value in report.items():
        if key != "collected":
            console.print(f"{key}: {value}", highlight=False, markup=False)
