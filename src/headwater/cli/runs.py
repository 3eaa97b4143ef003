"""`headwater run ...`: one run, with its counters, dependency report and log."""

from __future__ import annotations

from typing import Any

import typer

from headwater.cli.client import Client
from headwater.cli.output import JsonOption, console, print_json, reports_errors

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


def print_run(detail: dict[str, Any]) -> None:
    counters = detail["counters"]
    console.print(
        f"run #{detail['id']} of {detail['channel']}/{detail['mirror_name']}: "
        f"[bold]{detail['state']}[/bold] ({detail['step']})",
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
    if detail["error"]:
        console.print(f"[red]error:[/red] {detail['error']}", highlight=False)
    if detail.get("report"):
        print_report(detail["report"])
    for line in detail.get("log", []):
        console.print(
            f"  {line['at'][11:19]} {line['level']:7} {line['message']}",
            highlight=False,
            markup=False,
        )


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
