"""REST for the CVE database: CVEs, their matches to files, curation and import."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import PagingDep
from headwater.cves.sources import read_upload
from headwater.multipart import FILE_BODY, read_upload_form, uploaded_file
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.schemas.cves import (
    BulkCurationIn,
    BulkCurationOut,
    CurationIn,
    CveDetail,
    CveOut,
    ImportOut,
    MatchOut,
)
from headwater.schemas.pages import Page
from headwater.services import cve_curation as curation
from headwater.services import cves as cve_service
from headwater.services.access.decisions import require_channel
from headwater.services.access.identities import channel_ids_where
from headwater.services.access.rules import Action
from headwater.services.cve_import import import_reading

router = APIRouter(tags=["cves"], route_class=StrictJsonRoute)


class ChannelCves(Page[CveOut]):
    """`total_count` is the channel's CVE count: distinct CVEs matching its files;
    `unresolved_count` those of them with a match still `reported` or `active` there."""

    by_severity: dict[str, int]
    unresolved_count: int


@router.get("/api/cves")
def list_cves(
    resources: ResourcesDep,
    page: PagingDep,
    status: str | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=10)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=10)] = None,
    channel: str | None = None,
    search: str | None = None,
    allowed: Allowed = requires(Action.read_cves),
) -> Page[CveOut]:
    """Every CVE of the database (with a `channel`, those matching its files), best scored
    first, each with how many files it matches in the channels the caller may read."""
    identity = allowed.identity
    with resources.db.reading() as session:
        if channel is not None:
            channel_ids = [require_channel(session, identity, Action.read_channel, channel).id]
        else:
            channel_ids = channel_ids_where(session, identity, Action.read_channel)
        summaries, total = cve_service.list_cves(
            session,
            channel_ids=channel_ids,
            status=status,
            min_score=min_score,
            max_score=max_score,
            search=search,
            offset=page.offset,
            limit=page.limit,
            matched_only=channel is not None,
        )
        return Page(items=[CveOut.of(s) for s in summaries], total_count=total)


@router.get("/api/cves/{cve_id}")
def show_cve(
    cve_id: str, resources: ResourcesDep, allowed: Allowed = requires(Action.read_cves)
) -> CveDetail:
    with resources.db.reading() as session:
        return CveDetail.of_cve(cve_service.get_cve(session, cve_id))


@router.get("/api/cves/{cve_id}/files")
def cve_files(
    cve_id: str,
    resources: ResourcesDep,
    paging: PagingDep,
    allowed: Allowed = requires(Action.read_cves),
) -> Page[MatchOut]:
    """The files the CVE matches, in the channels the caller may read, with each match's
    status and whether it was curated: a page of them, by channel and file name."""
    with resources.db.reading() as session:
        cve_service.get_cve(session, cve_id)
        matched, total = cve_service.page_cve_files(
            session,
            cve_id,
            channel_ids_where(session, allowed.identity, Action.read_channel),
            offset=paging.offset,
            limit=paging.limit,
        )
        items = [MatchOut.of_matched(m) for m in matched]
    return Page(items=items, total_count=total)


@router.put("/api/cves/matches/{match_id}")
def curate_match(
    match_id: RowId,
    body: CurationIn,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.curate_cves, "match_id"),
) -> MatchOut:
    """Set a match's status (`active`, `cleared`, `disputed`, `mitigated`, or back to
    `reported`) with a note. Those who manage the file's channel may."""
    with resources.db.writing() as session:
        done = curation.curate_match(
            session, allowed.channel, match_id, body.status, body.note, actor=allowed.actor
        )
        return MatchOut.of(done.match, done.file, done.channel.name)


@router.post("/api/cves/{cve_id}/curate")
def curate_many(
    cve_id: str,
    body: BulkCurationIn,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.read_cves),
) -> BulkCurationOut:
    """Curate many matches of a CVE with one status and note, in one transaction: the
    `match_ids` named, or every match of a scope (`channel`, `package` with `versions`,
    `subdir`). Only matches in channels the caller may curate change (a `channel` they may not
    is refused); `curated` says how many."""
    with resources.db.writing() as session:
        done = curation.curate_cve(
            session,
            body.scope((cve_id,)),
            body.status,
            body.note,
            channel=body.channel,
            identity=allowed.identity,
            actor=allowed.actor,
        )
        return BulkCurationOut.of((cve_id,), body.status, done)


@router.post("/api/cves/import", openapi_extra=FILE_BODY)
async def import_file(
    request: Request, resources: ResourcesDep, allowed: Allowed = requires(Action.import_cves)
) -> ImportOut:
    """Import an uploaded OSV advisory (JSON or YAML), NVD record or zip of them, in the form
    field `file`; then match every file again. Administrators only, decided before the body is
    read."""
    file = uploaded_file(await read_upload_form(request), "file")
    name = file.filename or "upload.json"
    reading = await run_in_threadpool(read_upload, name, file.file)
    outcome = await run_in_threadpool(
        partial(
            import_reading,
            resources.db,
            resources.cve_names,
            reading,
            actor=allowed.actor,
            source=f"upload {name}",
        )
    )
    return ImportOut.of(outcome.files, outcome.imported, outcome.matched)


@router.get("/api/channels/{channel}/cves")
def channel_cves(
    resources: ResourcesDep,
    page: PagingDep,
    status: str | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=10)] = None,
    allowed: Allowed = requires(Action.read_channel),
) -> ChannelCves:
    """The CVEs matching the channel's files; `total_count` is the channel's CVE count."""
    found = allowed.channel
    with resources.db.reading() as session:
        summaries, _ = cve_service.list_cves(
            session,
            channel_ids=[found.id],
            status=status,
            min_score=min_score,
            offset=page.offset,
            limit=page.limit,
            matched_only=True,
        )
        return ChannelCves(
            items=[CveOut.of(s) for s in summaries],
            total_count=cve_service.channel_cve_count(session, found.id),
            by_severity=cve_service.channel_severity_counts(session, found.id),
            unresolved_count=cve_service.channel_unresolved_count(session, found.id),
        )
