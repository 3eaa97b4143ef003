"""The browser's session: the token cookie, the CSRF value forms echo, flash messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from headwater.credentials import SESSION_COOKIE
from headwater.errors import InvalidInputError, PermissionDeniedError
from headwater.inputs import has_control_characters
from headwater.models import Channel
from headwater.resources import Resources
from headwater.services import access
from headwater.services.auth import Identity, csrf_token, identify

FLASH_COOKIE = "headwater_flash"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def resources_of(request: Request) -> Resources:
    return request.app.state.resources


def browser_identity(request: Request) -> Identity | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with resources_of(request).db.reading() as session:
        return identify(session, token)


def require_browser_identity(request: Request) -> Identity:
    identity = browser_identity(request)
    if identity is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(quote(target, safe=""))
    return identity


def managed(request: Request, name: str, identity: Identity) -> Channel:
    """The channel, if this user may change it (see services/access.py)."""
    with resources_of(request).db.reading() as session:
        return access.managed_channel(session, name, identity)


async def read_form(request: Request) -> FormData:
    """The submitted form; a field holding a control character (other than a line break or a
    tab) is refused, as no page asks for one and the database could not store a NUL."""
    form = await request.form(max_files=0, max_fields=500)
    for key, value in form.multi_items():
        text = value if isinstance(value, str) else ""
        if has_control_characters(key) or has_control_characters(text, multiline=True):
            raise InvalidInputError(f"the form's field {key!r} contains a control character")
    return form


def check_csrf(request: Request, form: Any) -> None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or form.get("csrf") != csrf_token(token):
        raise PermissionDeniedError("the form expired; reload the page and try again")


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    identity: Identity | None,
    status_code: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    flash = unquote(request.cookies.get(FLASH_COOKIE) or "") or None
    response = templates.TemplateResponse(
        request,
        template,
        {
            "identity": identity,
            "csrf": csrf_token(token) if token else "",
            "flash": flash,
            **context,
        },
        status_code=status_code,
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE)
    return response


def redirect(url: str, message: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, quote(message), max_age=60, httponly=True, samesite="lax")
    return response
