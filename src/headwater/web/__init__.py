"""Server-rendered pages: templates and assets are all served by Headwater (no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from headwater.errors import HeadwaterError
from headwater.web import auth, channels, cves, mirrors, runs
from headwater.web.session import SignInRequired, browser_identity, render

STATIC = Path(__file__).parent / "static"


async def _sign_in_required(request: Request, error: Exception) -> RedirectResponse:
    assert isinstance(error, SignInRequired)
    return RedirectResponse(f"/login?next={error.next_url}", status_code=303)


def error_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, HeadwaterError)
    titles = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    context = {
        "status_code": error.status_code,
        "title": titles.get(error.status_code, "Something is wrong"),
        "message": error.message,
    }
    return render(
        request,
        "error.html",
        context,
        identity=browser_identity(request),
        status_code=error.status_code,
    )


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, channels, cves, mirrors, runs):
        app.include_router(module.router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
