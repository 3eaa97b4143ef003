"""Which addresses Headwater opens connections to: public ones, and those the operator named.

An allowlisted name can still resolve to a loopback, private, link-local (cloud metadata) or
otherwise non-public address, by accident or by an attacker's DNS. Every upstream connection is
therefore made to an address `GuardedResolver` gave: it resolves the host itself and keeps the
addresses the policy permits, so the address checked is the address used. A host that is an
address already is never resolved; `check_literal` judges it before the request is sent.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from headwater.allowlist import IPAddress, Network, ip_literal, named_addresses, parse_networks
from headwater.errors import UpstreamError


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
        return is_public(address)


# Not public whatever this Python's `is_global` says: IETF protocol assignments (Oracle Cloud's
# metadata service is 192.0.0.192), local-use NAT64, IPv4-compatible and IPv4-translated IPv6.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in ("192.0.0.0/24", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address behind the network's NAT64


def is_public(address: IPAddress) -> bool:
    """A public unicast address; an IPv6 address that carries an IPv4 one (NAT64, 6to4) is
    judged by the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
    if any(address in network for network in _NOT_PUBLIC):
        return False
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


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver with the address policy on what it returns: only permitted addresses,
    or an AddressNotAllowedError naming what the host resolved to."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        permitted = [
            result for result in results if self.policy.permits(host, _address(result["host"]))
        ]
        if not permitted:
            addresses = list(dict.fromkeys(_address(result["host"]) for result in results))
            raise AddressNotAllowedError(refusal(host, addresses))
        return permitted

    async def close(self) -> None:
        await self.inner.close()


def check_literal(policy: AddressPolicy, host: str) -> None:
    """Refuse a host that is itself an address the policy does not permit (such a host is not
    resolved, so the resolver never sees it)."""
    address = ip_literal(host)
    if address is None and _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        # 127.1, 2130706433, 0x7f.1: an address to some resolvers and libraries, no host name
        raise AddressNotAllowedError(
            f"{host} is an address in a form Headwater does not read; write it as a.b.c.d"
        )
    if address is not None and not policy.permits(host, address):
        raise AddressNotAllowedError(refusal(host, [address]))


_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)


def _address(host: str) -> IPAddress:
    return ipaddress.ip_address(host.split("%", 1)[0])


def refusal(host: str, addresses: Sequence[IPAddress]) -> str:
    shown = ", ".join(str(address) for address in addresses) or "no address"
    return (
        f"{host} resolves to {shown}: not a public address, and neither "
        "HEADWATER_UPSTREAM_ALLOWLIST nor HEADWATER_UPSTREAM_PRIVATE_NETWORKS names it; "
        "refusing to connect"
    )
