"""What package managers talk to: every URL under /api/repo/."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from headwater.errors import IndexNotFoundError, InvalidInputError
from headwater.multipart import read_upload_form, uploaded_file
from headwater.repo import conda, pypi
from headwater.repo.access import ChannelAccess, open_channel, upload_identity
from headwater.services import access, uploads
from headwater.services.cve_matching import match_channel

router = APIRouter(prefix="/api/repo", tags=["repository"])


@dataclass(frozen=True)
class RepoPath:
    """/api/repo/[t/<token>/]<channel>/<rest...>"""

    token: str | None
    channel: str
    rest: list[str]
    trailing_slash: bool


def parse_repo_path(path: str) -> RepoPath:
    segments = [segment for segment in path.split("/") if segment]
    token = None
    if len(segments) >= 2 and segments[0] == "t":
        token, segments = segments[1], segments[2:]
    if not segments:
        raise IndexNotFoundError("name a channel: /api/repo/<channel>/<subdir>/repodata.json")
    return RepoPath(
        token=token, channel=segments[0], rest=segments[1:], trailing_slash=path.endswith("/")
    )


@router.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def serve(path: str, request: Request) -> Response:
    resources = request.app.state.resources
    where = parse_repo_path(path)
    access: ChannelAccess = await run_in_threadpool(
        open_channel, resources, request, where.token, where.channel
    )
    if not where.rest:
        raise IndexNotFoundError(
            f"channel {where.channel!r} serves /api/repo/{where.channel}/<subdir>/repodata.json "
            f"(conda) and /api/repo/{where.channel}/simple/ (PyPI)"
        )
    if where.rest[0] == "simple":
        return await pypi.serve(request, resources, access, where.rest[1:], where.trailing_slash)
    return await conda.serve(request, resources, access, where.rest)


@router.post("/{path:path}", include_in_schema=False)
async def upload(path: str, request: Request) -> Response:
    """The upload API twine speaks (`twine upload --repository-url .../api/repo/<channel>`)."""
    resources = request.app.state.resources
    where = parse_repo_path(path)
    if where.rest not in ([], ["simple"], ["legacy"]):
        raise IndexNotFoundError(f"upload to /api/repo/{where.channel}/, not to {path}")
    identity = await run_in_threadpool(
        upload_identity, resources, request, where.token, where.channel
    )
    form = await read_upload_form(request)
    if form.get(":action", "file_upload") != "file_upload":
        raise InvalidInputError("only the action file_upload is supported")
    content = uploaded_file(form, "content")
    staged = await run_in_threadpool(uploads.stage_upload, resources.store, content.file)

    digest = form.get("sha256_digest")

    def add() -> None:
        added = uploads.upload_package(
            resources.db,
            resources.store,
            lambda session: access.managed_channel(session, where.channel, identity),
            content.filename or "",
            staged,
            uploaded_by=identity.username,
            expected_sha256=digest if isinstance(digest, str) else None,
            python_only=True,
        )
        match_channel(resources.db, resources.cve_names, added.channel_id)

    await run_in_threadpool(add)
    return Response("OK\n", media_type="text/plain")
