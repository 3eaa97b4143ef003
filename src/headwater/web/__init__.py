"""Server-rendered pages: templates and assets are all served by Headwater (no CDN)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from headwater.errors import HeadwaterError, NotAuthenticatedError
from headwater.web import (
    account,
    admin,
    auth,
    channels,
    cves,
    dashboard,
    mirrors,
    organizations,
    runs,
)
from headwater.web.session import browser_identity, prove_form, render

STATIC = Path(__file__).parent / "static"
PAGES = (auth, dashboard, account, channels, cves, mirrors, runs, organizations, admin)


def error_page(request: Request, error: Exception) -> Response:
    """A refusal as a page: signing in first, for someone who is not signed in (what the API
    answers 401); else the reason."""
    assert isinstance(error, HeadwaterError)
    if isinstance(error, NotAuthenticatedError) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
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
    for module in PAGES:
        app.include_router(module.router, dependencies=[Depends(prove_form)])
