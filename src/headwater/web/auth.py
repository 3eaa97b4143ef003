"""Signing in and out: the password form (local and LDAP users) and OpenID Connect."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from headwater.credentials import SESSION_COOKIE
from headwater.errors import NotAuthenticatedError, NotFoundError, TooManyRequestsError
from headwater.models import UserSource
from headwater.requires import Allowed, requires
from headwater.services.access.oidc import PendingSignIn
from headwater.services.access.rules import Action
from headwater.services.access.sign_in import Vouched, provider_session
from headwater.services.access.tokens import end_session
from headwater.web.session import (
    redirect,
    render,
    resources_of,
    safe_target,
    secure_cookies,
    set_session,
    submitted,
)

router = APIRouter(include_in_schema=False)
PENDING_COOKIE = "headwater_oidc"
PENDING_PATH = "/auth/oidc"


def _next(value: object) -> str:
    return safe_target(value, "/channels")


@router.get("/login")
def login_page(
    request: Request, next: str | None = None, allowed: Allowed = requires(Action.anyone)
) -> HTMLResponse:
    context = {"next": _next(next), "error": None}
    return render(request, "auth/login.html", context, identity=None)


@router.post("/login")
async def login(request: Request, allowed: Allowed = requires(Action.anyone)) -> Response:
    form = submitted(request)
    username = str(form.get("username", ""))
    password = str(form.get("password", ""))
    target = _next(form.get("next"))
    resources = resources_of(request)
    try:
        token = await resources.sign_in.sign_in(
            resources.db,
            username,
            password,
            allowed.address,
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
    set_session(response, request, token, resources.settings.token_ttl_days)
    return response


@router.post("/logout")
async def logout(request: Request, allowed: Allowed = requires(Action.anyone)) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and allowed.identity is not None:
        db = resources_of(request).db

        def sign_out() -> None:
            with db.writing() as session:
                end_session(session, token)

        await run_in_threadpool(sign_out)
    response = redirect("/login", "Signed out.")
    response.delete_cookie(SESSION_COOKIE)
    return response


def _callback_url(request: Request) -> str:
    base = resources_of(request).settings.public_url or str(request.base_url)
    return base.rstrip("/") + f"{PENDING_PATH}/callback"


@router.get("/auth/oidc/start")
async def oidc_start(
    request: Request, next: str | None = None, allowed: Allowed = requires(Action.anyone)
) -> Response:
    """Off to the identity provider, with what the way back must prove kept in a cookie."""
    provider = resources_of(request).oidc
    if provider is None:
        raise NotFoundError("single sign-on is not set up on this server")
    try:
        url, pending = await provider.start(_callback_url(request), _next(next))
    except NotAuthenticatedError as error:
        return _sign_in_failed(request, error, _next(next))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        pending.encode(),
        max_age=600,
        path=PENDING_PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(request: Request, allowed: Allowed = requires(Action.anyone)) -> Response:
    """Back from the identity provider: the code exchanged, the user signed in with the groups
    the provider gave."""
    resources = resources_of(request)
    if resources.oidc is None:
        raise NotFoundError("single sign-on is not set up on this server")
    params = {key: value for key, value in request.query_params.items()}
    try:
        pending = PendingSignIn.decode(request.cookies.get(PENDING_COOKIE))
        user = await resources.oidc.finish(_callback_url(request), params, pending)
        vouched = Vouched(UserSource.oidc, user.subject, user.username, user.email, user.groups)
        ttl = resources.settings.token_ttl_days
        token = await run_in_threadpool(provider_session, resources.db, vouched, ttl_days=ttl)
    except NotAuthenticatedError as error:
        response = _sign_in_failed(request, error, "/channels")
        response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
        return response
    response = redirect(_next(pending.next_url))
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    set_session(response, request, token, resources.settings.token_ttl_days)
    return response


def _sign_in_failed(request: Request, error: NotAuthenticatedError, target: str) -> Response:
    context = {"next": target, "error": error.message}
    return render(request, "auth/login.html", context, identity=None, status_code=401)
