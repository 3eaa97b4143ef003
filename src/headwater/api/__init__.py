"""REST JSON for the UI, the CLI and scripts; errors come back as {"detail": "<sentence>"}."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from headwater.api import auth, channels, cves, mirrors, runs
from headwater.errors import HeadwaterError, NotAuthenticatedError

ROUTERS = (auth.router, channels.router, mirrors.router, runs.router, cves.router)


def describe_validation_errors(error: RequestValidationError) -> str:
    parts = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"] if part != "body")
        if problem["type"] == "extra_forbidden":
            parts.append(f"unknown field {location!r}")
        else:
            parts.append(f"{location or 'body'}: {problem['msg']}")
    return "; ".join(parts)


async def headwater_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HeadwaterError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, NotAuthenticatedError) else None
    return JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse(
        {"detail": describe_validation_errors(error), "errors": error.errors()},
        status_code=422,
    )


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, validation_error)
