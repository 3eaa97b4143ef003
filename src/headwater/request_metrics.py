"""Counting every HTTP request for /metrics: by route template, method and status class, its
time to the last byte, and the bytes of its body; and its access line, when the access log is
on (`HEADWATER_ACCESS_LOG`).

The access line is Headwater's own, whichever server runs it (theirs stay off in `headwater
serve`): uvicorn's shape (`client - "METHOD target HTTP/v" status`) on the `headwater.access`
logger, tokens redacted (logs.redact_target), the request's fields in JSON logs. Written here,
on the request's own thread once its last byte is out, it costs a third of what Granian's did
(an access record handed across from the server's threads for every request).

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
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headwater.logs import ACCESS_LOGGER, redact_target
from headwater.metrics import HTTP_DURATION, HTTP_REQUESTS, HTTP_SENT_BYTES

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PATHS_REMEMBERED = 4096
_ACCESS = logging.getLogger(ACCESS_LOGGER)
_ACCESS_LINE = '%s - "%s %s HTTP/%s" %d'


class RequestMetrics:
    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log
        self._templates: dict[tuple[str, str], str] = {}  # (method, path) answered unrouted
        self._series: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}
        self._table: _Table | None = None  # read from the app at the first need

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        asked = {  # as it came: routing changes the scope (a mount's root_path)
            "type": "http",
            "method": scope["method"],
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "app": scope.get("app"),
            "query_string": scope.get("query_string", b""),
        }
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
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
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

    def _record(self, scope: Scope, asked: Scope, status: int, sent: int, elapsed: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        status_class = f"{status // 100}xx" if status else "none"  # none: the client left
        key = (self._route(scope, asked), method, status_class)
        series = self._series.get(key)
        if series is None:
            route = key[0]
            series = (
                HTTP_REQUESTS.labels(route, method, status_class),
                HTTP_DURATION.labels(route, method),
                HTTP_SENT_BYTES.labels(route),
            )
            self._series[key] = series
        requests, duration, body_bytes = series
        requests.inc()
        duration.observe(elapsed)
        if sent:
            body_bytes.inc(sent)
        if self.access_log and status and _ACCESS.isEnabledFor(logging.INFO):
            _log_access(scope, asked, status)

    def _route(self, scope: Scope, asked: Scope) -> str:
        if self._table is None:
            self._table = _Table.of(getattr(asked["app"], "routes", ()))
        route = scope.get("route")
        if isinstance(route, Route | Mount):
            # As included (a prefix given to include_router is not in the route's own path).
            return self._table.paths.get(id(route), route.path)
        key = (asked["method"], asked["path"])
        template = self._templates.get(key)
        if template is None:
            root = asked["root_path"]
            path = asked["path"][len(root) :] if asked["path"].startswith(root) else asked["path"]
            template = self._table.match(asked["method"], path)
            if len(self._templates) >= _PATHS_REMEMBERED:
                self._templates.clear()
            self._templates[key] = template
        return template


def _log_access(scope: Scope, asked: Scope, status: int) -> None:
    client = scope.get("client")
    query = asked["query_string"].decode("latin-1")
    target = f"{asked['path']}?{query}" if query else asked["path"]
    _ACCESS.info(
        _ACCESS_LINE,
        f"{client[0]}:{client[1]}" if client else "-",
        asked["method"],
        redact_target(target),
        scope.get("http_version", "1.1"),
        status,
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
