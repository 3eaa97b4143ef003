"""The browser's session: its cookie, the proof every form carries (CSRF), flash messages, and
rendering a page for whoever is signed in."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from headwater.credentials import (
    CSRF_FIELD,
    FORM_COOKIE,
    SAFE_METHODS,
    SESSION_COOKIE,
    form_proof,
    form_proven,
    request_token,
)
from headwater.errors import InvalidInputError, PermissionDeniedError
from headwater.inputs import has_control_characters
from headwater.resources import Resources
from headwater.services.access.identities import identify
from headwater.services.access.rules import Identity
from headwater.web.listing import with_query

FLASH_COOKIE = "headwater_flash"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["with_query"] = with_query


def resources_of(request: Request) -> Resources:
    return request.app.state.resources


def browser_identity(request: Request) -> Identity | None:
    """Who is signed in, for pages that show it whatever happened (the error page)."""
    token = request_token(request)
    if not token:
        return None
    with resources_of(request).db.reading() as session:
        return identify(session, token)


async def read_form(request: Request) -> FormData:
    """The submitted form; a field holding a control character (other than a line break or a
    tab) is refused, as no page asks for one and the database could not store a NUL."""
    form = await request.form(max_files=0, max_fields=500)
    for key, value in form.multi_items():
        text = value if isinstance(value, str) else ""
        if has_control_characters(key) or has_control_characters(text, multiline=True):
            raise InvalidInputError(f"the form's field {key!r} contains a control character")
    return form


async def prove_form(request: Request) -> None:
    """Every form the UI submits carries the proof its page was given (bound to the session,
    or before signing in to the form cookie): a form another site makes the browser send does
    not have it. Declared by the UI's router, so it runs before any page's own rule."""
    if request.method in SAFE_METHODS:
        return
    form = await read_form(request)
    if not form_proven(request, form.get(CSRF_FIELD)):
        raise PermissionDeniedError("the form expired; reload the page and try again")
    request.state.form_proven = True
    request.state.form = form


def submitted(request: Request) -> FormData:
    """The form of a page's POST, read and proven before the page's handler runs (so that
    handlers can be plain functions, run off the event loop)."""
    form: FormData = request.state.form
    return form


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure whenever the browser reached Headwater over TLS (behind a proxy,
    uvicorn takes the scheme from X-Forwarded-Proto when the proxy is trusted)."""
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, token: str, ttl_days: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl_days * 86400,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    identity: Identity | None,
    status_code: int = 200,
) -> HTMLResponse:
    flash = unquote(request.cookies.get(FLASH_COOKIE) or "") or None
    proof = form_proof(request)
    fresh = None
    if not proof:  # not signed in and no form cookie yet: the sign-in form needs one
        proof = fresh = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "identity": identity,
            "csrf": proof,
            "flash": flash,
            "oidc_label": _oidc_label(request),
            **context,
        },
        status_code=status_code,
    )
    if fresh:
        response.set_cookie(
            FORM_COOKIE, fresh, httponly=True, samesite="strict", secure=secure_cookies(request)
        )
    if flash:
        response.delete_cookie(FLASH_COOKIE)
    return response


def _oidc_label(request: Request) -> str | None:
    resources = resources_of(request)
    return resources.settings.oidc_label if resources.oidc is not None else None


def redirect(url: str, message: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, quote(message), max_age=60, httponly=True, samesite="lax")
    return response


def safe_target(value: object, default: str) -> str:
    """A place on this site to go back to: a path, never another site (`//host`, `/\\host`)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default
