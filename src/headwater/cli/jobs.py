"""`headwater job ...`"""

from __future__ import annotations

import typer

from headwater.cli.client import Client
from headwater.cli.output import JsonOption, console, print_json, print_table, reports_errors

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@reports_errors
def list_jobs(
    kind: str = typer.Option(None, help="Only this kind: mirror or cve-refresh."),
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
    console.print(
        f"run #{detail['id']} ({detail['kind']}): [bold]{detail['state']}[/bold] "
        f"({detail['step']})",
        highlight=False,
    )
    if detail["error"]:
        console.print(f"[red]error:[/red] {detail['error']}", highlight=False, markup=False)
    for line in detail["log"]:
        console.print(
            f"  {line['at'][11:19]} {line['level']:7} {line['message']}",
            highlight=False,
            markup=False,
        )
