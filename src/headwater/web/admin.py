"""Administrators' pages: users (created, disabled, made administrators), the audit log, and
the jobs of the deployment."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from headwater.errors import HeadwaterError, InvalidInputError
from headwater.models import JobKind
from headwater.params import Offset, RowId
from headwater.requires import Allowed, requires
from headwater.services.access import users
from headwater.services.access.audit import AuditQuery, list_events
from headwater.services.access.rules import Action
from headwater.services.runs import list_jobs
from headwater.services.runs import stop_job as stop_job_run
from headwater.web.session import redirect, render, resources_of, submitted

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100


def _users_page(
    request: Request, allowed: Allowed, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        found, total = users.list_users(session, offset=0, limit=1000)
    context = {"users": found, "total": total, "error": error}
    return render(
        request, "admin/users.html", context, identity=allowed.identity, status_code=status_code
    )


@router.get("/admin/users")
def users_page(
    request: Request, allowed: Allowed = requires(Action.administer_users)
) -> HTMLResponse:
    return _users_page(request, allowed)


@router.post("/admin/users")
def create_user(request: Request, allowed: Allowed = requires(Action.administer_users)) -> Response:
    form = submitted(request)
    username = str(form.get("username", "")).strip()
    try:
        with resources_of(request).db.writing() as session:
            users.add_user(
                session,
                username,
                str(form.get("password", "")),
                is_admin=form.get("is_admin") == "on",
                actor=allowed.actor,
            )
    except HeadwaterError as error:
        return _users_page(request, allowed, error=error.message, status_code=error.status_code)
    return redirect("/admin/users", f"User {username} created.")


@router.post("/admin/users/{username}")
def change_user(
    request: Request, username: str, allowed: Allowed = requires(Action.administer_users)
) -> Response:
    """One change per button: disable, enable, make or unmake an administrator."""
    change = str(submitted(request).get("change", ""))
    try:
        with resources_of(request).db.writing() as session:
            if change in ("disable", "enable"):
                users.set_disabled(session, username, change == "disable", actor=allowed.actor)
            elif change in ("admin", "unadmin"):
                users.set_admin(session, username, change == "admin", actor=allowed.actor)
            else:
                raise InvalidInputError(f"{change!r} is not a change this page makes")
    except HeadwaterError as error:
        return _users_page(request, allowed, error=error.message, status_code=error.status_code)
    return redirect("/admin/users", f"{username}: {change} done.")


def _moment(text: str | None) -> dt.datetime | None:
    """A date or a date and time from the filter form, in UTC."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return moment


@router.get("/admin/audit")
def audit_page(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | None = None,
    until: str | None = None,
    offset: Offset = 0,
    allowed: Allowed = requires(Action.read_audit),
) -> HTMLResponse:
    query = AuditQuery(
        actor=actor or None,
        action=action or None,
        target=target or None,
        since=_moment(since),
        until=_moment(until),
    )
    with resources_of(request).db.reading() as session:
        events, total = list_events(session, query, offset=offset, limit=PAGE_SIZE)
    filters = {"actor": actor, "action": action, "target": target, "since": since, "until": until}
    shown = {key: value for key, value in filters.items() if value}
    context: dict[str, Any] = {
        "events": events,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "filters": filters,
        "export": "/api/audit/export" + ("?" + _query(shown) if shown else ""),
    }
    return render(request, "admin/audit.html", context, identity=allowed.identity)


def _query(values: dict[str, Any]) -> str:
    return urlencode(values)


@router.get("/admin/jobs")
def jobs_page(
    request: Request,
    kind: str | None = None,
    offset: Offset = 0,
    allowed: Allowed = requires(Action.read_jobs),
) -> HTMLResponse:
    chosen = JobKind(kind) if kind in set(JobKind) else None
    with resources_of(request).db.reading() as session:
        jobs, total = list_jobs(session, kind=chosen, offset=offset, limit=PAGE_SIZE)
    context: dict[str, Any] = {
        "jobs": jobs,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "kinds": list(JobKind),
        "kind": chosen,
    }
    return render(request, "admin/jobs.html", context, identity=allowed.identity)


@router.post("/admin/jobs/{run_id}/stop")
def stop_job(
    request: Request, run_id: RowId, allowed: Allowed = requires(Action.stop_jobs)
) -> Response:
    submitted(request)  # proven before the handler runs
    try:
        with resources_of(request).db.writing() as session:
            stop_job_run(session, run_id, actor=allowed.actor)
    except HeadwaterError as error:
        return redirect("/admin/jobs", error.message)
    return redirect("/admin/jobs", f"Stopping run #{run_id}.")
