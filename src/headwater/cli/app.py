"""The `headwater` command: a client of a Headwater server (after `headwater login`), and the
commands that run on the server itself (serve, worker, scheduler, migrate, create-admin)."""

from __future__ import annotations

import typer

from headwater.cli import (
    account,
    channels,
    cves,
    jobs,
    mirrors,
    organizations,
    runs,
    server,
    storage,
    users,
)

app = typer.Typer(
    help="Headwater: a package repository for conda and PyPI packages.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
account.register(app)
app.add_typer(channels.app, name="channel", help="Channels, their packages and roles.")
app.add_typer(mirrors.app, name="mirror", help="Mirrors of upstream channels, and their runs.")
app.add_typer(runs.app, name="run", help="One run of a mirror.")
app.add_typer(jobs.app, name="job", help="Runs of every job of the deployment (administrators).")
app.add_typer(cves.app, name="cve", help="The CVE database: import, list, curate.")
app.add_typer(users.app, name="user", help="Users (administrators).")
app.add_typer(
    storage.app,
    name="storage",
    help="The blob store's usage and garbage collection (administrators).",
)
app.add_typer(organizations.app, name="org", help="Organizations, their members and groups.")
