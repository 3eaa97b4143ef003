"""REST JSON for the UI, the CLI and scripts; errors come back as {"detail": "<sentence>"}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from headwater.api import (
    account,
    audit,
    auth,
    channels,
    cves,
    jobs,
    mirrors,
    organizations,
    revisions,
    runs,
    storage,
    users,
)
from headwater.errors import (
    HeadwaterError,
    NotAuthenticatedError,
    TooManyRequestsError,
    UnavailableError,
)

ROUTERS = (
    auth.router,
    account.router,
    channels.router,
    mirrors.router,
    runs.router,
    cves.router,
    users.router,
    organizations.router,
    audit.router,
    jobs.router,
    revisions.router,
    storage.router,
)


def describe_validation_errors(error: RequestValidationError) -> str:
    parts = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"] if part != "body")
        if problem["type"] == "extra_forbidden":
            parts.append(f"unknown field {location!r}")
        elif problem["type"] == "json_invalid":
            reason = problem.get("ctx", {}).get("error", "")
            parts.append(f"the body is not valid JSON: {reason}".rstrip(": "))
        else:
            parts.append(f"{location or 'body'}: {problem['msg']}")
    return "; ".join(parts)


def _plain(problem: dict[str, Any]) -> dict[str, Any]:
    """A validation problem without the input that caused it, which may not even be JSON
    (bytes, infinity) and is the caller's own anyway."""
    return {
        "loc": [part if isinstance(part, int) else str(part) for part in problem["loc"]],
        "msg": str(problem["msg"]),
        "type": str(problem["type"]),
    }


def _body_is_not_json(problems: list[dict[str, Any]]) -> bool:
    return any(
        tuple(problem["loc"]) == ("body",) and isinstance(problem.get("input"), bytes)
        for problem in problems
    )


async def headwater_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HeadwaterError)
    return JSONResponse(
        {"detail": error.message},
        status_code=error.status_code,
        headers=error_headers(error, request.url.path),
    )


def error_headers(error: HeadwaterError, path: str) -> dict[str, str] | None:
    if isinstance(error, NotAuthenticatedError):
        # Package managers (pip, uv, conda, twine) answer a Basic challenge with the
        # credentials they hold for the index; scripts and the CLI send bearer tokens.
        scheme = "Basic" if path.startswith("/api/repo/") else "Bearer"
        return {"WWW-Authenticate": f'{scheme} realm="headwater"'}
    if isinstance(error, TooManyRequestsError | UnavailableError):
        return {"Retry-After": str(error.retry_after)}
    return None


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """Every 4xx of the API has one shape: {"detail": "<sentence>"}, and for a body that did
    not validate, "errors" saying where."""
    assert isinstance(error, RequestValidationError)
    problems = list(error.errors())
    if _body_is_not_json(problems):
        return JSONResponse(
            {"detail": "send the body as JSON, with Content-Type: application/json"},
            status_code=415,
        )
    return JSONResponse(
        {"detail": describe_validation_errors(error), "errors": [_plain(p) for p in problems]},
        status_code=422,
    )


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: the caller hears that it was Headwater's fault, the log has the traceback."""
    return JSONResponse(
        {"detail": "internal error; the server's log says what went wrong"}, status_code=500
    )


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
