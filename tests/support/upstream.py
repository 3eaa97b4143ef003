"""A real HTTP server on loopback serving a directory as an upstream, with faults on demand."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import socket
import socketserver
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Fault:
    status: int | None = None  # answer this status instead
    delay: float = 0.0  # sleep before answering
    body: bytes | None = None  # serve these bytes instead of the file
    times: int | None = None  # apply this many times, then serve normally
    trickle: float = 0.0  # send the body in 16 KiB pieces, sleeping this long between them
    redirect: str | None = None  # answer 302 to this URL
    headers: dict[str, str] = field(default_factory=dict)  # sent with the answer
    drip: float = 0.0  # send the body a byte at a time, sleeping this long between bytes


@dataclass
class Upstream:
    root: Path
    url: str
    requests: Counter[str] = field(default_factory=Counter)
    conditional_hits: Counter[str] = field(default_factory=Counter)
    faults: dict[str, Fault] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        return self.requests[path]

    def file_requests(self) -> int:
        return sum(
            n
            for path, n in self.requests.items()
            if path.endswith((".conda", ".tar.bz2", ".whl", ".tar.gz", ".zip"))
        )

    def fault(self, path: str) -> Fault | None:
        with self.lock:
            fault = self.faults.get(path)
            if fault is None:
                return None
            if fault.times is not None:
                if fault.times <= 0:
                    return None
                fault.times -= 1
            return fault


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            with upstream.lock:
                upstream.requests[path] += 1
            fault = upstream.fault(path)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.redirect:
                self.send_response(302)
                self.send_header("Location", fault.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault and fault.status:
                self._send(fault.status, b"injected failure\n", "text/plain", head=head)
                return
            target = (upstream.root / path.lstrip("/")).resolve()
            if fault and fault.body is not None:
                self._send(
                    200,
                    fault.body,
                    "application/octet-stream",
                    head=head,
                    trickle=fault.trickle,
                    extra=fault.headers,
                    drip=fault.drip,
                )
                return
            if not target.is_relative_to(upstream.root.resolve()):
                self._send(404, b"not found\n", "text/plain", head=head)
                return
            target, media = _negotiated(target, self.headers.get("Accept", ""))
            if not target.is_file():
                self._send(404, b"not found\n", "text/plain", head=head)
                return
            body = target.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            modified = email.utils.formatdate(target.stat().st_mtime, usegmt=True)
            if self.headers.get("If-None-Match") == etag:
                with upstream.lock:
                    upstream.conditional_hits[path] += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(
                200,
                body,
                media,
                head=head,
                etag=etag,
                modified=modified,
                trickle=fault.trickle if fault else 0.0,
            )

        def _send(
            self,
            status: int,
            body: bytes,
            media: str,
            *,
            head: bool,
            etag: str | None = None,
            modified: str | None = None,
            trickle: float = 0.0,
            extra: dict[str, str] | None = None,
            drip: float = 0.0,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            if etag:
                self.send_header("ETag", etag)
            if modified:
                self.send_header("Last-Modified", modified)
            self.end_headers()
            if head:
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if drip:
                    for index in range(len(body)):
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                        time.sleep(drip)
                    return
                if not trickle:
                    self.wfile.write(body)
                    return
                for start in range(0, len(body), 16384):
                    self.wfile.write(body[start : start + 16384])
                    self.wfile.flush()
                    time.sleep(trickle)

    return Handler


_JSON_PAGE = "application/vnd.pypi.simple.v1+json"


def _negotiated(target: Path, accept: str) -> tuple[Path, str]:
    """What a web server would answer for a path: a directory's index page (its PEP 691
    `index.json` when there is one and the client accepts it), and the file's media type."""
    if target.is_dir():
        json_page = target / "index.json"
        if json_page.is_file() and _JSON_PAGE in accept:
            return json_page, _JSON_PAGE
        target = target / "index.html"
    if target.suffix == ".html":
        return target, "text/html; charset=utf-8"
    return target, "application/octet-stream"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up mid-answer is normal here; say nothing of it."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Run `server` on a daemon thread until the block ends, then stop it and free its port."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_directory(root: Path) -> Iterator[Upstream]:
    """Serve `root` on a free loopback port until the block ends."""
    state = Upstream(root=root, url="")
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    port = server.server_address[1]
    state.url = f"http://127.0.0.1:{port}/"
    with _serving(server):
        yield state


@dataclass
class Proxy:
    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def forward_proxy() -> Iterator[Proxy]:
    """A plain HTTP forward proxy on loopback that relays GET and HEAD and records the URLs."""
    import urllib.error
    import urllib.request

    state = Proxy(url="")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._relay("GET")

        def do_HEAD(self) -> None:
            self._relay("HEAD")

        def _relay(self, method: str) -> None:
            state.requests.append(self.path)  # a proxy sees the absolute URL
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in ("if-none-match", "if-modified-since")
            }
            request = urllib.request.Request(self.path, method=method, headers=headers)
            try:
                with opener.open(request) as upstream:
                    status, body, upstream_headers = (
                        upstream.status,
                        upstream.read(),
                        upstream.headers,
                    )
            except urllib.error.HTTPError as error:
                status, body, upstream_headers = error.code, error.read(), error.headers
            self.send_response(status)
            for name in ("Content-Type", "ETag", "Last-Modified"):
                if upstream_headers.get(name):
                    self.send_header(name, upstream_headers[name])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method == "GET":
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

    server = _QuietServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    with _serving(server):
        yield state


@dataclass
class Listener:
    """A TCP service that is not an upstream (a cache, a database, an admin port): it counts
    the connections it accepts and answers each with `banner`."""

    url: str
    port: int
    banner: bytes
    connections: int = 0


@contextmanager
def listener(banner: bytes = b"-ERR secret-banner-7f3a internal service\r\n") -> Iterator[Listener]:
    state = Listener(url="", port=0, banner=banner)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            state.connections += 1
            with contextlib.suppress(OSError):
                self.request.settimeout(2)
                self.request.recv(4096)
                self.request.sendall(state.banner)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = socket.AF_INET

    server = Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    state.url = f"http://127.0.0.1:{state.port}"
    with _serving(server):
        yield state
