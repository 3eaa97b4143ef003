"""PyPI serving: a channel's simple index (PEP 503 HTML and PEP 691 JSON by `Accept`), its
files and their core metadata (PEP 658), under /api/repo/<channel>/simple/."""

from __future__ import annotations

import datetime as dt
import hashlib

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool

from headwater.errors import PackageFileNotFoundError
from headwater.formats.pypi.simple import (
    JSON_MEDIA,
    ServedFile,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
    wants_json,
)
from headwater.repo.access import Served
from headwater.repo.files import serve_file
from headwater.repo.responses import INDEX_CACHE_CONTROL, bytes_response
from headwater.resources import Resources
from headwater.services import packages
from headwater.services.packages import ServableFile


async def serve(
    request: Request,
    resources: Resources,
    served: Served,
    rest: list[str],
    trailing_slash: bool,
) -> Response:
    """`rest` is what follows `simple`: nothing, a project, or a project and a file."""
    if not rest:
        if not trailing_slash:
            return served.label(_redirect(request, _base(request, served)))
        return await run_in_threadpool(_index_page, request, resources, served)
    project = rest[0]
    normalized = canonicalize_name(project)
    if len(rest) == 1:
        if project != normalized or not trailing_slash:
            return served.label(_redirect(request, f"{_base(request, served)}{normalized}/"))
        return await run_in_threadpool(_project_page, request, resources, served, normalized)
    if len(rest) == 2:
        return await _serve_file(request, resources, served, normalized, rest[1])
    raise PackageFileNotFoundError(f"channel {served.segment!r} has no {'/'.join(rest)}")


def _base(request: Request, served: Served) -> str:
    """The simple index's path as the client asked for it (keeping a token in the path),
    with its trailing slash whether or not the client sent it."""
    path = request.url.path + "/"
    marker = f"/{served.segment}/simple/"
    return (
        path[: path.index(marker) + len(marker)]
        if marker in path
        else f"/api/repo/{served.segment}/simple/"
    )


def _redirect(request: Request, target: str) -> Response:
    return RedirectResponse(target, status_code=301)


def _page_response(
    request: Request, served: Served, page: tuple[str, bytes], as_json: bool
) -> Response:
    etag, body = page
    response = bytes_response(
        request,
        body,
        etag=f'"{etag}"',
        media_type=JSON_MEDIA if as_json else "text/html",
        cache_control=served.index_cache_control(INDEX_CACHE_CONTROL),
    )
    response.headers["Vary"] = "Accept"
    return served.label(response)


def _rendered(body: bytes) -> tuple[str, bytes]:
    return hashlib.sha256(body).hexdigest()[:32], body


def _index_page(request: Request, resources: Resources, served: Served) -> Response:
    as_json = wants_json(request.headers.get("accept"))
    # Pages are cached by revision: the head's and a pinned revision's of one number are one.
    key = (served.channel.id, served.number, "", as_json)
    page = resources.pages.get(key)
    if page is None:
        with resources.db.reading() as session:
            names = packages.python_projects(session, served.channel.id, served.number)
        page = _rendered(render_index_json(names) if as_json else render_index_html(names))
        resources.pages.put(key, page)
    return _page_response(request, served, page, as_json)


def _project_page(request: Request, resources: Resources, served: Served, project: str) -> Response:
    as_json = wants_json(request.headers.get("accept"))
    key = (served.channel.id, served.number, project, as_json)
    page = resources.pages.get(key)
    if page is None:
        with resources.db.reading() as session:
            files = packages.python_project_files(
                session, served.channel.id, project, served.number
            )
        if not files:
            raise PackageFileNotFoundError(
                f"channel {served.segment!r} has no PyPI project {project!r}"
            )
        listed = [_served(file) for file in files]
        if as_json:
            versions = list(dict.fromkeys(file.record.version for file in files))
            page = _rendered(render_project_json(project, listed, versions))
        else:
            page = _rendered(render_project_html(project, listed))
        resources.pages.put(key, page)
    return _page_response(request, served, page, as_json)


def _served(file: packages.PythonFile) -> ServedFile:
    record = file.record
    return ServedFile(
        filename=file.filename,
        url=file.filename,
        sha256=file.sha256,
        size=file.size,
        requires_python=record.requires_python,
        yanked=record.yanked,
        # Offered only when Headwater can verify what it serves: with a known hash.
        core_metadata=record.core_metadata or None,
        upload_time=_upload_time(record.timestamp),
    )


def _upload_time(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp / 1000, dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


async def _serve_file(
    request: Request, resources: Resources, served: Served, project: str, filename: str
) -> Response:
    channel_id, revision = served.channel.id, served.revision
    metadata = filename.endswith(".metadata")
    dist = filename.removesuffix(".metadata")

    def find() -> ServableFile | None:
        with resources.db.reading() as session:
            if metadata:
                return packages.find_core_metadata(session, channel_id, project, dist, revision)
            return packages.find_file(session, channel_id, project, dist, revision)

    file = await run_in_threadpool(find)
    if file is None:
        raise PackageFileNotFoundError(
            f"channel {served.segment!r} has no file {project}/{filename}"
        )
    media = "text/plain; charset=utf-8" if metadata else "application/octet-stream"
    response = await serve_file(request, resources, served.channel, file, media_type=media)
    return served.label(response)
