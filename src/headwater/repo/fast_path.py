"""Repository reads answered before the framework: conda's files (repo/conda_fast_path.py)
and the simple pages of public channels.

It sits in front of FastAPI's own middleware (app.HeadwaterApp), so what it answers carries the
security headers guards.SecurityHeaders gives the application's answers, and it leaves to the
application, whose guards judge them, the requests those guards look at: a body, a query, a
control character.

A package manager asks for the same project pages over and over. Once a full request has
rendered a page (repo/pypi.py keeps it in the app's PageCache) and found the channel public
(PublicChannels), later anonymous requests for it are answered here: no routing, no thread
hop, no database query. Everything else — credentials, redirects, PyPI files, pages not
rendered yet, a channel not seen for a second — goes on to the application unchanged.
"""

from __future__ import annotations

import asyncio
import logging

from packaging.utils import canonicalize_name
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headwater.formats.pypi.simple import JSON_MEDIA, wants_json
from headwater.guards import SECURITY_HEADERS
from headwater.inputs import has_control_characters
from headwater.repo.access import REVISION_HEADER, refresh_public_channel
from headwater.repo.conda_fast_path import CondaFastPath, conda_address
from headwater.repo.responses import INDEX_CACHE_CONTROL, etag_matches
from headwater.repo.sending import Answer, send_answer
from headwater.resources import Resources

_PREFIX = "/api/repo/"
_CREDENTIALS = (b"authorization", b"x-auth")
log = logging.getLogger(__name__)


class RepositoryFastPath:
    """Answers what it can of `app`'s repository reads; `owner` is the application whose
    resources (its lifespan opens them) answer them."""

    def __init__(self, app: ASGIApp, owner: Starlette) -> None:
        self.app = app
        self.owner = owner
        self._refreshes: set[asyncio.Task[None]] = set()
        self._conda: CondaFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and scope["path"].startswith(_PREFIX)
            and not scope.get("query_string")
            and not has_control_characters(scope["path"])
        ):
            resources = getattr(self.owner.state, "resources", None)
            if resources is not None and await self._answered(resources, scope, receive, send):
                return
        await self.app(scope, receive, send)

    async def _answered(
        self, resources: Resources, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        try:
            page, found = await self._answer(resources, scope)
        except Exception as error:  # the application answers, and says what failed
            log.warning("the fast path left a request to the application: %r", error)
            return False
        if page is not None:
            for message in page:
                await send(message)
            return True
        if found is not None:
            await send_answer(found, scope, receive, send, SECURITY_HEADERS)
            return True
        return False

    async def _answer(
        self, resources: Resources, scope: Scope
    ) -> tuple[list[Message] | None, Answer | None]:
        """A simple page's messages, or a conda answer; neither: the application answers."""
        headers = dict(scope["headers"])
        if b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0":
            return None, None  # a body: the guards' to measure (413 past the limit)
        page = self._cached_answer(resources, scope, headers)
        if page is not None:
            return page, None
        address = conda_address(scope["path"])
        if address is None:
            return None, None
        return None, await self._conda_path(resources).answer(scope, address, headers)

    def _conda_path(self, resources: Resources) -> CondaFastPath:
        """The conda fast path of the app's resources (made at the first request after the
        lifespan opened them)."""
        if self._conda is None or self._conda.resources is not resources:
            self._conda = CondaFastPath(resources)
        return self._conda

    def _cached_answer(
        self, resources: Resources, scope: Scope, headers: dict[bytes, bytes]
    ) -> list[Message] | None:
        address = _page_address(scope["path"])
        if address is None:
            return None
        if any(name in headers for name in _CREDENTIALS):
            return None
        channel, project = address
        known = resources.public_channels.lookup(channel)
        if known is None:
            return None
        channel_id, revision, stale = known
        if stale and resources.public_channels.claim_refresh(channel):
            self._refresh(resources, channel)
        accept = headers.get(b"accept")
        as_json = wants_json(accept.decode("latin-1") if accept is not None else None)
        page = resources.pages.get((channel_id, revision, project, as_json))
        if page is None:
            return None
        return _page_messages(scope, headers, page, as_json, revision)

    def _refresh(self, resources: Resources, channel: str) -> None:
        """Read the channel again in a thread while this request is answered from cache."""
        task = asyncio.get_running_loop().create_task(
            run_in_threadpool(refresh_public_channel, resources, channel)
        )
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)


def _page_address(path: str) -> tuple[str, str] | None:
    """(channel, project) of `/api/repo/<channel>/simple/[<project>/]`; "" for the index."""
    if not path.startswith(_PREFIX) or not path.endswith("/"):
        return None
    parts = path[len(_PREFIX) : -1].split("/")
    if len(parts) == 2 and parts[1] == "simple":
        return parts[0], ""
    if len(parts) == 3 and parts[1] == "simple" and parts[2] == canonicalize_name(parts[2]):
        return parts[0], parts[2]
    return None


def _page_messages(
    scope: Scope, headers: dict[bytes, bytes], page: tuple[str, bytes], as_json: bool, revision: int
) -> list[Message]:
    digest, body = page
    etag = f'"{digest}"'
    common = [
        (b"etag", etag.encode()),
        (b"cache-control", f"public, {INDEX_CACHE_CONTROL}".encode()),
        (b"vary", b"Accept"),
        (REVISION_HEADER.lower().encode(), str(revision).encode()),
    ]
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), etag):
        return [
            {"type": "http.response.start", "status": 304, "headers": common + SECURITY_HEADERS},
            {"type": "http.response.body", "body": b""},
        ]
    media = JSON_MEDIA if as_json else "text/html; charset=utf-8"
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", media.encode()),
            (b"content-length", str(len(body)).encode()),
            *common,
            *SECURITY_HEADERS,
        ],
    }
    content = b"" if scope["method"] == "HEAD" else body
    return [start, {"type": "http.response.body", "body": content}]
