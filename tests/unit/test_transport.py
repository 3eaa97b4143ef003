"""The upstream transport connects only where the address policy permits, and its failures are
the httpx errors upstreams/http.py describes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from headwater.errors import UpstreamError
from headwater.upstreams.addresses import AddressNotAllowedError, address_policy, is_public
from headwater.upstreams.http import (
    HttpPolicy,
    Validators,
    conditional_headers,
    describe_transport_error,
    get_capped,
    upstream_client,
    validator,
)
from headwater.upstreams.transport import AiohttpTransport
from tests.support.upstream import listener, serve_directory


def _get(policy: HttpPolicy, url: str) -> httpx.Response:
    async def get() -> httpx.Response:
        async with upstream_client(policy) as client:
            response = await client.get(url)
            await response.aread()
            return response

    return asyncio.run(get())


def test_an_address_the_allowlist_names_is_reached_and_its_body_read(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_bytes(b"x" * 300_000)
    with serve_directory(tmp_path) as upstream:
        response = _get(HttpPolicy(allowlist=(upstream.url,)), upstream.url + "index.html")
    assert response.status_code == 200
    assert response.content == b"x" * 300_000


def test_an_address_host_the_policy_does_not_permit_is_never_connected() -> None:
    """The transport's own check, below the allowlist: a host that is an address is never
    resolved, so the resolver's guard cannot see it."""

    async def get(url: str) -> None:
        nothing_named = AiohttpTransport(address_policy((), (), frozenset()), None, 4)
        async with httpx.AsyncClient(transport=nothing_named) as client:
            await client.get(url)

    with listener() as service:
        with pytest.raises(AddressNotAllowedError, match="not a public address"):
            asyncio.run(get(service.url + "/"))
        assert service.connections == 0


def test_a_name_that_resolves_to_loopback_is_never_connected() -> None:
    with listener() as service:
        url = f"http://localhost:{service.port}/"
        with pytest.raises(AddressNotAllowedError, match="localhost resolves to"):
            _get(HttpPolicy(allowlist=(url,)), url)
        assert service.connections == 0


def test_a_private_network_the_operator_names_is_reached(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    with serve_directory(tmp_path) as upstream:
        url = upstream.url.replace("127.0.0.1", "localhost") + "a"
        policy = HttpPolicy(allowlist=(url,), private_networks=("127.0.0.0/8",))
        assert _get(policy, url).content == b"a"


def test_a_refused_connection_is_a_connect_error_with_the_systems_reason() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(httpx.ConnectError) as raised:
        _get(HttpPolicy(allowlist=(url,)), url)
    assert describe_transport_error(raised.value) == "could not connect (Connection refused)"


def test_a_service_that_is_not_http_is_a_protocol_error() -> None:
    with listener() as service:
        url = service.url + "/"
        with pytest.raises(httpx.RemoteProtocolError) as raised:
            _get(HttpPolicy(allowlist=(url,)), url)
    assert describe_transport_error(raised.value) == "the other end did not answer with valid HTTP"


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "127.0.0.1."])
def test_an_address_in_an_old_form_is_refused_before_anything_is_connected(host: str) -> None:
    with listener() as service:
        url = f"http://{host}:{service.port}/"
        with pytest.raises(AddressNotAllowedError, match="a form Headwater does not read"):
            _get(HttpPolicy(allowlist=(url,)), url)
        assert service.connections == 0


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 to 8.8.8.8
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("192.0.0.192", False),  # Oracle Cloud's metadata service
        ("64:ff9b::a00:1", False),  # NAT64 to 10.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("64:ff9b:1::1", False),  # local-use NAT64
        ("::a00:1", False),  # IPv4-compatible
        ("::ffff:0:a00:1", False),  # IPv4-translated
        ("169.254.169.254", False),
        ("ff02::1", False),
    ],
)
def test_addresses_that_carry_another_are_judged_by_it(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


class _Redirecting(BaseHTTPRequestHandler):
    """/big answers 302 to /small with a large body; /loop redirects to itself."""

    protocol_version = "HTTP/1.1"
    sent = 0
    BIG = 64 << 20

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/small":
            self._answer(200, b"small", {})
        elif self.path == "/loop":
            self._answer(302, b"", {"Location": "/loop"})
        else:
            self.send_response(302)
            self.send_header("Location", "/small")
            self.send_header("Content-Length", str(self.BIG))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            with contextlib.suppress(OSError):
                for _ in range(self.BIG >> 20):
                    self.wfile.write(chunk)
                    type(self).sent += len(chunk)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def redirecting() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirects_body_is_never_read(redirecting: str) -> None:
    response = _get(HttpPolicy(allowlist=(redirecting + "/",)), redirecting + "/big")
    assert response.content == b"small"
    assert response.history[0].content == b""
    assert _Redirecting.sent < _Redirecting.BIG


def test_a_redirect_loop_is_an_upstream_error_that_says_so(redirecting: str) -> None:
    async def read() -> None:
        policy = HttpPolicy(allowlist=(redirecting + "/",), attempts=1)
        async with upstream_client(policy) as client:
            await get_capped(client, policy, redirecting + "/loop", None, limit=1 << 20)

    with pytest.raises(UpstreamError, match="more than 10 redirects"):
        asyncio.run(read())


def test_a_validator_that_cannot_be_sent_back_is_not_kept() -> None:
    headers = httpx.Headers({"ETag": '"a\x7fb"', "Last-Modified": "Mon, 07 Dec 2026 10:00:00 GMT"})
    assert validator(headers, "ETag") is None
    assert validator(headers, "Last-Modified") == "Mon, 07 Dec 2026 10:00:00 GMT"
    stored = Validators("http://u/", '"a\x1bb"', "Mon, 07 Dec 2026 10:00:00 GMT")
    assert conditional_headers(stored, "http://u/") == {
        "If-Modified-Since": "Mon, 07 Dec 2026 10:00:00 GMT"
    }


def test_a_service_that_does_not_speak_tls_is_named_by_openssls_words() -> None:
    with listener() as service:
        url = service.url.replace("http://", "https://") + "/"
        with pytest.raises(httpx.ConnectError) as raised:
            _get(HttpPolicy(allowlist=(url,)), url)
    assert "wrong version number" in describe_transport_error(raised.value)


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback with a certificate of its own: (its /small URL, the cert)."""
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(certificate)),
        ],
        check=True,
        capture_output=True,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/small", certificate
    finally:
        server.shutdown()
        server.server_close()


def test_a_certificate_nobody_signed_is_named_by_openssls_words(
    tls_upstream: tuple[str, Path],
) -> None:
    url, _ = tls_upstream
    with pytest.raises(httpx.ConnectError) as raised:
        _get(HttpPolicy(allowlist=(url,)), url)
    assert "certificate verify failed" in describe_transport_error(raised.value)


def test_an_internal_ca_the_environment_names_is_trusted(
    tls_upstream: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, certificate = tls_upstream
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    assert _get(HttpPolicy(allowlist=(url,)), url).content == b"small"


def test_a_header_past_aiohttps_own_8_kib_is_read_as_before(tmp_path: Path) -> None:
    class LargeHeader(_Redirecting):
        def do_GET(self) -> None:
            self._answer(200, b"ok", {"Content-Security-Policy": "a" * 20_000})

    server = ThreadingHTTPServer(("127.0.0.1", 0), LargeHeader)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        assert _get(HttpPolicy(allowlist=(url,)), url).content == b"ok"
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_loop_is_tried_once_and_says_so(redirecting: str) -> None:
    async def read() -> None:
        policy = HttpPolicy(allowlist=(redirecting + "/",), attempts=3, backoff=0.0)
        async with upstream_client(policy) as client:
            await get_capped(client, policy, redirecting + "/loop", None, limit=1 << 20)

    with pytest.raises(UpstreamError, match=r"more than 10 redirects \(after 1 attempt\)"):
        asyncio.run(read())
