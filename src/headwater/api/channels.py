"""REST for channels, their packages and files, and uploads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from headwater.api.deps import IdentityDep, ResourcesDep, SignedIn
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.multipart import FILE_BODY, read_upload_form, uploaded_file
from headwater.schemas.channels import ChannelOut, FileOut, PackageOut
from headwater.services import access, uploads
from headwater.services import channels as channel_service
from headwater.services import cves as cve_service
from headwater.services import packages as package_service
from headwater.services.auth import Identity
from headwater.services.cve_matching import match_channel

router = APIRouter(prefix="/api/channels", tags=["channels"], route_class=StrictJsonRoute)


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    privacy: str = "public"
    filters: dict[str, Any] | None = None


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    privacy: str | None = None
    filters: dict[str, Any] | None = None


def _channel_out(resources: ResourcesDep, name: str, identity: Identity | None) -> ChannelOut:
    with resources.db.reading() as session:
        channel = access.readable_channel(session, name, identity)
        stats = channel_service.channel_stats(session, [channel.id])[channel.id]
        return ChannelOut.of(channel, stats)


@router.get("")
def list_channels(
    resources: ResourcesDep, page: PagingDep, identity: IdentityDep
) -> Page[ChannelOut]:
    """The channels the caller may read."""
    with resources.db.reading() as session:
        channels, total = channel_service.list_channels(
            session,
            offset=page.offset,
            limit=page.limit,
            where=access.readable_condition(identity),
        )
        stats = channel_service.channel_stats(session, [channel.id for channel in channels])
        items = [ChannelOut.of(channel, stats[channel.id]) for channel in channels]
    return Page(items=items, total_count=total)


@router.post("", status_code=201)
def create_channel(body: ChannelCreate, resources: ResourcesDep, identity: SignedIn) -> ChannelOut:
    with resources.db.writing() as session:
        channel_service.create_channel(
            session,
            body.name,
            owner=identity.username,
            description=body.description,
            privacy=body.privacy,
            filters=body.filters,
        )
    return _channel_out(resources, body.name, identity)


@router.get("/{channel}")
def show_channel(channel: str, resources: ResourcesDep, identity: IdentityDep) -> ChannelOut:
    return _channel_out(resources, channel, identity)


@router.put("/{channel}")
@router.patch("/{channel}")
def update_channel(
    channel: str, body: ChannelUpdate, resources: ResourcesDep, identity: SignedIn
) -> ChannelOut:
    """Edit a channel. Only the fields sent change; `filters` merge key by key (null removes)."""
    with resources.db.writing() as session:
        access.managed_channel(session, channel, identity)
        channel_service.update_channel(session, channel, body.model_dump(exclude_unset=True))
    return _channel_out(resources, channel, identity)


@router.delete("/{channel}", status_code=204)
def delete_channel(channel: str, resources: ResourcesDep, identity: SignedIn) -> Response:
    with resources.db.writing() as session:
        access.managed_channel(session, channel, identity)
        channel_service.delete_channel(session, resources.store, channel)
    return Response(status_code=204)


@router.get("/{channel}/packages")
def list_packages(
    channel: str,
    resources: ResourcesDep,
    page: PagingDep,
    identity: IdentityDep,
    search: str | None = None,
) -> Page[PackageOut]:
    with resources.db.reading() as session:
        access.readable_channel(session, channel, identity)
        summaries, total = package_service.list_packages(
            session, channel, offset=page.offset, limit=page.limit, search=search
        )
    items = [PackageOut.model_validate(summary, from_attributes=True) for summary in summaries]
    return Page(items=items, total_count=total)


@router.get("/{channel}/packages/{name}/files")
def list_package_files(
    channel: str, name: str, resources: ResourcesDep, identity: IdentityDep
) -> Page[FileOut]:
    with resources.db.reading() as session:
        access.readable_channel(session, channel, identity)
        files = package_service.get_package_files(session, channel, name)
        cves = cve_service.file_cves(session, [file.id for file in files])
        items = [FileOut.of(channel, file, cves[file.id]) for file in files]
    return Page(items=items, total_count=len(items))


@router.post("/{channel}/files", status_code=201, openapi_extra=FILE_BODY)
async def upload_file(
    channel: str, request: Request, resources: ResourcesDep, identity: SignedIn
) -> FileOut:
    """Upload a package (`.conda`, `.tar.bz2`, wheel or sdist) in the form field `file`; its
    metadata is read from the archive itself. Who may change the channel is decided before a
    byte of the body is read."""
    await run_in_threadpool(_check_managed, resources, channel, identity)
    file = uploaded_file(await read_upload_form(request), "file")
    staged = await run_in_threadpool(uploads.stage_upload, resources.store, file.file)

    def add() -> FileOut:
        added = uploads.upload_package(
            resources.db,
            resources.store,
            lambda session: access.managed_channel(session, channel, identity),
            file.filename or "",
            staged,
            uploaded_by=identity.username,
        )
        match_channel(resources.db, resources.cve_names, added.channel_id)
        return FileOut.of(channel, added)

    return await run_in_threadpool(add)


def _check_managed(resources: ResourcesDep, channel: str, identity: Identity) -> None:
    with resources.db.reading() as session:
        access.managed_channel(session, channel, identity)


@router.delete("/{channel}/files/{subdir}/{filename}", status_code=204)
def delete_file(
    channel: str, subdir: str, filename: str, resources: ResourcesDep, identity: SignedIn
) -> Response:
    with resources.db.writing() as session:
        access.managed_channel(session, channel, identity)
        package_service.delete_file(session, resources.store, channel, subdir, filename)
    return Response(status_code=204)
