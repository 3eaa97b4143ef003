"""HEADWATER_UPSTREAM_ALLOWLIST: which upstream URLs Headwater may reach, matched by origin and
normalized path.

URLs are read with httpx's parser, the one that makes the requests, so the check and the request
never disagree about which host a URL names. Paths are compared as a server would read them:
percent-escapes decoded, backslashes taken for slashes and dot segments removed, so
`/pypi/../other/` and `/pypi/%2e%2e/other/` are not under `/pypi/`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

import httpx

_DEFAULT_PORTS = {"http": 80, "https": 443}
PROXY_SCHEMES = ("http", "https")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Location:
    """A URL reduced to what the allowlist compares: scheme, host, port and normalized path."""

    scheme: str
    host: str
    port: int
    path: str
    # a path servers read differently (headwater.allowlist.reads_two_ways): allowed nowhere
    ambiguous: bool = False


def locate(url: str | httpx.URL) -> Location | None:
    """Where `url` leads, or None when it is no absolute http(s) URL."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        scheme, host, port = parsed.scheme, parsed.host, parsed.port  # decoding may fail late
    except (httpx.InvalidURL, TypeError, ValueError):  # UnicodeError (IDNA) is a ValueError
        return None
    if scheme not in _DEFAULT_PORTS or not host or not 0 < (port or 1) < 65536:
        return None
    raw_path = parsed.raw_path.decode("ascii", "replace").split("?", 1)[0]
    return Location(
        scheme=scheme,
        host=host.lower().rstrip("."),
        port=port or _DEFAULT_PORTS[scheme],
        path=normalize_path(raw_path),
        ambiguous=reads_two_ways(raw_path),
    )


_REWRITTEN = ("%", "\\", "/.")  # what normalizing may change: escapes, backslashes, dot segments


def normalize_path(path: str) -> str:
    """The path a server acts on: escapes decoded, `\\` read as `/`, dot segments removed
    (RFC 3986, 5.2.4). A trailing slash is kept."""
    if path.startswith("/") and not any(mark in path for mark in _REWRITTEN):
        return path  # nothing to decode, no dot segment: as it is (every download asks this)
    decoded = unquote(path).replace("\\", "/")
    output: list[str] = []
    segments = decoded.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    normalized = "/".join(output)
    return normalized if normalized.startswith("/") else "/" + normalized


def reads_two_ways(path: str) -> bool:
    """Whether servers may disagree on where `path` leads: a dot segment after an empty one
    (`//..`: servers that merge slashes, nginx's default, climb one more level than RFC 3986
    does) or a dot segment with parameters (`..;x`, which Tomcat reads as `..`)."""
    if not any(mark in path for mark in _REWRITTEN):
        return False
    segments = unquote(path).replace("\\", "/").split("/")
    dots = [index for index, segment in enumerate(segments) if segment.split(";", 1)[0] in _DOTS]
    if any(segments[index] not in _DOTS for index in dots):
        return True
    return any(segment == "" for segment in segments[1 : max(dots, default=0)])


_DOTS = (".", "..")


@dataclass(frozen=True)
class AllowedPrefix:
    """One entry of an allowlist: scheme, host, port (`*` for any) and path."""

    scheme: str
    host: str
    port: int | None  # None: any port
    path: str

    @classmethod
    def parse(cls, entry: str) -> AllowedPrefix:
        scheme, separator, rest = entry.strip().partition("://")
        authority, slash, path = rest.partition("/")
        any_port = authority.endswith(":*")
        if any_port:
            authority = authority[:-2]
        location = locate(f"{scheme}{separator}{authority}{slash}{path}")
        if location is None:
            raise ValueError(f"allowlist entry {entry!r} is not an http(s) URL")
        path = location.path if location.path.endswith("/") else location.path + "/"
        return cls(location.scheme, location.host, None if any_port else location.port, path)

    def allows(self, location: Location) -> bool:
        return (
            not location.ambiguous
            and location.scheme == self.scheme
            and location.host == self.host
            and (self.port is None or location.port == self.port)
            and (location.path + ("" if location.path.endswith("/") else "/")).startswith(self.path)
        )

    @property
    def address(self) -> IPAddress | None:
        """The IP address the entry names, when its host is one."""
        return ip_literal(self.host)


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@lru_cache(maxsize=64)
def parse_allowlist(entries: tuple[str, ...]) -> tuple[AllowedPrefix, ...]:
    return tuple(AllowedPrefix.parse(entry) for entry in entries)


def url_allowed(url: str | httpx.URL, allowlist: Sequence[str]) -> bool:
    """Whether `url` falls under an allowlist entry: same scheme and host (exactly, so
    `https://conda.anaconda.org` does not admit `conda.anaconda.org.example.com`), same port
    (the scheme's default unless the entry names one; `:*` for any), and a normalized path at
    or below the entry's."""
    location = locate(url)
    if location is None:
        return False
    return any(prefix.allows(location) for prefix in parse_allowlist(tuple(allowlist)))


def named_addresses(allowlist: Sequence[str]) -> frozenset[IPAddress]:
    """The IP addresses allowlist entries name as their host."""
    found = (prefix.address for prefix in parse_allowlist(tuple(allowlist)))
    return frozenset(address for address in found if address is not None)


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """HEADWATER_UPSTREAM_PRIVATE_NETWORKS: CIDR blocks such as `10.20.0.0/16`; ValueError names
    a malformed one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not a network such as 10.20.0.0/16") from None
    return tuple(networks)
