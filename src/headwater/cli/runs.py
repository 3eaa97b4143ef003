"""`headwater run ...`"""

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
    for line in detail.get("log", []):
        console.print(
            f"  {line['at'][11:19]} {line['level']:7} {line['message']}",
            highlight=False,
            markup=False,
        )
