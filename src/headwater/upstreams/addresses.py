"""Which addresses Headwater opens connections to: public ones, and those the operator named.

An allowlisted name can still resolve to a loopback, private, link-local (cloud metadata) or
otherwise non-public address, by accident or by an attacker's DNS. Every upstream connection is
therefore made by `GuardedBackend`, which resolves the host itself, keeps the addresses the
policy permits, and connects to one of those, so the address checked is the address used.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import anyio
import httpcore

from headwater.allowlist import IPAddress, Network, ip_literal, named_addresses, parse_networks
from headwater.errors import UpstreamError

# What httpcore passes for socket options, passed on untouched.
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class AddressNotAllowedError(UpstreamError):
    """A host resolved only to addresses Headwater does not connect to."""


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses are permitted; others only where an allowlist entry names the address
    and the URL's host is that address itself, a configured private network holds it, or the
    host is one the operator trusts outright (the proxies of HEADWATER_PROXY_ALLOWLIST)."""

    named: frozenset[IPAddress]
    networks: tuple[Network, ...] = ()
    trusted_hosts: frozenset[str] = frozenset()

    def permits(self, host: str, address: IPAddress) -> bool:
        if host.lower() in self.trusted_hosts:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address in self.named and ip_literal(host) == address:
            return True  # an entry names this address, and the URL asked for it by it
        if any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast


@lru_cache(maxsize=64)
def address_policy(
    allowlist: tuple[str, ...], networks: tuple[str, ...], trusted_hosts: frozenset[str]
) -> AddressPolicy:
    return AddressPolicy(
        named=named_addresses(allowlist),
        networks=parse_networks(networks),
        trusted_hosts=trusted_hosts,
    )


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error.strerror or error}") from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address policy in front of every connection."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, policy: AddressPolicy) -> None:
        self.inner = inner
        self.policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        permitted = [address for address in addresses if self.policy.permits(host, address)]
        if not permitted:
            raise AddressNotAllowedError(refusal(host, addresses))
        error: Exception | None = None
        for address in permitted:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failure:
                error = failure
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowedError("upstreams are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def refusal(host: str, addresses: Sequence[IPAddress]) -> str:
    shown = ", ".join(str(address) for address in addresses) or "no address"
    return (
        f"{host} resolves to {shown}: not a public address, and neither "
        "HEADWATER_UPSTREAM_ALLOWLIST nor HEADWATER_UPSTREAM_PRIVATE_NETWORKS names it; "
        "refusing to connect"
    )
