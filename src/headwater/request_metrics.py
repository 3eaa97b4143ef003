"""Counting every HTTP request for /metrics: by route template, method and status class, its
time to the last byte, and the bytes of its body; and its access line, when the access log is
on (`HEADWATER_ACCESS_LOG`).

The access line is Headwater's own, whichever server runs it (theirs stay off in `headwater
serve`): uvicorn's shape (`client - "METHOD target HTTP/v" status`) on the `headwater.access`
logger, tokens redacted (logs.redact_target), the request's fields in JSON logs. Made here, on
the request's own thread once its last byte is out (and written with others a moment later,
logs.BatchedStreamHandler), it costs a fraction of what Granian's did (an access record handed
across from the server's threads for every request).

Pure ASGI, outermost, so that it sees what answers before routing too (the simple pages' fast
path, the request guards). The route is the template the router matched, read from the scope
after the answer; a request answered before routing is matched against the routes once per
distinct path (a bounded cache), and a path no route takes is `unmatched`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from fastapi.routing import iter_route_contexts
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headwater.logs import ACCESS_LOGGER, redact_target
from headwater.metrics import HttpTally

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PATHS_REMEMBERED = 4096
_PATH_REMEMBERED = 512  # characters: a longer path is matched each time, not kept
_ACCESS = logging.getLogger(ACCESS_LOGGER)
_ACCESS_LINE = '%s - "%s %s HTTP/%s" %d'
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class RequestMetrics:
    """Counts what `app` answers; `routed` is the application whose routes name the requests."""

    def __init__(self, app: ASGIApp, routed: Starlette, access_log: bool = False) -> None:
        self.app = app
        self.routed = routed
        self.access_log = access_log
        self._templates: dict[tuple[str, str], str] = {}  # (method, path) answered unrouted
        self.tally = HttpTally()
        self._table: _Table | None = None  # read from the app at the first need

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # As it came: routing changes the scope (a mount's root_path).
        asked = _Asked(
            scope["method"], scope["path"], scope.get("root_path", ""), scope.get("query_string")
        )
        status = 0
        sent = 0
        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self._record(scope, asked, status, sent, time.perf_counter() - started)

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body":
                body = message.get("body")
                if body:
                    sent += len(body)
                if not message.get("more_body"):
                    try:
                        await send(message)
                    finally:
                        record()  # the last byte is out: what runs after is not the answer's
                    return
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            status = status or 500  # the server answers 500 outside this middleware
            raise
        finally:
            record()

    def _record(self, scope: Scope, asked: _Asked, status: int, sent: int, elapsed: float) -> None:
        method = asked.method if asked.method in _METHODS else "other"
        status_class = _STATUS_CLASSES.get(status // 100, "none")  # none: the client left
        self.tally.count(self._route(scope, asked), method, status_class, elapsed, sent)
        if self.access_log and status and _ACCESS.isEnabledFor(logging.INFO):
            _log_access(scope, asked, status)

    def _route(self, scope: Scope, asked: _Asked) -> str:
        if self._table is None:
            self._table = _Table.of(self.routed.routes)
        route = scope.get("route")
        if isinstance(route, Route | Mount):
            # As included (a prefix given to include_router is not in the route's own path).
            return self._table.paths.get(id(route), route.path)
        key = (asked.method, asked.path)
        template = self._templates.get(key)
        if template is None:
            root, path = asked.root_path, asked.path
            path = path[len(root) :] if path.startswith(root) else path
            template = self._table.match(asked.method, path)
            if len(asked.path) <= _PATH_REMEMBERED:
                if len(self._templates) >= _PATHS_REMEMBERED:
                    self._templates.clear()
                self._templates[key] = template
        return template


class _Asked(NamedTuple):
    method: str
    path: str
    root_path: str
    query_string: bytes | None


def _log_access(scope: Scope, asked: _Asked, status: int) -> None:
    """The line, made as `_ACCESS.info` would make it but for the caller's file and line,
    which say nothing here and cost as much as the rest (logging walks the stack for them)."""
    client = scope.get("client")
    query = asked.query_string
    target = f"{asked.path}?{query.decode('latin-1')}" if query else asked.path
    arguments = (
        f"{client[0]}:{client[1]}" if client else "-",
        asked.method,
        redact_target(target),
        scope.get("http_version", "1.1"),
        status,
    )
    _ACCESS.handle(
        _ACCESS.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, _ACCESS_LINE, arguments, None)
    )


@dataclass(frozen=True)
class _Template:
    pattern: re.Pattern[str]
    methods: frozenset[str]  # empty: any (a mount)
    path: str


@dataclass(frozen=True)
class _Table:
    """The application's routes as the router tries them, included routers flattened."""

    templates: list[_Template]
    paths: dict[int, str]  # id of a route → its path as included, where it is included once

    @classmethod
    def of(cls, routes: Sequence[BaseRoute]) -> _Table:
        templates = []
        paths: dict[int, str | None] = {}
        for context in iter_route_contexts(routes):
            path = str(context.path)
            mounted = isinstance(context.original_route, Mount)
            pattern, _, _ = compile_path(path + "/{path:path}" if mounted else path)
            templates.append(_Template(pattern, frozenset(context.methods or ()), path))
            key = id(context.original_route)
            paths[key] = path if paths.get(key, path) == path else None
        return cls(templates, {key: path for key, path in paths.items() if path is not None})

    def match(self, method: str, path: str) -> str:
        """The template of the route the router would take for this request (or of one
        taking its path with another method)."""
        partial = None
        for template in self.templates:
            if template.pattern.match(path):
                if not template.methods or method in template.methods:
                    return template.path
                partial = partial or template.path
        return partial or UNMATCHED
