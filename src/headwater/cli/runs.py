"""`headwater run ...`: one run, with its counters, progress, dependency report and log; and
following a run (of a mirror or of any job) with a progress bar until it ends."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn

from headwater.cli.client import Client
from headwater.cli.output import JsonOption, console, duration, print_json, reports_errors, size

app = typer.Typer(no_args_is_help=True)


@app.command()
@reports_errors
def show(run_id: int, as_json: bool = JsonOption) -> None:
    """Show a run with its counters and log."""
    with Client() as client:
        detail = client.get(f"/api/runs/{run_id}")
    if as_json:
        print_json(detail)
        return
    print_run(detail)


@app.command()
@reports_errors
def watch(run_id: int, as_json: bool = JsonOption) -> None:
    """Follow a run with a progress bar (files, bytes, rate, time left) until it ends; exit 1
    if it fails."""
    with Client() as client:
        detail = follow(client, f"/api/runs/{run_id}", quiet=as_json)
    if as_json:
        print_json(detail)
    else:
        print_run(detail)
    if detail["state"] == "failed":
        raise typer.Exit(1)


def pace(progress: dict[str, Any]) -> list[str]:
    """A running step's rate and the time it has left, as far as they are known."""
    shown = []
    if progress.get("bytes_per_second"):
        shown.append(f"{size(round(progress['bytes_per_second']))}/s")
    if progress.get("eta_seconds") is not None:
        shown.append(f"{duration(progress['eta_seconds'])} left")
    return shown


def progress_line(run: dict[str, Any]) -> tuple[str, int, int | None, str]:
    """What the progress bar shows of a run: its state and step, the things done of the
    step's total (None: not counted), and the files and bytes it downloaded so far (a job's
    run: the step's bytes), with the rate and the time left."""
    progress, counters = run.get("progress") or {}, run.get("counters")
    moved = []
    if counters is not None:
        downloaded = size(counters["bytes"])
        if progress.get("bytes_total"):
            downloaded += f" of {size(progress['bytes_total'])}"
        moved.append(f"{counters['downloaded']} files, {downloaded}")
    elif progress.get("bytes_total"):
        moved.append(f"{size(progress['bytes_done'])} of {size(progress['bytes_total'])}")
    moved += pace(progress)
    total = progress.get("total") or None
    return f"{run['state']}: {run['step']}", progress.get("done", 0), total, ", ".join(moved)


def follow(client: Client, path: str, *, quiet: bool) -> dict[str, Any]:
    """Poll a run (`/api/runs/<id>`, `/api/jobs/<id>`) with a progress bar until it ends."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counted]}"),
        TextColumn("{task.fields[moved]}"),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task("queued", total=None, counted="", moved="")
        while True:
            detail: dict[str, Any] = client.get(path)
            description, done, total, moved = progress_line(detail)
            counted = f"{done}/{total}" if total else (f"{done}" if done else "")
            bar.update(
                task,
                description=description,
                completed=done,
                total=total,
                counted=counted,
                moved=moved,
            )
            if detail["state"] in ("completed", "failed"):
                return detail
            time.sleep(0.5)


def shown_state(run: dict[str, Any]) -> str:
    """A run's state, "completed with 2 warnings" when it left files out."""
    count = len(run.get("warnings") or ())
    if run["state"] != "completed" or not count:
        return str(run["state"])
    return f"completed with {count} warning{'s' if count != 1 else ''}"


def print_run(detail: dict[str, Any]) -> None:
    counters = detail["counters"]
    console.print(
        f"run #{detail['id']} of {detail['channel']}/{detail['mirror_name']}: "
        f"[bold]{shown_state(detail)}[/bold] ({detail['step']})",
        highlight=False,
    )
    console.print(
        f"seen {counters['seen']}, added {counters['added']}, removed {counters['removed']}, "
        f"unchanged {counters['unchanged']}, excluded {counters['excluded']}, downloaded "
        f"{counters['downloaded']} ({counters['bytes']} bytes)",
        highlight=False,
    )
    if detail["excluded_reasons"]:
        reasons = ", ".join(
            f"{reason}: {count}" for reason, count in detail["excluded_reasons"].items()
        )
        console.print(f"excluded by reason: {reasons}", highlight=False)
    if detail["state"] == "running":
        print_progress(detail["progress"])
    if detail["error"]:
        console.print(f"[red]error:[/red] {detail['error']}", highlight=False)
    for warning in detail.get("warnings") or ():
        console.print(f"[yellow]warning:[/yellow] {warning['message']}", highlight=False)
    if detail.get("report"):
        print_report(detail["report"])
    for line in detail.get("log", []):
        console.print(
            f"  {line['at'][11:19]} {line['level']:7} {line['message']}",
            highlight=False,
            markup=False,
        )


def print_progress(progress: dict[str, Any]) -> None:
    """A running step: things done of its total, its bytes, rate and time left."""
    shown = []
    if progress.get("total"):
        shown.append(f"{progress['done']}/{progress['total']}")
    if progress.get("bytes_total"):
        shown.append(f"{size(progress['bytes_done'])} of {size(progress['bytes_total'])}")
    shown += pace(progress)
    if shown:
        console.print(f"progress: {', '.join(shown)}", highlight=False, markup=False)


def _cause(cause: dict[str, Any]) -> str:
    shown = f" {cause['value']}" if cause.get("value") else ""
    return f"the {cause['level']}'s {cause['key']}{shown}"


def print_report(report: dict[str, Any]) -> None:
    """The run's dependency report: files taken as dependencies, broken packages by the filter
    that removed what they need, and the must_install solves."""
    taken = report.get("dependencies") or {}
    by_subdir = ", ".join(f"{k}: {v}" for k, v in sorted((taken.get("by_subdir") or {}).items()))
    console.print(
        f"taken as dependencies: {taken.get('taken', 0)} files"
        + (f" ({by_subdir})" if by_subdir else ""),
        highlight=False,
        markup=False,
    )
    for file in taken.get("files") or []:
        console.print(
            f"  {file['subdir']}/{file['filename']}: {file['reason']}",
            highlight=False,
            markup=False,
        )
    for note in report.get("notes") or []:
        console.print(f"note: {note}", highlight=False, markup=False)
    broken = report.get("broken") or {}
    if not report.get("checked"):
        console.print("dependencies not checked", highlight=False)
    elif not broken.get("total"):
        console.print("broken packages: none", highlight=False)
    else:
        console.print(f"broken packages: {broken['packages']}", highlight=False)
        for group in broken.get("groups") or []:
            causes = " and ".join(_cause(cause) for cause in group["causes"])
            why = f"removed by {causes}" if causes else "nothing upstream provides it"
            console.print(
                f"  {group['count']} need {group['dependency']}: {why}",
                highlight=False,
                markup=False,
            )
            for package in group["packages"]:
                console.print(
                    f"    {package['subdir']}/{package['filename']} needs {package['spec']!r}",
                    highlight=False,
                    markup=False,
                )
            more = group["count"] - len(group["packages"])
            if more > 0:
                console.print(f"    and {more} more", highlight=False)
    for solve in report.get("must_install") or []:
        state = "solves" if solve["solved"] else "cannot be solved"
        console.print(
            f"must_install on {solve['platform']} ({', '.join(solve['specs'])}): {state}"
            + (f": {solve['message']}" if solve.get("message") else ""),
            highlight=False,
            markup=False,
        )
        for cause in solve.get("causes") or []:
            console.print(f"  removed by {_cause(cause)}", highlight=False, markup=False)
