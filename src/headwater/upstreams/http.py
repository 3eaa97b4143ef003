"""How Headwater talks to upstreams: one client for every outbound request, with the allowlist
checked on each hop, connections only to permitted addresses, retries, and readable errors."""

from __future__ import annotations

import dataclasses
import http
import os
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import stamina

from headwater import __version__
from headwater.allowlist import PROXY_SCHEMES, locate, url_allowed
from headwater.errors import UpstreamError, UpstreamFileMissingError, UpstreamNotAllowedError
from headwater.inputs import has_control_characters
from headwater.upstreams.addresses import AddressPolicy, address_policy
from headwater.upstreams.bodies import DOCUMENT_ENCODINGS, read_document
from headwater.upstreams.transport import AiohttpTransport

USER_AGENT = f"headwater/{__version__}"
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MISSING_STATUS = frozenset({404, 410})  # the upstream does not have what was asked for
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, retries, concurrency and reachable places for outbound requests; built from
    settings at the edge. Every request, redirects included, must stay inside `allowlist`;
    connections go to public addresses, to addresses `allowlist` entries name, or into
    `private_networks`; a mirror's proxy must be one of `proxies`."""

    timeout: float = 60.0
    attempts: int = 4
    backoff: float = 1.0
    concurrency: int = 8
    allowlist: tuple[str, ...] = ()
    private_networks: tuple[str, ...] = ()
    proxies: tuple[str, ...] = ()

    def addresses(self, proxy: str | None = None) -> AddressPolicy:
        host = urlsplit(proxy).hostname if proxy else None
        trusted = frozenset({host.lower()} if host else ())
        return address_policy(self.allowlist, self.private_networks, trusted)

    def naming(self, *urls: str) -> HttpPolicy:
        """This policy with `urls` allowed too: for places the operator named in settings or on
        the command line (CVE feeds), which need no allowlist entry of their own."""
        return dataclasses.replace(self, allowlist=(*self.allowlist, *urls))

    def quick(self, timeout: float) -> HttpPolicy:
        """One attempt, with at most `timeout` seconds per request: for checks a person waits on."""
        return dataclasses.replace(self, timeout=min(self.timeout, timeout), attempts=1)


@dataclass(frozen=True)
class Validators:
    """HTTP validators of the repodata a run last published, for a conditional request."""

    url: str
    etag: str | None
    last_modified: str | None


MAX_VALIDATOR_LENGTH = 1024
_SENDABLE = re.compile(r"[\x20-\x7e\t]*")


def validator(headers: httpx.Headers, name: str) -> str | None:
    """An upstream's ETag or Last-Modified, kept only when it can be sent back as it is
    (printable ASCII, at most MAX_VALIDATOR_LENGTH): any other would fail every later
    conditional request of the mirror."""
    value = headers.get(name)
    return value if value is not None and _sendable(value) else None


def _sendable(value: str) -> bool:
    return len(value) <= MAX_VALIDATOR_LENGTH and _SENDABLE.fullmatch(value) is not None


def conditional_headers(validators: Validators | None, url: str) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for `url` when the last run fetched that same URL
    (a value stored before it was checked, and not sendable, is left out)."""
    if validators is None or validators.url != url:
        return {}
    headers = {}
    if validators.etag and _sendable(validators.etag):
        headers["If-None-Match"] = validators.etag
    if validators.last_modified and _sendable(validators.last_modified):
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def status_text(status: int) -> str:
    """`404 Not Found`: the standard phrase, not the one the other end sent."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} (unknown status)"


class TransientStatusError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(status_text(response.status_code))
        self.status_code = response.status_code


def normalize_source_root(url: str) -> str:
    """The upstream root URL with exactly one trailing slash, or an error naming what is wrong."""
    if not isinstance(url, str) or has_control_characters(url):
        raise UpstreamNotAllowedError(
            "source_root must be an http(s) URL without control characters"
        )
    url = url.strip()
    if locate(url) is None:
        raise UpstreamNotAllowedError(f"source_root {url!r} is not an http(s) URL")
    return url.rstrip("/") + "/"


def check_allowed(url: str, allowlist: Sequence[str]) -> None:
    """Refuse upstreams outside HEADWATER_UPSTREAM_ALLOWLIST."""
    if not url_allowed(url, allowlist):
        allowed = ", ".join(allowlist) or "(none)"
        raise UpstreamNotAllowedError(
            f"upstream {url!r} is not allowed; HEADWATER_UPSTREAM_ALLOWLIST permits URLs "
            f"under: {allowed}"
        )


def check_proxy(proxy: object, proxies: Sequence[str]) -> str | None:
    """A mirror's proxy: None, or one of HEADWATER_PROXY_ALLOWLIST (compared by scheme, host
    and port); anything else is refused with the list of proxies that may be used."""
    if proxy is None or proxy == "":
        return None
    if not isinstance(proxy, str) or has_control_characters(proxy):
        raise UpstreamNotAllowedError("proxy must be a URL without control characters")
    scheme = urlsplit(proxy).scheme
    if scheme not in PROXY_SCHEMES:
        raise UpstreamNotAllowedError(f"proxy {proxy!r} must be an http or https URL")
    if not any(_same_proxy(proxy, allowed) for allowed in proxies):
        offered = ", ".join(_shown(allowed) for allowed in proxies)
        raise UpstreamNotAllowedError(
            f"proxy {_shown(proxy)!r} is not one of HEADWATER_PROXY_ALLOWLIST"
            + (f" ({offered})" if offered else " (no proxy may be used)")
        )
    return proxy


def _same_proxy(proxy: str, allowed: str) -> bool:
    ours, theirs = urlsplit(proxy), urlsplit(allowed)
    try:
        return (
            ours.scheme == theirs.scheme
            and (ours.hostname or "") == (theirs.hostname or "")
            and ours.port == theirs.port
            and ours.username == theirs.username
            and ours.password == theirs.password
        )
    except ValueError:
        return False


def _shown(url: str) -> str:
    """A URL as people may see it: without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def shown_url(url: str | None) -> str | None:
    return _shown(url) if url else url


def _stay_inside(allowlist: tuple[str, ...]) -> Callable[[httpx.Request], Awaitable[None]]:
    async def check(request: httpx.Request) -> None:
        if not url_allowed(request.url, allowlist):
            raise UpstreamError(
                f"{_shown(str(request.url))} is outside HEADWATER_UPSTREAM_ALLOWLIST (reached "
                "through a redirect or a repodata base_url); refusing to fetch it"
            )

    return check


@asynccontextmanager
async def upstream_client(
    policy: HttpPolicy,
    *,
    proxy: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The client every outbound request goes through: the allowlist on every request (each
    redirect hop too), sent by aiohttp to addresses the policy permits (upstreams/transport)."""
    if proxy is not None:
        try:
            proxy = check_proxy(proxy, policy.proxies)
        except UpstreamNotAllowedError as error:  # saved before the setting changed
            raise UpstreamError(error.message) from None
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(policy.timeout),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        # Files are asked for as they are stored; index requests ask for what bodies.py decodes.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        transport=AiohttpTransport(policy.addresses(proxy), proxy, policy.concurrency + 4),
        trust_env=False,
        event_hooks={"request": [_stay_inside(policy.allowlist)]},
    ) as client:
        yield client


# What a request to an upstream can end in, besides an answer: a transport failure, a redirect
# loop, a status worth retrying. Each is described by describe_failure.
REQUEST_FAILURES = (httpx.TransportError, httpx.TooManyRedirects, TransientStatusError)


def is_transient(error: BaseException) -> bool:
    """Worth another attempt: the network, a timeout, an answer that says try again; not a
    request that cannot be sent as it is, which fails the same way every time."""
    if isinstance(error, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return False
    return isinstance(error, httpx.TransportError | TransientStatusError)


def retrying(policy: HttpPolicy) -> stamina._core._RetryContextIterator:
    """Attempts with exponential backoff for connection errors, timeouts and 5xx/429 answers."""
    return stamina.retry_context(
        on=is_transient,
        attempts=policy.attempts,
        timeout=None,
        wait_initial=policy.backoff,
        wait_max=max(policy.backoff * 16, policy.backoff),
        wait_jitter=policy.backoff,
    )


def raise_for_transient(response: httpx.Response) -> None:
    if response.status_code in _TRANSIENT_STATUS:
        raise TransientStatusError(response)


def describe_failure(error: Exception, url: str, attempts: int) -> UpstreamError:
    """One sentence for the run's history about why `url` could not be read. Nothing the other
    end sent is repeated: a service that is not an upstream must not be read through it."""
    attempts = attempts if is_transient(error) else 1  # the others are not tried again
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    shown = _shown(url)
    if isinstance(error, TransientStatusError):
        return UpstreamError(f"upstream answered {error} for {shown} ({tries})")
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(f"upstream timed out for {shown} ({tries})")
    return UpstreamError(f"could not read {shown}: {describe_transport_error(error)} ({tries})")


def describe_transport_error(error: Exception) -> str:
    if isinstance(error, httpx.LocalProtocolError):
        return "the request could not be sent as it is (a header or the URL)"
    if isinstance(error, httpx.UnsupportedProtocol):
        return "not an http(s) URL"
    if isinstance(error, httpx.ProtocolError):
        return "the other end did not answer with valid HTTP"
    if isinstance(error, httpx.ConnectError):
        return f"could not connect ({_os_reason(error)})"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(error, httpx.DecodingError):
        return "the response's content encoding is broken"
    return type(error).__name__


def _os_reason(error: Exception) -> str:
    """The operating system's words for a failed connection ("Connection refused"), which come
    from this machine, not from the other end."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError) and cause.strerror:
            return cause.strerror  # OpenSSL's words; its errno is not the system's
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno)  # asyncio's strerror names the address instead
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror  # a resolver's (negative errno)
        cause = cause.__cause__ or cause.__context__
    text = str(error)
    return text if len(text) < 200 and "\n" not in text else type(error).__name__


def status_error(response: httpx.Response) -> UpstreamError:
    """The error for an answer other than the one asked for; for 404 and 410, an
    UpstreamFileMissingError (a run may leave such a file out rather than fail)."""
    url = str(response.request.url)
    message = f"upstream answered {status_text(response.status_code)} for {_shown(url)}"
    if response.status_code in MISSING_STATUS:
        return UpstreamFileMissingError(message, url, response.status_code)
    return UpstreamError(message)


async def get_capped(
    client: httpx.AsyncClient,
    policy: HttpPolicy,
    url: str,
    headers: dict[str, str] | None,
    *,
    limit: int,
) -> tuple[int, httpx.Headers, bytearray]:
    """GET an index document with retries, reading at most `limit` bytes of it once decoded
    (upstreams/bodies.py): (status, headers, body).

    304 and 404 come back with an empty body; other answers than 200 raise UpstreamError.
    """
    asked = {**(headers or {}), "Accept-Encoding": DOCUMENT_ENCODINGS}
    try:
        async for attempt in retrying(policy):
            with attempt:
                async with client.stream("GET", url, headers=asked) as response:
                    raise_for_transient(response)
                    if response.status_code in (304, 404):
                        return response.status_code, response.headers, bytearray()
                    if response.status_code != 200:
                        raise status_error(response)
                    body = await read_document(response, policy.timeout, limit)
                    return 200, response.headers, body
    except REQUEST_FAILURES as error:
        raise describe_failure(error, url, policy.attempts) from None
    raise AssertionError("unreachable")
