"""What package managers talk to: every URL under /api/repo/."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from headwater.errors import IndexNotFoundError
from headwater.repo import conda
from headwater.repo.access import ChannelAccess, open_channel

router = APIRouter(prefix="/api/repo", tags=["repository"])


@dataclass(frozen=True)
class RepoPath:
    """/api/repo/[t/<token>/]<channel>/<rest...>"""

    token: str | None
    channel: str
    rest: list[str]


def parse_repo_path(path: str) -> RepoPath:
    segments = [segment for segment in path.split("/") if segment]
    token = None
    if len(segments) >= 2 and segments[0] == "t":
        token, segments = segments[1], segments[2:]
    if not segments:
        raise IndexNotFoundError("name a channel: /api/repo/<channel>/<subdir>/repodata.json")
    return RepoPath(token=token, channel=segments[0], rest=segments[1:])


@router.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def serve(path: str, request: Request) -> Response:
    resources = request.app.state.resources
    where = parse_repo_path(path)
    access: ChannelAccess = await run_in_threadpool(
        open_channel, resources, request, where.token, where.channel
    )
    if not where.rest:
        raise IndexNotFoundError(
            f"channel {where.channel!r} serves /api/repo/{where.channel}/<subdir>/repodata.json"
        )
    return await conda.serve(request, resources, access, where.rest)
