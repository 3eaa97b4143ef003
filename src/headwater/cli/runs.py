"""`headwater run ...`"""

from __future__ import annotations

import typer

from headwater.cli.context import JsonOption, console, database, print_json, reports_errors
from headwater.schemas.runs import RunDetail
from headwater.services import runs as run_service

app = typer.Typer(no_args_is_help=True)


def run_detail(run_id: int) -> RunDetail:
    with database().reading() as session:
        return RunDetail.describe(run_service.describe_run(session, run_id))


@app.command()
@reports_errors
def show(run_id: int, as_json: bool = JsonOption) -> None:
    """Show a run with its counters and log."""
    detail = run_detail(run_id)
    if as_json:
        print_json(detail)
        return
    print_run(detail)


def print_run(detail: RunDetail) -> None:
    counters = detail.counters
    console.print(
        f"run #{detail.id} of {detail.channel}/{detail.mirror_name}: [bold]{detail.state}[/bold] "
        f"({detail.step})",
        highlight=False,
    )
    console.print(
        f"seen {counters.seen}, added {counters.added}, removed {counters.removed}, "
        f"unchanged {counters.unchanged}, excluded {counters.excluded}, downloaded "
        f"{counters.downloaded} ({counters.bytes} bytes)",
        highlight=False,
    )
    if detail.excluded_reasons:
        reasons = ", ".join(
            f"{reason}: {count}" for reason, count in detail.excluded_reasons.items()
        )
        console.print(f"excluded by reason: {reasons}", highlight=False)
    if detail.error:
        console.print(f"[red]error:[/red] {detail.error}", highlight=False)
    for line in detail.log:
        console.print(
            f"  {line.at:%H:%M:%S} {line.level:7} {line.message}", highlight=False, markup=False
        )
