"""What load balancers and Prometheus ask: /healthz (the process answers), /readyz (its
database and blob store answer too) and /metrics.

They sit outside /api and read no user credential: a prober has none, and deciding who asks
would itself need the database that /readyz is checking. /metrics asks for the
`metrics_token`, when one is set, as a bearer token.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from headwater.db import Database
from headwater.metrics import bearer_matches, exposition
from headwater.settings import Settings
from headwater.storage import BlobStore

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Liveness: answered on the event loop, nothing else asked."""
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when every dependency answered within the timeout, else 503 naming
    which did not and why."""
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.check()
    ready = all(check.ok for check in checks.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {name: check.as_json() for name, check in checks.items()},
    }
    return JSONResponse(body, status_code=200 if ready else 503, headers=_NO_STORE)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.resources.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not bearer_matches(request.headers.get("Authorization"), token):
        return JSONResponse(
            {"detail": "send the metrics token as Authorization: Bearer"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"', **_NO_STORE},
        )
    body, media_type = await run_in_threadpool(exposition, request.app.state.metrics)
    return Response(body, media_type=media_type, headers=_NO_STORE)


# --- readiness -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    ok: bool
    seconds: float
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {"ok": self.ok, "seconds": round(self.seconds, 3)}
        if self.error is not None:
            answer["error"] = self.error
        return answer


class Readiness:
    """Each dependency's check runs in a thread for at most `timeout` seconds. A check still
    running when the next probe comes (a database that hangs) is not started again, so a
    stuck dependency holds one thread, not one per probe."""

    def __init__(self, checks: dict[str, Callable[[], object]], timeout: float, secrets: Redactor):
        self.checks = checks
        self.timeout = timeout
        self.secrets = secrets
        self._running: dict[str, tuple[asyncio.Future[object], float]] = {}

    async def check(self) -> dict[str, Check]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._check(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _check(self, name: str) -> Check:
        started = time.monotonic()
        running = self._running.get(name)
        if running is not None and not running[0].done():
            waited = started - running[1]
            return Check(False, 0.0, f"still checking since a probe {waited:.0f} s ago")
        future = asyncio.ensure_future(asyncio.to_thread(self.checks[name]))
        future.add_done_callback(_consume)
        self._running[name] = (future, started)
        try:
            await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except Exception as error:
            if future.done():  # the check's own error (a socket's timeout among them)
                problem = self.secrets(_describe(error))
            else:
                problem = f"did not answer within {self.timeout:g} s"
            log.warning("readiness: %s: %s", name, problem)
            return Check(False, time.monotonic() - started, problem)
        return Check(True, time.monotonic() - started)


def readiness(settings: Settings, db: Database, store: BlobStore) -> Readiness:
    return Readiness(
        {"database": lambda: _select_one(db), "blob_store": store.check},
        settings.readiness_timeout,
        Redactor.of(settings),
    )


def _select_one(db: Database) -> None:
    with db.reading() as session:
        session.execute(text("SELECT 1"))


def _consume(future: asyncio.Future[object]) -> None:
    """A check that outlived its probe ends unobserved; its error was the probe's answer."""
    if not future.cancelled():
        future.exception()


def _describe(error: BaseException) -> str:
    """The error's kind and the first line of its message: SQLAlchemy's wrapper is replaced by
    the driver's error, whose message names the problem without the statement."""
    error = getattr(error, "orig", None) or error
    lines = str(error).strip().splitlines()
    message = lines[0].strip() if lines else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_SECRET_FIELD = re.compile(r"password|secret|token|access_key", re.IGNORECASE)
_LONGEST = 300


@dataclass(frozen=True)
class Redactor:
    """Keeps the settings' secrets, and credentials written into URLs, out of what anonymous
    probers read."""

    secrets: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> Redactor:
        found = []
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, str) and value and _SECRET_FIELD.search(name):
                found.append(value)
        password = make_url(settings.resolved_database_url).password
        if password:
            found.append(str(password))
        return cls(tuple(sorted(set(found), key=len, reverse=True)))

    def __call__(self, message: str) -> str:
        for secret in self.secrets:
            message = message.replace(secret, "***")
        message = _USERINFO.sub(r"\g<scheme>***@", message)
        return message if len(message) <= _LONGEST else message[: _LONGEST - 1] + "…"
