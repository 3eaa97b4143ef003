"""The `headwater` command: run the server or a worker, and manage channels and mirrors.

Management commands work on the database and blob store the settings name, the same ones the
server uses; they call the services directly, as the REST API does.
"""

from __future__ import annotations

import typer

from headwater.cli import channels, cves, mirrors, runs, server, users

app = typer.Typer(
    help="Headwater: a package repository for conda and PyPI packages.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
app.add_typer(channels.app, name="channel", help="Channels and their packages.")
app.add_typer(mirrors.app, name="mirror", help="Mirrors of upstream channels, and their runs.")
app.add_typer(runs.app, name="run", help="One run of a mirror.")
app.add_typer(users.app, name="user", help="Users who can sign in.")
app.add_typer(cves.app, name="cve", help="The CVE database: import, list, curate.")
