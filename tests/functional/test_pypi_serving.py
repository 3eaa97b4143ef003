"""The simple index as clients see it over time: cached pages, what a publish changes, privacy,
and conditional requests, through the fast path for anonymous readers and the full path."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.flows import create_channel
from tests.support.python_packages import Dist, build_dist
from tests.support.server import Headwater

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def upload(client: httpx.Client, channel: str, path: Path) -> None:
    with path.open("rb") as stream:
        response = client.post(
            f"/api/channels/{channel}/files",
            files={"file": (path.name, stream, "application/octet-stream")},
        )
    assert response.status_code == 201, response.text


def files_listed(client: httpx.Client, url: str) -> set[str]:
    response = client.get(url, headers=JSON)
    assert response.status_code == 200, response.text
    return {f["filename"] for f in response.json()["files"]}


def eventually(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)


def test_a_publish_shows_and_a_channel_turned_private_closes(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    first = build_dist(tmp_path, Dist("theta", "1.0"))
    second = build_dist(tmp_path, Dist("theta", "1.1"))
    url = "/api/repo/open/simple/theta/"
    with headwater.client(token) as admin, httpx.Client(base_url=headwater.url) as anonymous:
        create_channel(admin, "open")
        upload(admin, "open", first.path)
        # Read repeatedly: the first read renders, the later ones come from the cache.
        for _ in range(3):
            assert files_listed(anonymous, url) == {first.path.name}

        upload(admin, "open", second.path)
        eventually(lambda: files_listed(anonymous, url) == {first.path.name, second.path.name})

        page = anonymous.get(url)
        assert page.headers["cache-control"] == "public, no-cache"
        assert page.headers["vary"] == "Accept"
        again = anonymous.get(url, headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert anonymous.head(url).headers["content-length"] == str(len(page.content))

        assert admin.put("/api/channels/open", json={"privacy": "private"}).status_code == 200
        eventually(lambda: anonymous.get(url).status_code == 401)
        # With a token the page is there, and shared caches may not keep it.
        private = anonymous.get(url, headers={"X-Auth": token})
        assert private.status_code == 200
        assert private.headers["cache-control"] == "private, no-cache"

        assert admin.delete("/api/channels/open").status_code in (200, 204)
        assert anonymous.get(url).status_code in (401, 404)
        assert anonymous.get(url, headers={"X-Auth": token}).status_code == 404


def test_a_bad_token_is_refused_even_for_a_cached_public_page(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    dist = build_dist(tmp_path, Dist("iota", "1.0"))
    with headwater.client(token) as admin, httpx.Client(base_url=headwater.url) as client:
        create_channel(admin, "open")
        upload(admin, "open", dist.path)
        assert files_listed(client, "/api/repo/open/simple/iota/") == {dist.path.name}
        refused = client.get("/api/repo/open/simple/iota/", headers={"X-Auth": "not-a-token"})
        assert refused.status_code == 401
        index = client.get("/api/repo/open/simple/", headers=JSON)
        assert [p["name"] for p in index.json()["projects"]] == ["iota"]


def test_deleting_a_pypi_file_updates_the_cached_page(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    first = build_dist(tmp_path, Dist("kappa", "1.0"))
    second = build_dist(tmp_path, Dist("kappa", "1.1"))
    url = "/api/repo/open/simple/kappa/"
    with headwater.client(token) as admin, httpx.Client(base_url=headwater.url) as anonymous:
        create_channel(admin, "open")
        upload(admin, "open", first.path)
        upload(admin, "open", second.path)
        assert files_listed(anonymous, url) == {first.path.name, second.path.name}
        deleted = admin.delete(f"/api/channels/open/files/kappa/{second.path.name}")
        assert deleted.status_code == 204, deleted.text
        eventually(lambda: files_listed(anonymous, url) == {first.path.name})
        # A PyPI project is not a conda subdir: nothing was published under its name.
        assert anonymous.get("/api/repo/open/kappa/repodata.json").status_code == 404
