"""The upstream transport connects only where the address policy permits, and its failures are
the httpx errors upstreams/http.py describes."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from headwater.upstreams.addresses import AddressNotAllowedError, address_policy
from headwater.upstreams.http import HttpPolicy, describe_transport_error, upstream_client
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
