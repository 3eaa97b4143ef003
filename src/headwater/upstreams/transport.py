"""httpx's transport for upstream requests, sent by aiohttp.

Code above this module speaks httpx (requests, responses, its errors, redirects followed one
hop at a time with the allowlist checked on each). Underneath, aiohttp makes the connections
and reads the bytes: at thousands of small downloads httpcore's pool, which checks every
connection's liveness and wraps each read in cancel scopes, took most of an active run's time
(docs/performance.md). Every connection goes to an address the policy permits: names through
`GuardedResolver`, address hosts through `check_literal`; a proxy is trusted as the operator
named it.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
import yarl

from headwater.upstreams.addresses import AddressPolicy, GuardedResolver, check_literal

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_HEADER_BYTES = 64 << 10
MAX_HEADERS = 256


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per client: at most `connections` open, kept alive between
    requests, no cookies, bodies passed on as the upstream sent them (httpx decodes)."""

    def __init__(self, policy: AddressPolicy, proxy: str | None, connections: int) -> None:
        self._policy = policy
        self._proxy = proxy
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections,
                resolver=GuardedResolver(self._policy),
                ssl=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
                # h11's bounds, which upstreams met before (aiohttp's own are 8 KiB, 128)
                max_line_size=MAX_HEADER_BYTES,
                max_field_size=MAX_HEADER_BYTES,
                max_headers=MAX_HEADERS,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._proxy is None:
            check_literal(self._policy, request.url.host)
        timeout = request.extensions.get("timeout", {})
        # httpx has made a URL's credentials the Authorization header; they are not sent twice
        url = request.url.copy_with(userinfo=b"") if request.url.userinfo else request.url
        sent = await request.aread() if request.method not in ("GET", "HEAD") else None
        with _as_httpx_errors():
            response = await self._opened().request(
                request.method,
                # as httpx built it (and the allowlist checked it): not quoted again
                yarl.URL(str(url), encoded=True),
                headers=request.headers.multi_items(),
                data=sent or None,
                allow_redirects=False,
                proxy=self._proxy,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        body: httpx.AsyncByteStream = _ResponseBody(response)
        if response.status in REDIRECTS and "Location" in response.headers:
            # httpx reads a redirect's whole body into memory before following it: an upstream
            # could send gigabytes there. Its body is nobody's; the connection goes with it.
            response.close()
            body = httpx.ByteStream(b"")
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=body,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """certifi's authorities, or those SSL_CERT_FILE / SSL_CERT_DIR name (an internal CA): the
    operator's environment, never a mirror's setting. Made once per process and per value of
    those variables (httpx reads them; they key the cache here): loading the authorities took
    18 ms on the event loop for every client, each run, preview and project check."""
    return httpx.create_ssl_context()


class _ResponseBody(httpx.AsyncByteStream):
    """The body as aiohttp reads it, in whatever pieces arrive; closing it early closes the
    connection instead of handing back one with unread bytes."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """aiohttp's errors as the httpx errors callers judge and describe (upstreams/http.py);
    the original stays the cause, so the operating system's reason can still be read."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as error:
        # a failed connection's own error (refused, a resolver's, OpenSSL's) is what describes it
        cause = error.os_error if isinstance(error, aiohttp.ClientConnectorError) else error
        raise _httpx_error(error)(type(error).__name__) from cause
    except (ValueError, UnicodeError) as error:  # a header aiohttp will not send
        raise httpx.LocalProtocolError(type(error).__name__) from error


def _httpx_error(error: BaseException) -> type[httpx.TransportError]:
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout
    if isinstance(error, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout
    if isinstance(error, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError
    if isinstance(error, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol
    if isinstance(
        error,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError
    return httpx.ReadError
