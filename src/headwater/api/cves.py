"""REST for the CVE database: CVEs, their matches to files, curation and import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from headwater.api.deps import IdentityDep, ResourcesDep, SignedIn
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import PagingDep
from headwater.cves.sources import read_upload
from headwater.errors import PermissionDeniedError
from headwater.multipart import FILE_BODY, read_upload_form, uploaded_file
from headwater.params import RowId
from headwater.schemas.cves import CurationIn, CveDetail, CveOut, ImportOut, MatchOut
from headwater.schemas.pages import Page
from headwater.services import access
from headwater.services import cves as cve_service
from headwater.services.cve_import import import_reading

router = APIRouter(tags=["cves"], route_class=StrictJsonRoute)


class ChannelCves(Page[CveOut]):
    """`total_count` is the channel's CVE count: distinct CVEs matching its files."""

    by_severity: dict[str, int]


@router.get("/api/cves")
def list_cves(
    resources: ResourcesDep,
    identity: SignedIn,
    page: PagingDep,
    status: str | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=10)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=10)] = None,
    channel: str | None = None,
    search: str | None = None,
) -> Page[CveOut]:
    """Every CVE of the database (with a `channel`, those matching its files), best scored
    first, each with how many files it matches in the channels the caller may read."""
    with resources.db.reading() as session:
        if channel is not None:
            channel_ids = [access.readable_channel(session, channel, identity).id]
        else:
            channel_ids = access.readable_channel_ids(session, identity)
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
def show_cve(cve_id: str, resources: ResourcesDep, identity: SignedIn) -> CveDetail:
    with resources.db.reading() as session:
        return CveDetail.of_cve(cve_service.get_cve(session, cve_id))


@router.get("/api/cves/{cve_id}/files")
def cve_files(cve_id: str, resources: ResourcesDep, identity: SignedIn) -> Page[MatchOut]:
    """The files the CVE matches, in the channels the caller may read, with each match's
    status and whether it was curated."""
    with resources.db.reading() as session:
        cve_service.get_cve(session, cve_id)
        matched = cve_service.cve_files(
            session, cve_id, access.readable_channel_ids(session, identity)
        )
        items = [MatchOut.of_matched(m) for m in matched]
    return Page(items=items, total_count=len(items))


@router.put("/api/cves/matches/{match_id}")
def curate_match(
    match_id: RowId, body: CurationIn, resources: ResourcesDep, identity: SignedIn
) -> MatchOut:
    """Set a match's status (`active`, `cleared`, `disputed`, `mitigated`, or back to
    `reported`) with a note. Administrators and the channel's owner may."""
    with resources.db.writing() as session:
        done = cve_service.curate_match(session, match_id, identity, body.status, body.note)
        return MatchOut.of(done.match, done.file, done.channel.name)


@router.post("/api/cves/import", openapi_extra=FILE_BODY)
async def import_file(request: Request, resources: ResourcesDep, identity: SignedIn) -> ImportOut:
    """Import an uploaded OSV advisory (JSON or YAML), NVD record or zip of them, in the form
    field `file`; then match every file again. Administrators only, decided before the body is
    read."""
    if not identity.is_admin:
        raise PermissionDeniedError("only administrators can import advisories")
    file = uploaded_file(await read_upload_form(request), "file")
    reading = await run_in_threadpool(read_upload, file.filename or "upload.json", file.file)
    outcome = await run_in_threadpool(import_reading, resources.db, resources.cve_names, reading)
    return ImportOut.of(outcome.files, outcome.imported, outcome.matched)


@router.get("/api/channels/{channel}/cves")
def channel_cves(
    channel: str,
    resources: ResourcesDep,
    identity: IdentityDep,
    page: PagingDep,
    status: str | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=10)] = None,
) -> ChannelCves:
    """The CVEs matching the channel's files; `total_count` is the channel's CVE count."""
    with resources.db.reading() as session:
        found = access.readable_channel(session, channel, identity)
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
        )
