"""What every CLI command shares: settings, the database, the blob store, output, and errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, wraps
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from headwater.cves.names import CondaNames
from headwater.db import Database
from headwater.errors import HeadwaterError
from headwater.resources import cve_names, http_policy, open_blob_store, open_database
from headwater.settings import Settings
from headwater.storage import BlobStore
from headwater.upstreams.http import HttpPolicy

console = Console()
errors = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")

JsonOption = typer.Option(False, "--json", help="Print JSON, as the REST API would.")


@cache
def settings() -> Settings:
    return Settings()


@cache
def database() -> Database:
    return open_database(settings())


@cache
def blob_store() -> BlobStore:
    return open_blob_store(settings())


@cache
def upstream_policy() -> HttpPolicy:
    """What the CLI may reach: the same policy as the server's."""
    return http_policy(settings())


@cache
def conda_names() -> CondaNames:
    """The conda-to-PyPI names CVE matching uses, from the settings."""
    return cve_names(settings())


def acting_user() -> str:
    """Who the CLI acts as, for `owner` and `requested_by`: the administrator setting."""
    return settings().admin_user


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn Headwater's errors into one red line and exit status 1, not a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except HeadwaterError as error:
            errors.print(f"[red]error:[/red] {error.message}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, Sequence):
        text = json.dumps([item.model_dump(mode="json") for item in value], indent=2)
    else:
        text = json.dumps(value, indent=2, default=str)
    sys.stdout.write(text + "\n")


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)


def parse_json_option(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise HeadwaterError(f"{what} is not valid JSON: {error}") from None


@contextmanager
def writing() -> Iterator[Any]:
    with database().writing() as session:
        yield session
