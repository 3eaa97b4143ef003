"""Outbound requests go through one policy: no signed-in user reaches a host outside the
allowlist, through a proxy, a redirect, a save-time check or a name that resolves to loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from headwater.models import Mirror
from tests.conftest import make_settings
from tests.support.conda_packages import CHAIN, build_channel
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_index
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import Fault, Listener, Upstream, listener, serve_directory


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    root = tmp_path / "upstream"
    build_channel(root / "conda", CHAIN)
    build_index(root / "pypi", [Dist("alpha", "1.0"), Dist("beta", "1.0")])
    with serve_directory(root) as server:
        yield server


@pytest.fixture
def service() -> Iterator[Listener]:
    """Something on loopback that is not an upstream, on a port the allowlist does not name."""
    with listener() as found:
        yield found


@pytest.fixture
def headwater(tmp_path: Path, upstream: Upstream) -> Iterator[Headwater]:
    """Only the upstream's own port is allowed: every other port on loopback is off limits."""
    settings = make_settings(tmp_path / "var", upstream_allowlist=(upstream.url,))
    with run_headwater(settings) as server:
        yield server


@contextmanager
def bob(headwater: Headwater) -> Iterator[httpx.Client]:
    """A signed-in user who is not an administrator, owning channel `bobs`."""
    headwater.add_user("bob", "bobs password")
    with headwater.client(headwater.login("bob", "bobs password")) as client:
        create_channel(client, "bobs")
        yield client


def test_only_administrators_set_a_proxy_and_only_one_of_the_proxy_allowlist(
    headwater: Headwater, token: str, upstream: Upstream, service: Listener
) -> None:
    body = {"mirror_name": "m", "source_root": upstream.url + "conda/", "proxy": service.url}
    with bob(headwater) as client:
        refused = client.post("/api/channels/bobs/mirrors", json=body)
        assert refused.status_code == 403, refused.text
        assert "only administrators can set a mirror's proxy" in refused.json()["detail"]
        draft = client.post("/api/channels/bobs/mirrors/preview", json=body)
        assert draft.status_code == 403, draft.text
    with headwater.client(token) as admin:
        refused = admin.post("/api/channels/bobs/mirrors", json=body)
        assert refused.status_code == 422, refused.text
        assert "is not one of HEADWATER_PROXY_ALLOWLIST" in refused.json()["detail"]
    assert service.connections == 0


def test_a_run_never_connects_to_a_proxy_that_is_not_allowed(
    headwater: Headwater, token: str, upstream: Upstream, service: Listener
) -> None:
    """A proxy stored before the setting changed (or written behind the API's back)."""
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url + "conda/")
        with headwater.resources.db.writing() as session:  # type: ignore[attr-defined]
            session.get(Mirror, mirror["id"]).proxy = service.url
        run = run_mirror(client, "forge", mirror["id"])
    assert run["state"] == "failed"
    assert "is not one of HEADWATER_PROXY_ALLOWLIST" in run["error"]
    assert service.connections == 0


def test_saving_a_pypi_mirror_follows_no_redirect_outside_the_allowlist(
    headwater: Headwater, upstream: Upstream, service: Listener
) -> None:
    for project in ("alpha", "beta"):
        upstream.faults[f"/pypi/simple/{project}/"] = Fault(redirect=f"{service.url}/{project}/")
    body = {
        "mirror_name": "py",
        "mirror_type": "python_simple",
        "source_root": upstream.url + "pypi/simple/",
        "filters": {"projects": ["alpha", "beta"]},
    }
    with bob(headwater) as client:
        saved = client.post("/api/channels/bobs/mirrors", json=body)
    assert saved.status_code == 201, saved.text
    assert any("could not check projects 'alpha', 'beta'" in w for w in saved.json()["warnings"])
    assert upstream.count("/pypi/simple/alpha/") == 1
    assert service.connections == 0


def test_saving_a_pypi_mirror_is_not_held_by_a_hanging_upstream(
    headwater: Headwater, upstream: Upstream
) -> None:
    projects = ["alpha", "beta", "gamma", "delta", "epsilon"]
    for project in projects:
        upstream.faults[f"/pypi/simple/{project}/"] = Fault(delay=20.0)
    body = {
        "mirror_name": "py",
        "mirror_type": "python_simple",
        "source_root": upstream.url + "pypi/simple/",
        "filters": {"projects": projects},
    }
    with bob(headwater) as client:
        # Checked one after another with a 10 s timeout each, this save took 50 s.
        client.timeout = httpx.Timeout(15.0)
        saved = client.post("/api/channels/bobs/mirrors", json=body)
    assert saved.status_code == 201, saved.text
    assert any("could not check projects" in w for w in saved.json()["warnings"])
    assert all(upstream.count(f"/pypi/simple/{p}/") == 1 for p in projects), "checked at once"


def test_a_path_that_climbs_out_of_an_allowlisted_prefix_is_refused(
    tmp_path: Path, upstream: Upstream
) -> None:
    settings = make_settings(tmp_path / "var", upstream_allowlist=(upstream.url + "pypi/",))
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "forge")
        for climbing in ("pypi/../conda/", "pypi/%2e%2e/conda/", "pypi/%2E%2E/conda/"):
            response = client.post(
                "/api/channels/forge/mirrors",
                json={"mirror_name": "m", "source_root": upstream.url + climbing},
            )
            assert response.status_code == 422, (climbing, response.text)
            assert "is not allowed" in response.json()["detail"]
    assert upstream.count("/conda/noarch/repodata.json") == 0


def test_an_allowlisted_name_that_resolves_to_loopback_is_not_connected(
    tmp_path: Path, upstream: Upstream
) -> None:
    """`localhost` is allowlisted by name, but its address is loopback, which no entry names."""
    by_name = upstream.url.replace("127.0.0.1", "localhost")
    settings = make_settings(tmp_path / "var", upstream_allowlist=(by_name,))
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", by_name + "conda/", filters={"subdirs": ["linux-64"]}
        )
        run = run_mirror(client, "forge", mirror["id"])
    assert run["state"] == "failed"
    assert "localhost resolves to 127.0.0.1" in run["error"], run["error"]
    assert "refusing to connect" in run["error"]
    assert upstream.count("/conda/linux-64/repodata.json.zst") == 0


def test_a_private_network_the_operator_names_is_reached(
    tmp_path: Path, upstream: Upstream
) -> None:
    by_name = upstream.url.replace("127.0.0.1", "localhost")
    settings = make_settings(
        tmp_path / "var",
        upstream_allowlist=(by_name,),
        upstream_private_networks=("127.0.0.0/8",),
    )
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", by_name + "conda/", filters={"subdirs": ["linux-64", "noarch"]}
        )
        run = run_mirror(client, "forge", mirror["id"])
    assert run["state"] == "completed", run["error"]


def test_a_run_does_not_repeat_what_a_service_that_is_not_http_answered(
    tmp_path: Path,
) -> None:
    """An allowlisted port where something else listens: the run fails without echoing it."""
    with listener() as service:
        settings = make_settings(tmp_path / "var", upstream_allowlist=(service.url + "/",))
        with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
            create_channel(client, "forge")
            mirror = create_mirror(
                client, "forge", service.url + "/conda/", filters={"subdirs": ["linux-64"]}
            )
            run = run_mirror(client, "forge", mirror["id"])
    assert service.connections >= 1
    assert run["state"] == "failed"
    assert "did not answer with valid HTTP" in run["error"], run["error"]
    everything = run["error"] + " ".join(line["message"] for line in run["log"])
    assert "secret-banner" not in everything


def _once_asked(upstream: Upstream, path: str, times: int) -> None:
    deadline = time.monotonic() + 20
    while upstream.count(path) < times:
        assert time.monotonic() < deadline, f"{path} was not asked for {times} times"
        time.sleep(0.05)


def test_previews_run_one_per_caller_and_two_at_once(
    headwater: Headwater, token: str, upstream: Upstream
) -> None:
    """A preview reads a whole upstream index: nobody may start them by the dozen."""
    index = "/conda/linux-64/repodata.json.zst"
    upstream.faults[index] = Fault(delay=3.0)
    draft = {"source_root": upstream.url + "conda/", "filters": {"subdirs": ["linux-64"]}}
    headwater.add_user("carol", "carols password")
    carols = headwater.login("carol", "carols password")
    with (
        headwater.client(token) as admin,
        headwater.client(token) as admin_again,
        bob(headwater) as bobs,
        headwater.client(carols) as carol,
        ThreadPoolExecutor(2) as running,
    ):
        create_channel(admin, "forge")
        create_channel(carol, "carols")
        first = running.submit(admin.post, "/api/channels/forge/mirrors/preview", json=draft)
        _once_asked(upstream, index, 1)
        again = admin_again.post("/api/channels/forge/mirrors/preview", json=draft)
        assert again.status_code == 429, again.text
        assert "your previous preview is still running" in again.json()["detail"]
        assert again.headers["Retry-After"] == "5"
        second = running.submit(bobs.post, "/api/channels/bobs/mirrors/preview", json=draft)
        _once_asked(upstream, index, 2)
        third = carol.post("/api/channels/carols/mirrors/preview", json=draft)
        assert third.status_code == 429, third.text
        assert "2 previews are running on this server" in third.json()["detail"]
        assert first.result().status_code == 200, first.result().text
        assert second.result().status_code == 200, second.result().text
        later = carol.post("/api/channels/carols/mirrors/preview", json=draft)
        assert later.status_code == 200, later.text
