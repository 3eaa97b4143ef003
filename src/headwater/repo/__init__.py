"""What package managers talk to: every URL under /api/repo/, with or without a token in the
path (/api/repo/t/<token>/<channel>/...)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from headwater.errors import IndexNotFoundError, InvalidInputError
from headwater.multipart import read_upload_form, uploaded_file
from headwater.repo import conda, pypi
from headwater.repo.access import Served, remember_public
from headwater.requires import Allowed, requires
from headwater.services import channel_revisions, uploads
from headwater.services.access.rules import Action

router = APIRouter(prefix="/api/repo", tags=["repository"])

_CHANNEL = "/{channel}"
_CHANNEL_PATH = "/{channel}/{rest:path}"
_TOKEN_CHANNEL = "/t/{token}/{channel}"
_TOKEN_CHANNEL_PATH = "/t/{token}/{channel}/{rest:path}"
_PINNED = "/{channel}@{revision}"
_PINNED_PATH = "/{channel}@{revision}/{rest:path}"
_TOKEN_PINNED = "/t/{token}/{channel}@{revision}"
_TOKEN_PINNED_PATH = "/t/{token}/{channel}@{revision}/{rest:path}"


# Registered before the plain paths, which would take `name@3` for a channel's name.
@router.api_route(_PINNED, methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route(_PINNED_PATH, methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route(_TOKEN_PINNED, methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route(_TOKEN_PINNED_PATH, methods=["GET", "HEAD"], include_in_schema=False)
async def serve_pinned(
    request: Request, allowed: Allowed = requires(Action.read_channel)
) -> Response:
    """Revision n of a channel exactly as it was (`<channel>@<n>`, or `@<name>` it is kept
    as): its indexes, simple pages and files, immutable."""
    resources = request.app.state.resources
    text = str(request.path_params["revision"])
    channel = allowed.channel

    def find() -> int:
        with resources.db.reading() as session:
            return channel_revisions.resolve(session, channel, text)

    number = await run_in_threadpool(find)
    served = Served(channel, number, pinned=True, segment=f"{channel.name}@{text}")
    return await _serve(request, resources, served)


# Registered from the bottom up: the token paths first, so that no channel is named t.
@router.api_route(_CHANNEL, methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route(_CHANNEL_PATH, methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route(_TOKEN_CHANNEL, methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route(_TOKEN_CHANNEL_PATH, methods=["GET", "HEAD"], include_in_schema=False)
async def serve(request: Request, allowed: Allowed = requires(Action.read_channel)) -> Response:
    resources = request.app.state.resources
    channel = allowed.channel
    remember_public(resources, channel, anonymous=allowed.identity is None)
    return await _serve(request, resources, Served(channel, channel.head, segment=channel.name))


async def _serve(request: Request, resources: Any, served: Served) -> Response:
    rest = str(request.path_params.get("rest", ""))
    parts = [segment for segment in rest.split("/") if segment]
    if not parts:
        name = served.segment
        raise IndexNotFoundError(
            f"channel {name!r} serves /api/repo/{name}/<subdir>/repodata.json "
            f"(conda) and /api/repo/{name}/simple/ (PyPI)"
        )
    if parts[0] == "simple":
        return await pypi.serve(request, resources, served, parts[1:], rest.endswith("/"))
    return await conda.serve(request, resources, served, parts)


# Registered from the bottom up: the token paths first, so that no channel is named t.
@router.post(_CHANNEL, include_in_schema=False)
@router.post(_CHANNEL_PATH, include_in_schema=False)
@router.post(_TOKEN_CHANNEL, include_in_schema=False)
@router.post(_TOKEN_CHANNEL_PATH, include_in_schema=False)
async def upload(request: Request, allowed: Allowed = requires(Action.upload_file)) -> Response:
    """The upload API twine speaks (`twine upload --repository-url .../api/repo/<channel>`)."""
    resources = request.app.state.resources
    rest = str(request.path_params.get("rest", ""))
    channel = allowed.channel
    if rest.strip("/") not in ("", "simple", "legacy"):
        raise IndexNotFoundError(f"upload to /api/repo/{channel.name}/, not to {request.url.path}")
    form = await read_upload_form(request)
    if form.get(":action", "file_upload") != "file_upload":
        raise InvalidInputError("only the action file_upload is supported")
    content = uploaded_file(form, "content")
    staged = await run_in_threadpool(uploads.stage_upload, resources.store, content.file)
    digest = form.get("sha256_digest")

    def add() -> None:
        uploads.upload_package(
            resources.db,
            resources.store,
            channel,
            content.filename or "",
            staged,
            actor=allowed.actor,
            expected_sha256=digest if isinstance(digest, str) else None,
            python_only=True,
            cve_names=resources.cve_names,
        )

    await run_in_threadpool(add)
    return Response("OK\n", media_type="text/plain")
