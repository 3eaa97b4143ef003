"""REST for channels, their packages and files, uploads, and the roles granted on them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, StrictInt
from starlette.concurrency import run_in_threadpool

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.models import Channel
from headwater.multipart import FILE_BODY, read_upload_form, uploaded_file
from headwater.requires import Allowed, requires
from headwater.schemas.channels import ChannelOut, FileOut, PackageOut
from headwater.services import channels as channel_service
from headwater.services import cves as cve_service
from headwater.services import packages as package_service
from headwater.services import uploads
from headwater.services.access import roles as role_service
from headwater.services.access.decisions import ChannelRef, OrganizationRef, require_organization
from headwater.services.access.identities import channels_where
from headwater.services.access.rules import Action, Identity

router = APIRouter(prefix="/api/channels", tags=["channels"], route_class=StrictJsonRoute)


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    privacy: str = "public"
    filters: dict[str, Any] | None = None
    organization: str | None = None  # the owner; the creating user when absent


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    privacy: str | None = None
    filters: dict[str, Any] | None = None
    organization: str | None = None  # give the channel to this organization
    revisions_kept: StrictInt | None = None  # latest revisions kept; null: the deployment's
    # What a run checks before its revision becomes the head (docs/concepts.md, "Dependencies")
    must_install: list[Any] | None = None  # specs, or {"spec", "platform"}; null clears
    also_available: list[Any] | None = None  # channel URLs clients use beside this one
    on_unsolvable: str | None = None  # fail or warn


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str  # read, write or manage


class RoleOut(BaseModel):
    kind: str  # user or group
    name: str  # a username, or organization/group
    role: str


def _channel_out(resources: ResourcesDep, channel_id: int) -> ChannelOut:
    with resources.db.reading() as session:
        channel = session.get_one(Channel, channel_id)
        stats = channel_service.channel_stats(session, [channel.id])[channel.id]
        return ChannelOut.of(channel, stats)


def _organization(
    resources: ResourcesDep, identity: Identity, name: str | None
) -> OrganizationRef | None:
    """The organization a channel is to belong to: its owners (and administrators) may."""
    if name is None:
        return None
    with resources.db.reading() as session:
        return require_organization(session, identity, Action.manage_organization, name)


@router.get("")
def list_channels(
    resources: ResourcesDep, page: PagingDep, allowed: Allowed = requires(Action.list_channels)
) -> Page[ChannelOut]:
    """The channels the caller may read."""
    with resources.db.reading() as session:
        channels, total = channel_service.list_channels(
            session,
            offset=page.offset,
            limit=page.limit,
            where=channels_where(allowed.identity, Action.read_channel),
        )
        stats = channel_service.channel_stats(session, [channel.id for channel in channels])
        items = [ChannelOut.of(channel, stats[channel.id]) for channel in channels]
    return Page(items=items, total_count=total)


@router.post("", status_code=201)
def create_channel(
    body: ChannelCreate, resources: ResourcesDep, allowed: Allowed = requires(Action.create_channel)
) -> ChannelOut:
    """Create a channel, owned by the caller or by an `organization` they own."""
    organization = _organization(resources, allowed.user, body.organization)
    with resources.db.writing() as session:
        channel = channel_service.create_channel(
            session,
            body.name,
            actor=allowed.actor,
            organization=organization,
            description=body.description,
            privacy=body.privacy,
            filters=body.filters,
        )
        channel_id = channel.id
    return _channel_out(resources, channel_id)


@router.get("/{channel}")
def show_channel(
    resources: ResourcesDep, allowed: Allowed = requires(Action.read_channel)
) -> ChannelOut:
    return _channel_out(resources, allowed.channel.id)


@router.put("/{channel}")
@router.patch("/{channel}")
def update_channel(
    body: ChannelUpdate, resources: ResourcesDep, allowed: Allowed = requires(Action.edit_channel)
) -> ChannelOut:
    """Edit a channel. Only the fields sent change; `filters` merge key by key (null removes).
    `organization` gives the channel to an organization the caller owns."""
    changes = body.model_dump(exclude_unset=True)
    organization = _organization(resources, allowed.user, changes.pop("organization", None))
    with resources.db.writing() as session:
        channel_service.update_channel(
            session,
            allowed.channel,
            changes,
            actor=allowed.actor,
            allowlist=resources.policy.allowlist,
        )
        if organization is not None:
            channel_service.give_channel(
                session, allowed.channel, organization, actor=allowed.actor
            )
    return _channel_out(resources, allowed.channel.id)


@router.delete("/{channel}", status_code=204)
def delete_channel(
    resources: ResourcesDep, allowed: Allowed = requires(Action.edit_channel)
) -> Response:
    with resources.db.writing() as session:
        channel_service.delete_channel(session, allowed.channel, actor=allowed.actor)
    return Response(status_code=204)


@router.get("/{channel}/packages")
def list_packages(
    resources: ResourcesDep,
    page: PagingDep,
    search: str | None = None,
    allowed: Allowed = requires(Action.read_channel),
) -> Page[PackageOut]:
    with resources.db.reading() as session:
        summaries, total = package_service.list_packages(
            session, allowed.channel, offset=page.offset, limit=page.limit, search=search
        )
    items = [PackageOut.model_validate(summary, from_attributes=True) for summary in summaries]
    return Page(items=items, total_count=total)


@router.get("/{channel}/packages/{name}/files")
def list_package_files(
    name: str, resources: ResourcesDep, allowed: Allowed = requires(Action.read_channel)
) -> Page[FileOut]:
    channel = allowed.channel
    with resources.db.reading() as session:
        files = package_service.get_package_files(session, channel, name)
        cves = cve_service.file_cves(session, [file.id for file in files])
        items = [FileOut.of(channel.name, file, cves[file.id]) for file in files]
    return Page(items=items, total_count=len(items))


@router.post("/{channel}/files", status_code=201, openapi_extra=FILE_BODY)
async def upload_file(
    request: Request, resources: ResourcesDep, allowed: Allowed = requires(Action.upload_file)
) -> FileOut:
    """Upload a package (`.conda`, `.tar.bz2`, wheel or sdist) in the form field `file`; its
    metadata is read from the archive itself. Who may upload is decided before a byte of the
    body is read."""
    file = uploaded_file(await read_upload_form(request), "file")
    staged = await run_in_threadpool(uploads.stage_upload, resources.store, file.file)
    channel: ChannelRef = allowed.channel

    def add() -> FileOut:
        added = uploads.upload_package(
            resources.db,
            resources.store,
            channel,
            file.filename or "",
            staged,
            actor=allowed.actor,
            cve_names=resources.cve_names,
        )
        return FileOut.of(channel.name, added)

    return await run_in_threadpool(add)


@router.delete("/{channel}/files/{subdir}/{filename}", status_code=204)
def delete_file(
    subdir: str,
    filename: str,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.delete_file),
) -> Response:
    package_service.delete_file(
        resources.db, resources.store, allowed.channel, subdir, filename, actor=allowed.actor
    )
    return Response(status_code=204)


@router.get("/{channel}/roles")
def list_roles(
    resources: ResourcesDep, allowed: Allowed = requires(Action.edit_channel)
) -> Page[RoleOut]:
    """Who holds a role on the channel (besides its owner and administrators)."""
    with resources.db.reading() as session:
        granted = role_service.list_roles(session, allowed.channel)
    items = [RoleOut(kind=g.kind, name=g.name, role=g.role.value) for g in granted]
    return Page(items=items, total_count=len(items))


@router.put("/{channel}/roles/users/{username}")
def grant_user_role(
    username: str,
    body: RoleIn,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.edit_channel),
) -> RoleOut:
    return _grant(resources, allowed, "user", username, body.role)


@router.delete("/{channel}/roles/users/{username}", status_code=204)
def revoke_user_role(
    username: str, resources: ResourcesDep, allowed: Allowed = requires(Action.edit_channel)
) -> Response:
    return _revoke(resources, allowed, "user", username)


@router.put("/{channel}/roles/groups/{organization}/{group}")
def grant_group_role(
    organization: str,
    group: str,
    body: RoleIn,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.edit_channel),
) -> RoleOut:
    return _grant(resources, allowed, "group", f"{organization}/{group}", body.role)


@router.delete("/{channel}/roles/groups/{organization}/{group}", status_code=204)
def revoke_group_role(
    organization: str,
    group: str,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.edit_channel),
) -> Response:
    return _revoke(resources, allowed, "group", f"{organization}/{group}")


def _grant(resources: ResourcesDep, allowed: Allowed, kind: str, name: str, role: str) -> RoleOut:
    with resources.db.writing() as session:
        granted = role_service.grant_role(
            session, allowed.channel, kind, name, role, actor=allowed.actor, granter=allowed.user
        )
    return RoleOut(kind=granted.kind, name=granted.name, role=granted.role.value)


def _revoke(resources: ResourcesDep, allowed: Allowed, kind: str, name: str) -> Response:
    with resources.db.writing() as session:
        role_service.revoke_role(session, allowed.channel, kind, name, actor=allowed.actor)
    return Response(status_code=204)
