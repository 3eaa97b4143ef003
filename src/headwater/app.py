"""create_app(settings): the ASGI application, its resources opened in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from headwater import __version__, api, probes, repo, web
from headwater.api import reference
from headwater.errors import HeadwaterError
from headwater.guards import BodyLimits, RequestGuard, SecurityHeaders
from headwater.logs import keep_tokens_out_of_access_logs
from headwater.metrics import DatabaseGauges, scrape_registry
from headwater.repo.fast_path import RepositoryFastPath
from headwater.request_metrics import RequestMetrics
from headwater.resources import (
    Resources,
    bootstrap,
    cve_names,
    deployment_jobs,
    http_policy,
    oidc_provider,
    open_blob_store,
    sign_in_guard,
    worker_config,
)
from headwater.services.passive import PassiveFetcher
from headwater.settings import Settings
from headwater.worker.runner import Worker
from headwater.worker.scheduler import Scheduler

log = logging.getLogger(__name__)
TOKEN_USE_INTERVAL = 30.0  # seconds between writes of the tokens' last use


class Background:
    """The scheduler and worker that `headwater serve` runs inside its own process."""

    def __init__(self, resources: Resources) -> None:
        settings = resources.settings
        self.services: list[Worker | Scheduler] = []
        if settings.embedded_scheduler:
            scheduler = Scheduler(
                resources.db, settings.scheduler_interval, deployment_jobs(settings)
            )
            self.services.append(scheduler)
        if settings.embedded_worker:
            self.services.append(
                Worker(
                    resources.db,
                    resources.store,
                    resources.policy,
                    worker_config(settings, resources.cve_names),
                )
            )
        self.threads = [
            threading.Thread(target=service.run_forever, name=type(service).__name__, daemon=True)
            for service in self.services
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        for service in self.services:
            service.shutdown()
        for thread in self.threads:
            thread.join(timeout=30)


class HeadwaterApp(FastAPI):
    """FastAPI's application with two layers in front of its own middleware: the count of
    every request with its access line (request_metrics.py), then the repository reads
    answered before the framework (repo/fast_path.py). A package manager's request that the
    fast path answers passes nothing else: no error or telemetry middleware, no routing."""

    def __init__(self, *, access_log: bool, **options: Any) -> None:
        super().__init__(**options)
        routed = super().__call__
        self.front = RequestMetrics(RepositoryFastPath(routed, self), self, access_log=access_log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.front(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keep_tokens_out_of_access_logs()  # whoever serves the app: uvicorn, gunicorn, tests
        db, generated = bootstrap(settings)
        if generated:
            log.warning("created administrator %r with password %s", settings.admin_user, generated)
        store = open_blob_store(settings)
        policy = http_policy(settings)
        resources = Resources(
            settings,
            db,
            store,
            policy,
            PassiveFetcher(store, policy, db),
            cve_names=cve_names(settings),
            sign_in=sign_in_guard(settings),
            oidc=oidc_provider(settings),
        )
        app.state.resources = resources
        app.state.readiness = probes.readiness(settings, db, store)
        app.state.metrics = scrape_registry(DatabaseGauges(db))
        background = Background(resources)
        background.start()
        token_uses = asyncio.create_task(_write_token_uses(resources))
        try:
            yield
        finally:
            token_uses.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await token_uses
            await run_in_threadpool(resources.token_uses.flush, db)
            background.stop()
            await resources.fetcher.close()
            if resources.oidc is not None:
                await resources.oidc.close()
            db.dispose()

    # The reference pages are Headwater's own (api/reference.py): FastAPI's load from a CDN.
    app = HeadwaterApp(
        access_log=settings.access_log,
        title="Headwater",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    api.install(app)
    reference.install(app)
    app.include_router(repo.router)
    app.include_router(probes.router)
    web.install(app)
    app.add_exception_handler(HeadwaterError, _error_for_audience)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        RequestGuard,
        limits=BodyLimits(
            request=settings.max_request_bytes,
            upload=settings.max_upload_bytes,
            imports=settings.max_import_bytes,
        ),
    )
    return app


async def _write_token_uses(resources: Resources) -> None:
    while True:
        await asyncio.sleep(TOKEN_USE_INTERVAL)
        try:
            await run_in_threadpool(resources.token_uses.flush, resources.db)
        except Exception:  # a busy database: they are written with the next batch
            log.exception("could not write when tokens were last used")


async def _error_for_audience(request: Request, error: Exception) -> Response:
    """JSON for the API and package managers, a page for people in the browser."""
    if request.url.path.startswith("/api/"):
        return await api.headwater_error(request, error)
    return web.error_page(request, error)
