"""Sign-in and sign-out pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from headwater.credentials import SESSION_COOKIE, client_address
from headwater.errors import NotAuthenticatedError, TooManyRequestsError
from headwater.services import auth
from headwater.web.session import browser_identity, read_form, redirect, render, resources_of

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/channels"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/channels", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(
        request, "auth/login.html", {"next": _safe_next(next), "error": None}, identity=None
    )


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    username = str(form.get("username", ""))
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    resources = resources_of(request)
    try:
        token = await resources.sign_in.sign_in(
            resources.db,
            username,
            password,
            client_address(request),
            ttl_days=resources.settings.token_ttl_days,
        )
    except (NotAuthenticatedError, TooManyRequestsError) as error:
        context = {"next": target, "error": error.message, "username": username}
        page = render(
            request, "auth/login.html", context, identity=None, status_code=error.status_code
        )
        if isinstance(error, TooManyRequestsError):
            page.headers["Retry-After"] = str(error.retry_after)
        return page
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=resources.settings.token_ttl_days * 86400,
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and browser_identity(request) is not None:
        with resources_of(request).db.writing() as session:
            auth.revoke_token(session, token)
    response = redirect("/login", "Signed out.")
    response.delete_cookie(SESSION_COOKIE)
    return response
