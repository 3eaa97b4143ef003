"""Administrators' pages: users (created, disabled, made administrators), the audit log, the
jobs of the deployment, and the blob store's usage."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from headwater.errors import ConflictError, HeadwaterError, InvalidInputError
from headwater.models import JobKind
from headwater.params import Offset, RowId
from headwater.requires import Allowed, requires
from headwater.resources import deployment_jobs
from headwater.schemas.runs import Progress
from headwater.schemas.storage import StorageOut
from headwater.services import run_queue
from headwater.services import runs as run_service
from headwater.services.access import users
from headwater.services.access.audit import EVENT_SORTS, AuditQuery, list_events
from headwater.services.access.rules import Action
from headwater.services.jobs import run_job_now
from headwater.services.runs import JOB_SORTS, list_jobs
from headwater.services.runs import stop_job as stop_job_run
from headwater.web.listing import PAGE_SIZE, Sort, sorting
from headwater.web.session import redirect, render, resources_of, safe_target, submitted

router = APIRouter(include_in_schema=False)


def _users_page(
    request: Request,
    allowed: Allowed,
    *,
    error: str | None = None,
    offset: int = 0,
    sort: Sort = Sort("username"),
    status_code: int = 200,
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        found, total = users.list_users(session, offset=offset, limit=PAGE_SIZE, sort=sort)
    context = {
        "users": found,
        "total": total,
        "error": error,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
    }
    return render(
        request, "admin/users.html", context, identity=allowed.identity, status_code=status_code
    )


@router.get("/admin/users")
def users_page(
    request: Request,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*users.USER_SORTS, default="username")),
    allowed: Allowed = requires(Action.administer_users),
) -> HTMLResponse:
    return _users_page(request, allowed, offset=offset, sort=sort)


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
    sort: Sort = Depends(sorting(*EVENT_SORTS, default="-when")),
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
        events, total = list_events(session, query, offset=offset, limit=PAGE_SIZE, sort=sort)
    filters = {"actor": actor, "action": action, "target": target, "since": since, "until": until}
    shown = {key: value for key, value in filters.items() if value}
    context: dict[str, Any] = {
        "events": events,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
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
    sort: Sort = Depends(sorting(*JOB_SORTS, default="-created")),
    allowed: Allowed = requires(Action.read_jobs),
) -> HTMLResponse:
    chosen = JobKind(kind) if kind in set(JobKind) else None
    with resources_of(request).db.reading() as session:
        jobs, total = list_jobs(session, kind=chosen, offset=offset, limit=PAGE_SIZE, sort=sort)
        reasons = run_queue.pending_reasons(session, jobs)
    context: dict[str, Any] = {
        "jobs": jobs,
        "reasons": reasons,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
        "kinds": list(JobKind),
        "kind": chosen,
        "runnable": [job.kind for job in deployment_jobs(resources_of(request).settings)],
    }
    return render(request, "admin/jobs.html", context, identity=allowed.identity)


@router.post("/admin/jobs")
def run_job(request: Request, allowed: Allowed = requires(Action.run_jobs)) -> Response:
    """Run one of the deployment's jobs now (the jobs page's Run now, the storage page's
    Collect garbage now), as POST /api/jobs does; while one is under way, the page says so."""
    form = submitted(request)
    back = safe_target(form.get("back"), "/admin/jobs")
    kind = str(form.get("kind", ""))
    resources = resources_of(request)
    jobs = {job.kind: job.params for job in deployment_jobs(resources.settings)}
    try:
        with resources.db.writing() as session:
            run_id = run_job_now(session, jobs, kind, actor=allowed.actor).id
    except ConflictError as error:
        return redirect(back, f"Not queued: {error.message}.")
    return redirect(back, f"Queued {kind} run #{run_id}.")


@router.get("/admin/jobs/{run_id}")
def job_page(
    request: Request, run_id: RowId, allowed: Allowed = requires(Action.read_jobs)
) -> HTMLResponse:
    """A run of any job: its progress, what it reported (a collection: what it deleted and
    reclaimed), and its log."""
    with resources_of(request).db.reading() as session:
        run = run_service.get_run(session, run_id)
        context: dict[str, Any] = {
            "run": run,
            "progress": Progress.of(run),
            "log": run_service.run_log(session, run.id),
            "report": run.report or {},
            "pending_reason": run_queue.pending_reason(session, run),
        }
    return render(request, "admin/job.html", context, identity=allowed.identity)


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


@router.get("/admin/storage")
def storage_page(
    request: Request, allowed: Allowed = requires(Action.read_storage)
) -> HTMLResponse:
    """The blob store's usage, per channel and mirror, the last garbage collection, and a
    button that queues one."""
    resources = resources_of(request)
    with resources.db.reading() as session:
        storage = StorageOut.read(
            session, resources.store.backend, resources.settings.gc_grace_hours
        )
    context = {"storage": storage, "collect": JobKind.blob_collect.value}
    return render(request, "admin/storage.html", context, identity=allowed.identity)
