"""CVE pages: a channel's CVEs tab, a file's CVEs, a CVE's page, and curation (one match, or
many at once)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from headwater.cves.scoring import BANDS, MatchStatus
from headwater.errors import InvalidInputError, NotFoundError
from headwater.models import Channel, PackageFile
from headwater.params import Offset, RowId
from headwater.requires import Allowed, requires
from headwater.schemas.cves import BulkCurationIn
from headwater.services import cve_curation as curation
from headwater.services import cves as cve_service
from headwater.services.access.identities import channel_ids_where, channels_where
from headwater.services.access.rules import Action
from headwater.web.channels import channel_context
from headwater.web.listing import PAGE_SIZE, Sort, sorting
from headwater.web.session import redirect, render, resources_of, safe_target, submitted

router = APIRouter(include_in_schema=False)
STATUSES = [status.value for status in MatchStatus]
CVE_SORT = Depends(sorting(*cve_service.CVE_SORTS, default="-score"))


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
    offset: Offset = 0,
    sort: Sort = CVE_SORT,
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
            offset=offset,
            limit=PAGE_SIZE,
            matched_only=True,
            sort=sort,
        )
        by_severity = cve_service.channel_severity_counts(session, channel.id)
        unresolved = cve_service.channel_unresolved_count(session, channel.id)
    context.update(
        tab="cves",
        cves=summaries,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        sort=sort,
        status=chosen or "",
        min_score=min_score or "",
        statuses=STATUSES,
        by_severity=by_severity,
        unresolved=unresolved,
        bands=BANDS,
        chart_max=max(by_severity.values(), default=0) or 1,
        back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    )
    return render(request, "channel/cves.html", context, identity=allowed.identity)


@router.post("/channels/{channel}/cves/curate")
def curate_channel_cves(
    request: Request, allowed: Allowed = requires(Action.curate_cves)
) -> Response:
    """The CVEs ticked on the channel's CVEs tab: every match of each in this channel."""
    form = submitted(request)
    channel = allowed.channel
    back = safe_target(form.get("back"), f"/channels/{channel.name}/cves")
    cve_ids = tuple(dict.fromkeys(str(value) for value in form.getlist("cve_id")))
    body = _bulk_body(form, {"channel": channel.name})
    if not cve_ids:
        raise InvalidInputError("tick the CVEs to curate first")
    if len(cve_ids) > curation.MAX_BULK_CVES:
        raise InvalidInputError(f"curate at most {curation.MAX_BULK_CVES} CVEs at once")
    with resources_of(request).db.writing() as session:
        done = curation.curate_scope(
            session,
            body.scope(cve_ids),
            body.status,
            body.note,
            channel_ids=[channel.id],
            actor=allowed.actor,
            target=channel.name,
        )
    what = cve_ids[0] if len(cve_ids) == 1 else f"{len(cve_ids)} CVEs"
    return redirect(back, _said(done.curated, body.status, what))


@router.get("/channels/{channel}/files/{file_id}/cves")
def file_cves(
    request: Request,
    file_id: RowId,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*cve_service.FILE_MATCH_SORTS, default="-score")),
    allowed: Allowed = requires(Action.read_channel),
) -> HTMLResponse:
    context = channel_context(request, allowed)
    channel = context["channel"]
    assert isinstance(channel, Channel)
    with resources_of(request).db.reading() as session:
        file = session.get(PackageFile, file_id)
        if file is None or file.channel_id != channel.id or file.added_in is None:
            raise NotFoundError(f"channel {channel.name!r} has no file {file_id}")
        matches, total = cve_service.page_file_matches(
            session, file_id, offset=offset, limit=PAGE_SIZE, sort=sort
        )
        score = cve_service.file_cves(session, [file_id])[file_id]
    context.update(
        tab="packages",
        file=file,
        matches=matches,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        sort=sort,
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
    offset: Offset = 0,
    sort: Sort = CVE_SORT,
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
            offset=offset,
            limit=PAGE_SIZE,
            sort=sort,
        )
    context = {
        "cves": summaries,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
        "status": chosen or "",
        "min_score": min_score or "",
        "q": q or "",
        "statuses": STATUSES,
    }
    return render(request, "cve/list.html", context, identity=allowed.identity)


@router.get("/cves/{cve_id}")
def cve_page(
    request: Request,
    cve_id: str,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*cve_service.MATCH_SORTS, default="channel")),
    allowed: Allowed = requires(Action.read_cves),
) -> HTMLResponse:
    identity = allowed.identity
    with resources_of(request).db.reading() as session:
        cve = cve_service.get_cve(session, cve_id)
        readable = channel_ids_where(session, identity, Action.read_channel)
        affected = cve_service.affected_packages(session, cve_id, readable)
        matched, total = cve_service.page_cve_files(
            session, cve_id, readable, offset=offset, limit=PAGE_SIZE, sort=sort
        )
        names = {a.channel for a in affected} | {m.channel for m in matched}
        curatable = channels_where(identity, Action.curate_cves)
        managed = sorted(
            session.scalars(select(Channel.name).where(Channel.name.in_(names), curatable))
        )
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context: dict[str, Any] = {
        "cve": cve,
        "affected": affected,
        "matched": matched,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
        "managed": managed,
        "statuses": STATUSES,
        "back": back,
        "max_versions": curation.MAX_VERSIONS_LENGTH,
    }
    return render(request, "cve/detail.html", context, identity=identity)


@router.post("/cves/{cve_id}/curate")
def curate_many(
    request: Request, cve_id: str, allowed: Allowed = requires(Action.read_cves)
) -> Response:
    """The files ticked on a CVE's page (`match_id`), or a scope (`channel`, `package`,
    `versions`, `subdir`): one status and note for all, where the caller may curate."""
    form = submitted(request)
    back = safe_target(form.get("back"), f"/cves/{cve_id}")
    if form.get("selection") == "ticked":
        ticked = form.getlist("match_id")
        if not ticked:
            raise InvalidInputError("tick the files to curate first")
        body = _bulk_body(form, {"match_ids": [str(value) for value in ticked]})
    else:
        fields = {key: str(form.get(key, "")).strip() for key in ("channel", "package", "subdir")}
        fields["versions"] = str(form.get("versions", "")).strip()
        body = _bulk_body(form, {key: value for key, value in fields.items() if value})
    with resources_of(request).db.writing() as session:
        done = curation.curate_cve(
            session,
            body.scope((cve_id,)),
            body.status,
            body.note,
            channel=body.channel,
            identity=allowed.identity,
            actor=allowed.actor,
        )
    return redirect(back, _said(done.curated, body.status, cve_id))


def _bulk_body(form: Any, scope: dict[str, Any]) -> BulkCurationIn:
    """The form as the REST API's body, refused with the same words."""
    fields = {
        "status": str(form.get("status", "")),
        "note": str(form.get("note", "")).strip() or None,
        **scope,
    }
    try:
        return BulkCurationIn.model_validate(fields)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in p['loc']) or 'form'}: {p['msg']}"
            for p in error.errors()
        ]
        raise InvalidInputError("; ".join(problems)) from None


def _said(curated: int, status: str, what: str) -> str:
    files = "1 match" if curated == 1 else f"{curated:,} matches"
    return f"{files} of {what} now {status}."


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
        done = curation.curate_match(
            session, allowed.channel, match_id, status, note, actor=allowed.actor
        )
        message = f"{done.match.cve_id} on {done.file.filename} is now {done.match.status}."
    return redirect(back, message)
