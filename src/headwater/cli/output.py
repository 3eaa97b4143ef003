"""What every CLI command shares for output: the consoles, JSON and tables, and errors as one
red line with exit status 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from headwater.errors import HeadwaterError

console = Console()
errors = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")

JsonOption = typer.Option(False, "--json", help="Print JSON, as the REST API answers.")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn Headwater's errors (the server's answers included) into one red line and exit
    status 1, not a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except HeadwaterError as error:
            errors.print(f"[red]error:[/red] {error.message}", highlight=False, markup=True)
            raise typer.Exit(1) from None

    return wrapper


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)


def print_fields(document: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    for key, value in document.items():
        if key not in skip:
            console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


def parse_json_option(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise HeadwaterError(f"{what} is not valid JSON: {error}") from None


def size(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):.1f} {unit}"
    return f"{count} B"


def duration(seconds: float) -> str:
    """A time left as people read it: 42 s, 3 min 5 s, 2 h 10 min."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
