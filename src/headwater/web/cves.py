"""CVE pages: a channel's CVEs tab, a file's CVEs, a CVE's page, and curation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from headwater.cves.scoring import BANDS, MatchStatus
from headwater.errors import NotFoundError
from headwater.models import Channel, PackageFile
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.services import cves as cve_service
from headwater.services.access.identities import channel_ids_where, channels_where
from headwater.services.access.rules import Action
from headwater.web.channels import channel_context
from headwater.web.session import redirect, render, resources_of, safe_target, submitted

router = APIRouter(include_in_schema=False)
STATUSES = [status.value for status in MatchStatus]


def _score(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


@router.get("/channels/{channel}/cves")
def channel_cves(
    request: Request,
    status: str | None = None,
    min_score: str | None = None,
    allowed: Allowed = requires(Action.read_channel),
) -> HTMLResponse:
    context = channel_context(request, allowed)
    channel = context["channel"]
    assert isinstance(channel, Channel)
    chosen = status if status in STATUSES else None
    with resources_of(request).db.reading() as session:
        summaries, total = cve_service.list_cves(
            session,
            channel_ids=[channel.id],
            status=chosen,
            min_score=_score(min_score),
            limit=500,
            matched_only=True,
        )
        by_severity = cve_service.channel_severity_counts(session, channel.id)
    context.update(
        tab="cves",
        cves=summaries,
        total=total,
        status=chosen or "",
        min_score=min_score or "",
        statuses=STATUSES,
        by_severity=by_severity,
        bands=BANDS,
        chart_max=max(by_severity.values(), default=0) or 1,
    )
    return render(request, "channel/cves.html", context, identity=allowed.identity)


@router.get("/channels/{channel}/files/{file_id}/cves")
def file_cves(
    request: Request, file_id: RowId, allowed: Allowed = requires(Action.read_channel)
) -> HTMLResponse:
    context = channel_context(request, allowed)
    channel = context["channel"]
    assert isinstance(channel, Channel)
    with resources_of(request).db.reading() as session:
        file = session.get(PackageFile, file_id)
        if file is None or file.channel_id != channel.id or file.added_in is None:
            raise NotFoundError(f"channel {channel.name!r} has no file {file_id}")
        matches = cve_service.file_matches(session, file_id)
        score = cve_service.file_cves(session, [file_id])[file_id]
    context.update(
        tab="packages",
        file=file,
        matches=matches,
        score=score,
        statuses=STATUSES,
        back=request.url.path,
    )
    return render(request, "channel/file_cves.html", context, identity=allowed.identity)


@router.get("/cves")
def all_cves(
    request: Request,
    status: str | None = None,
    min_score: str | None = None,
    q: str | None = None,
    allowed: Allowed = requires(Action.read_cves),
) -> HTMLResponse:
    chosen = status if status in STATUSES else None
    with resources_of(request).db.reading() as session:
        readable = channel_ids_where(session, allowed.identity, Action.read_channel)
        summaries, total = cve_service.list_cves(
            session,
            channel_ids=readable,
            status=chosen,
            min_score=_score(min_score),
            search=q,
            limit=500,
        )
    context = {
        "cves": summaries,
        "total": total,
        "status": chosen or "",
        "min_score": min_score or "",
        "q": q or "",
        "statuses": STATUSES,
    }
    return render(request, "cve/list.html", context, identity=allowed.identity)


@router.get("/cves/{cve_id}")
def cve_page(
    request: Request, cve_id: str, allowed: Allowed = requires(Action.read_cves)
) -> HTMLResponse:
    identity = allowed.identity
    with resources_of(request).db.reading() as session:
        cve = cve_service.get_cve(session, cve_id)
        readable = channel_ids_where(session, identity, Action.read_channel)
        matched = cve_service.cve_files(session, cve_id, readable)
        names = {m.channel for m in matched}
        curatable = channels_where(identity, Action.curate_cves)
        managed = set(
            session.scalars(select(Channel.name).where(Channel.name.in_(names), curatable))
        )
    context = {
        "cve": cve,
        "matched": matched,
        "managed": managed,
        "statuses": STATUSES,
        "back": request.url.path,
    }
    return render(request, "cve/detail.html", context, identity=identity)


@router.post("/cves/matches/{match_id}/curate")
def curate(
    request: Request,
    match_id: RowId,
    allowed: Allowed = requires(Action.curate_cves, "match_id"),
) -> Response:
    form = submitted(request)
    back = safe_target(form.get("back"), "/cves")
    note = str(form.get("note", "")).strip() or None
    status = str(form.get("status", ""))
    with resources_of(request).db.writing() as session:
        done = cve_service.curate_match(
            session, allowed.channel, match_id, status, note, actor=allowed.actor
        )
        message = f"{done.match.cve_id} on {done.file.filename} is now {done.match.status}."
    return redirect(back, message)
