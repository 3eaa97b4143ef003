"""How Headwater talks to upstreams: allowed URLs, the client, retries, and readable errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import stamina

from headwater import __version__
from headwater.allowlist import url_allowed
from headwater.errors import UpstreamError, UpstreamNotAllowedError

USER_AGENT = f"headwater/{__version__}"
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, retries, concurrency and allowed hosts for upstream requests; built from
    settings at the edge. Every request, redirects included, must stay inside `allowlist`."""

    timeout: float = 60.0
    attempts: int = 4
    backoff: float = 1.0
    concurrency: int = 8
    allowlist: tuple[str, ...] = ()


@dataclass(frozen=True)
class Validators:
    """HTTP validators of the repodata a run last published, for a conditional request."""

    url: str
    etag: str | None
    last_modified: str | None


def conditional_headers(validators: Validators | None, url: str) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for `url` when the last run fetched that same URL."""
    if validators is None or validators.url != url:
        return {}
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


class TransientStatusError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.reason_phrase}")
        self.status_code = response.status_code
        self.reason = response.reason_phrase


def normalize_source_root(url: str) -> str:
    """The upstream root URL with exactly one trailing slash, or an error naming what is wrong."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
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


def check_proxy(proxy: str | None) -> str | None:
    if not proxy:
        return None
    if urlsplit(proxy).scheme not in ("http", "https", "socks5", "socks5h"):
        raise UpstreamNotAllowedError(f"proxy {proxy!r} must be an http, https or socks5 URL")
    return proxy


def _stay_inside(allowlist: tuple[str, ...]) -> Callable[[httpx.Request], Awaitable[None]]:
    async def check(request: httpx.Request) -> None:
        url = str(request.url)
        if not url_allowed(url, allowlist):
            raise UpstreamError(
                f"{url} is outside HEADWATER_UPSTREAM_ALLOWLIST (reached through a redirect or "
                "a repodata base_url); refusing to fetch it"
            )

    return check


@asynccontextmanager
async def upstream_client(
    policy: HttpPolicy,
    *,
    proxy: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(
        max_connections=policy.concurrency + 4, max_keepalive_connections=policy.concurrency
    )
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(policy.timeout),
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT},
        limits=limits,
        proxy=proxy,
        transport=transport,
        trust_env=False,
        event_hooks={"request": [_stay_inside(policy.allowlist)]},
    ) as client:
        yield client


def is_transient(error: Exception) -> bool:
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
    """One sentence for the run's history about why `url` could not be read."""
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(error, TransientStatusError):
        return UpstreamError(f"upstream answered {error} for {url} ({tries})")
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(f"upstream timed out for {url} ({tries})")
    if isinstance(error, httpx.TransportError):
        return UpstreamError(
            f"could not reach upstream {url}: {error or type(error).__name__} ({tries})"
        )
    return UpstreamError(f"reading {url} failed: {error}")


def status_error(response: httpx.Response) -> UpstreamError:
    status = f"{response.status_code} {response.reason_phrase}"
    return UpstreamError(f"upstream answered {status} for {response.request.url}")


def too_large(url: str, limit: int) -> UpstreamError:
    return UpstreamError(f"{url} is larger than {limit >> 20} MiB; refusing it")


async def get_capped(
    client: httpx.AsyncClient,
    policy: HttpPolicy,
    url: str,
    headers: dict[str, str] | None,
    *,
    limit: int,
) -> tuple[int, httpx.Headers, bytes]:
    """GET with retries, reading at most `limit` bytes of body: (status, headers, body).

    304 and 404 come back with an empty body; other answers than 200 raise UpstreamError.
    """
    try:
        async for attempt in retrying(policy):
            with attempt:
                async with client.stream("GET", url, headers=headers) as response:
                    raise_for_transient(response)
                    if response.status_code in (304, 404):
                        return response.status_code, response.headers, b""
                    if response.status_code != 200:
                        raise status_error(response)
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise too_large(url, limit)
                    return 200, response.headers, bytes(body)
    except (httpx.TransportError, TransientStatusError) as error:
        raise describe_failure(error, url, policy.attempts) from None
    raise AssertionError("unreachable")
