"""The commands that run on the server itself, on the database and blob store its settings
name: `serve`, `worker`, `scheduler`, `migrate`, `create-admin`, `rematch-cves`."""

from __future__ import annotations

import logging
import signal
import threading
from functools import cache
from types import FrameType

import typer
import uvicorn

from headwater.cli.output import console, reports_errors
from headwater.logs import keep_tokens_out_of_access_logs
from headwater.resources import (
    bootstrap,
    cve_names,
    deployment_jobs,
    http_policy,
    open_blob_store,
    open_database,
    worker_config,
)
from headwater.services.access import users
from headwater.services.access.audit import Actor
from headwater.services.cve_matching import match_everything
from headwater.settings import Settings
from headwater.worker.runner import Worker
from headwater.worker.scheduler import Scheduler


@cache
def settings() -> Settings:
    return Settings()


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
    app.command()(scheduler)
    app.command()(migrate)
    app.command("create-admin")(create_admin)
    app.command("rematch-cves")(rematch_cves)


def serve(
    host: str = typer.Option(
        None, help="Address to listen on (HEADWATER_HOST, default 127.0.0.1)."
    ),
    port: int = typer.Option(None, help="Port to listen on (HEADWATER_PORT, default 8000)."),
    worker: bool = typer.Option(True, help="Run one worker inside this process."),
    scheduler: bool = typer.Option(True, help="Run the scheduler inside this process."),
) -> None:
    """Serve the web UI, the REST API and the repositories."""
    from headwater.app import create_app

    config = settings().model_copy(
        update={
            "host": host or settings().host,
            "port": port or settings().port,
            "embedded_worker": worker and settings().embedded_worker,
            "embedded_scheduler": scheduler and settings().embedded_scheduler,
        }
    )
    _, generated = bootstrap(config)
    url = f"http://{config.host}:{config.port}/"
    console.print(f"[bold]Headwater[/bold] is starting at [link={url}]{url}[/link]")
    if generated:
        console.print(
            f"Sign in as [bold]{config.admin_user}[/bold] with the password "
            f"[bold]{generated}[/bold] (shown once; change it on your Account page, {url}account)."
        )
    elif config.admin_password:
        console.print(f"Sign in as [bold]{config.admin_user}[/bold] with HEADWATER_ADMIN_PASSWORD.")
    else:
        console.print(
            f"Sign in as [bold]{config.admin_user}[/bold] with the password printed at first start "
            f"(reset it with `headwater create-admin {config.admin_user}`)."
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    keep_tokens_out_of_access_logs()
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="info",
        access_log=config.access_log,
        # Requests still open then (a slow preview) do not hold a stop or a restart.
        timeout_graceful_shutdown=30,
    )


def worker() -> None:
    """Execute mirror runs from the queue until stopped (SIGTERM or Ctrl-C)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = settings()
    db, _ = bootstrap(config)
    runner = Worker(db, open_blob_store(config), http_policy(config), worker_config(config))
    _stop_on_signals(runner.shutdown)
    console.print(f"worker {runner.worker_id} waiting for runs")
    runner.run_forever()


def scheduler() -> None:
    """Turn mirror schedules into pending runs, and refresh the CVE feeds, until stopped."""
    config = settings()
    db, _ = bootstrap(config)
    loop = Scheduler(db, config.scheduler_interval, deployment_jobs(config))

    def stop() -> None:
        loop.shutdown()

    _stop_on_signals(stop)
    loop.run_forever()


def migrate() -> None:
    """On the server: create or upgrade the database schema, and the first administrator."""
    _, generated = bootstrap(settings())
    console.print("database is up to date")
    if generated:
        console.print(f"created administrator {settings().admin_user} with password {generated}")


@reports_errors
def create_admin(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """On the server: create an administrator, or make a user one with a new password."""
    actor = Actor.server("headwater create-admin")
    with open_database(settings()).writing() as session:
        found = users.find_user(session, username)
        if found is None:
            users.add_user(session, username, password, is_admin=True, actor=actor)
            console.print(f"created administrator {username}")
            return
        users.set_admin(session, username, True, actor=actor)
        users.set_password(session, username, password, actor=actor)
        users.set_disabled(session, username, False, actor=actor)
    console.print(f"{username} is an administrator with the new password")


@reports_errors
def rematch_cves() -> None:
    """On the server: match every file against the CVE database again."""
    config = settings()
    report = match_everything(open_database(config), cve_names(config))
    console.print(report.describe(), highlight=False)


def _stop_on_signals(stop: object) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=stop, daemon=True).start()  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
