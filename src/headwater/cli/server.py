"""The commands that run on the server itself, on the database and blob store its settings
name: `serve`, `worker`, `scheduler`, `migrate`, `create-admin`, `rematch-cves`."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from functools import cache
from types import FrameType

import typer
import uvicorn
from rich.text import Text
from uvicorn.config import LOGGING_CONFIG

from headwater.cli.output import console, reports_errors
from headwater.logs import configure_logging
from headwater.metrics import DatabaseGauges, scrape_registry, serve_metrics
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

log = logging.getLogger("headwater")


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
    configure_logging(config.log_format, config.log_level)
    db, generated = bootstrap(config)
    db.dispose()  # the app opens its own; no connection is carried into a forked worker
    url = f"http://{config.host}:{config.port}/"
    _say(config, f"[bold]Headwater[/bold] is starting at [link={url}]{url}[/link]")
    if generated:
        _say(
            config,
            f"Sign in as [bold]{config.admin_user}[/bold] with the password "
            f"[bold]{generated}[/bold] (shown once; change it on your Account page, {url}account).",
        )
    elif config.admin_password:
        _say(config, f"Sign in as [bold]{config.admin_user}[/bold] with HEADWATER_ADMIN_PASSWORD.")
    else:
        _say(
            config,
            f"Sign in as [bold]{config.admin_user}[/bold] with the password printed at first start "
            f"(reset it with `headwater create-admin {config.admin_user}`).",
        )
    if config.server == "granian":
        _serve_on_granian(config)
        return
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        # JSON: uvicorn's loggers go to the one handler configure_logging set up, in its format.
        log_config=None if config.log_format == "json" else LOGGING_CONFIG,
        access_log=False,  # the app writes its own access lines (request_metrics.py)
        # Requests still open then (a slow preview) do not hold a stop or a restart.
        timeout_graceful_shutdown=30,
    )


def _serve_on_granian(config: Settings) -> None:
    """The app on Granian: one worker process, forked from this one after the database was
    migrated, which makes the app from the same settings (the environment carries this
    command's own options to it) and runs its lifespan, embedded worker and scheduler."""
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    os.environ["HEADWATER_EMBEDDED_WORKER"] = str(config.embedded_worker).lower()
    os.environ["HEADWATER_EMBEDDED_SCHEDULER"] = str(config.embedded_scheduler).lower()
    Server(
        "headwater.cli.server:granian_app",
        factory=True,
        address=config.host,
        port=config.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        websockets=False,
        log_level=LogLevels(config.log_level),
        log_dictconfig=_granian_logging(config),
        log_access=False,  # the app writes its own access lines (request_metrics.py)
        # Requests still open then (a slow preview) do not hold a stop or a restart.
        workers_kill_timeout=45,
    ).serve()


def granian_app() -> object:
    """The app, in Granian's worker process. The worker dies with its parent: `headwater
    serve` killed outright (SIGKILL, an OOM kill) cannot stop it, and an orphan would go on
    serving and running mirror runs. Killed too, it leaves what a killed single process
    leaves, which a restarted server finds and ends (the runs it had, its staging files)."""
    from headwater.app import create_app

    parent = os.getppid()

    def die_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=die_with_parent, name="parent-watch", daemon=True).start()
    return create_app()


def _granian_logging(config: Settings) -> dict[str, object]:
    """Granian's loggers into the one handler of configure_logging (the worker process is
    forked with it)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {"_granian": {"level": config.log_level.upper(), "propagate": True}},
    }


def worker() -> None:
    """Execute mirror runs from the queue until stopped (SIGTERM or Ctrl-C)."""
    config = settings()
    configure_logging(config.log_format, config.log_level)
    db, _ = bootstrap(config)
    runner = Worker(db, open_blob_store(config), http_policy(config), worker_config(config))
    _stop_on_signals(runner.shutdown)
    if config.worker_metrics_port is not None:
        token = config.metrics_token.get_secret_value() if config.metrics_token else None
        registry = scrape_registry(DatabaseGauges(db))
        serve_metrics(config.host, config.worker_metrics_port, registry, token)
        _say(config, f"metrics at http://{config.host}:{config.worker_metrics_port}/metrics")
    _say(config, f"worker {runner.worker_id} waiting for runs")
    runner.run_forever()


def scheduler() -> None:
    """Turn mirror schedules into pending runs, and refresh the CVE feeds, until stopped."""
    config = settings()
    configure_logging(config.log_format, config.log_level)
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


def _say(config: Settings, markup: str) -> None:
    """To the terminal, or, when logs are JSON, as a log line like any other."""
    if config.log_format == "json":
        log.info("%s", Text.from_markup(markup).plain)
    else:
        console.print(markup)


def _stop_on_signals(stop: object) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=stop, daemon=True).start()  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
