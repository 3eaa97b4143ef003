"""The Account page: who you are, your tokens (made, shown once, revoked), your password."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from headwater.errors import HeadwaterError, InvalidInputError
from headwater.models import UserSource
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.services.access import accounts
from headwater.services.access.rules import Action, Scope
from headwater.services.access.tokens import list_tokens
from headwater.web.session import redirect, render, resources_of, set_session, submitted

router = APIRouter(include_in_schema=False)


def _account_page(
    request: Request,
    allowed: Allowed,
    *,
    created: str | None = None,
    error: str | None = None,
    password_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    identity = allowed.user
    with resources_of(request).db.reading() as session:
        found = accounts.account(session, identity)
        tokens = list_tokens(session, identity.user_id)
        names = accounts.channel_names(session, tokens)
    context: dict[str, Any] = {
        "account": found,
        "local": found.user.source == UserSource.local,
        "tokens": tokens,
        "channel_names": names,
        "current_token": identity.token_id,
        "scopes": [scope.value for scope in Scope],
        "created": created,
        "error": error,
        "password_error": password_error,
        "default_days": resources_of(request).settings.token_ttl_days,
        "max_days": resources_of(request).settings.max_token_days,
    }
    return render(
        request, "account/account.html", context, identity=identity, status_code=status_code
    )


@router.get("/account")
def account_page(
    request: Request, allowed: Allowed = requires(Action.manage_account)
) -> HTMLResponse:
    return _account_page(request, allowed)


def _expiry(days: str) -> dt.datetime | None:
    if not days.strip():
        return None
    try:
        count = int(days)
    except ValueError:
        raise InvalidInputError(f"days {days!r} is not a whole number") from None
    if count < 1:
        raise InvalidInputError("a token lasts at least one day")
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=min(count, 100_000))


def _resources(form_value: str) -> list[tuple[str, str]] | None:
    """`channel:role` pairs separated by commas or spaces, as the form takes them."""
    pairs = [part for part in form_value.replace(",", " ").split() if part]
    if not pairs:
        return None
    resources = []
    for pair in pairs:
        channel, _, role = pair.partition(":")
        resources.append((channel, role or "read"))
    return resources


@router.post("/account/tokens")
def create_token(request: Request, allowed: Allowed = requires(Action.manage_account)) -> Response:
    """Make a personal token; the page shows it this once."""
    form = submitted(request)
    settings = resources_of(request).settings
    try:
        with resources_of(request).db.writing() as session:
            _, token = accounts.create_token(
                session,
                allowed.user,
                str(form.get("name", "")),
                _expiry(str(form.get("days", ""))),
                [str(scope) for scope in form.getlist("scopes")] or None,
                _resources(str(form.get("resources", ""))),
                actor=allowed.actor,
                default_days=settings.token_ttl_days,
                max_days=settings.max_token_days,
            )
    except HeadwaterError as error:
        return _account_page(request, allowed, error=error.message, status_code=error.status_code)
    return _account_page(request, allowed, created=token, status_code=201)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, token_id: RowId, allowed: Allowed = requires(Action.manage_account)
) -> Response:
    with resources_of(request).db.writing() as session:
        accounts.remove_token(session, allowed.user, token_id, actor=allowed.actor)
    if token_id == allowed.user.token_id:  # the browser's own session
        return redirect("/login", "Signed out: you revoked this session.")
    return redirect("/account", "Token revoked: it no longer works.")


@router.post("/account/password")
async def change_password(
    request: Request, allowed: Allowed = requires(Action.manage_account)
) -> Response:
    """A new password: every token and session of yours is revoked, this browser signed in
    anew."""
    form = submitted(request)
    resources = resources_of(request)
    current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))
    if new != str(form.get("repeat_password", "")):
        return await _password_refused(request, allowed, "the two new passwords differ")
    try:
        token = await resources.sign_in.change_password(
            resources.db,
            allowed.user,
            current,
            new,
            allowed.address,
            ttl_days=resources.settings.token_ttl_days,
        )
    except HeadwaterError as error:
        return await _password_refused(request, allowed, error.message, error.status_code)
    response = redirect("/account", "Password changed; your other sessions and tokens ended.")
    set_session(response, request, token, resources.settings.token_ttl_days)
    return response


async def _password_refused(
    request: Request, allowed: Allowed, message: str, status_code: int = 422
) -> HTMLResponse:
    return await run_in_threadpool(
        lambda: _account_page(request, allowed, password_error=message, status_code=status_code)
    )
