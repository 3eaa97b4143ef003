"""What every request passes before routing: a URL without control characters, and a body no
larger than its kind allows (answered 413 before it is read, or as soon as it grows past it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import orjson
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headwater.inputs import has_control_characters

# Bodies that carry package files or advisories; every other body is JSON or a form.
_UPLOAD = re.compile(r"^/api/(?:channels/[^/]+/files|repo/.*)$")
_IMPORT = re.compile(r"^/api/cves/import$")


@dataclass(frozen=True)
class BodyLimits:
    request: int
    upload: int
    imports: int

    def for_request(self, method: str, path: str) -> int:
        if method == "POST" and _UPLOAD.match(path):
            return self.upload
        if method == "POST" and _IMPORT.match(path):
            return self.imports
        return self.request


class BodyTooLargeError(HTTPException):
    """Raised while a body is read, as soon as it grows past its limit; an HTTPException so
    that the framework answers it wherever the body is being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large(limit))


def too_large(limit: int) -> str:
    return f"the request body is larger than {_size(limit)}, the most this endpoint accepts"


def _size(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count} bytes"


class RequestGuard:
    """Refuses a request whose path or query holds a control character (400), and limits the
    size of its body by what the endpoint takes (413)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _url_problem(scope)
        if problem is not None:
            await _refuse(send, 400, problem)
            return
        limit = self.limits.for_request(scope["method"], scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, too_large(limit))  # before a byte of it is read
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLargeError:
            if started:
                raise
            await _refuse(send, 413, too_large(limit))


def _url_problem(scope: Scope) -> str | None:
    if has_control_characters(scope["path"]):
        return "the URL's path contains a control character"
    query = scope.get("query_string", b"")
    if query and any(byte < 0x20 or byte == 0x7F for byte in unquote_to_bytes(query)):
        return "the URL's query contains a control character"
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Pages load scripts, styles and images from Headwater only, run no inline script or style,
# submit forms only to Headwater, and are never framed by another site.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_CSP = b"content-security-policy"
SECURITY_HEADERS = [
    (_CSP, CONTENT_SECURITY_POLICY.encode()),  # first: a page that sets its own keeps it
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the Content-Security-Policy (with frame-ancestors), X-Frame-Options, nosniff and
    a same-origin Referrer-Policy to every response the application makes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                added = SECURITY_HEADERS
                if any(name.lower() == _CSP for name, _ in headers):  # a page's own (/redoc)
                    added = SECURITY_HEADERS[1:]
                message = {**message, "headers": [*headers, *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
