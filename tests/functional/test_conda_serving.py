"""Conda serving at the limit (repo/conda_fast_path.py): indexes, shards and package files
answered before the framework, anonymously and with tokens, in each content coding, behind a
front proxy, and exactly as the application answers them."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from sqlalchemy import delete

from headwater.db import Database
from headwater.formats.conda.shards import read_shard_index
from headwater.models import ApiToken
from headwater.repo.conda_fast_path import CondaFastPath
from headwater.repo.fast_path import RepositoryFastPath
from headwater.services.access.tokens import token_digest
from headwater.settings import Settings
from tests.conftest import make_settings
from tests.functional.test_conda_client import solve_and_install
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_dist
from tests.support.s3 import S3Endpoint
from tests.support.server import Headwater, free_port, run_headwater, serve_process
from tests.support.upstream import serve_directory

LINUX = "linux-64"
# What a shared or private cache may keep, per URL kind, at the head and at a pinned revision.
UNVARYING = {"date", "server", "cache-control"}


def fast_path(headwater: Headwater) -> CondaFastPath:
    """The app's conda fast path, found in front of it."""
    layer: Any = headwater.app.front  # type: ignore[attr-defined]
    while layer is not None and not isinstance(layer, RepositoryFastPath):
        layer = getattr(layer, "app", None)
    assert layer is not None and layer._conda is not None, "no conda request reached it"
    return layer._conda


def personal_token(client: httpx.Client, name: str = "reader") -> dict[str, Any]:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    body = {"name": name, "expires_at": expires, "scopes": ["artifact:view"]}
    response = client.post("/api/account/tokens", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def upload(client: httpx.Client, channel: str, path: Path) -> None:
    with path.open("rb") as stream:
        response = client.post(
            f"/api/channels/{channel}/files", files={"file": (path.name, stream)}
        )
    assert response.status_code == 201, response.text


def headers_of(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in UNVARYING}


def raw_get(headwater: Headwater, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    with httpx.Client(base_url=headwater.url) as client:
        request = client.build_request("GET", path, headers=headers)
        if "accept-encoding" not in {key.lower() for key in headers}:
            request.headers.pop("accept-encoding", None)
        response = client.send(request, stream=True)
        try:
            return response, b"".join(response.iter_raw())
        finally:
            response.close()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Any]:
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_rattler_installs_through_the_fast_path_anonymously_and_with_a_token(
    headwater: Headwater, token: str, upstream: Any, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "open")
        create_channel(client, "closed", privacy="private")
        for channel, mode in (("open", "passive"), ("closed", "active")):
            mirror = create_mirror(client, channel, upstream.url, mirror_mode=mode)
            assert run_mirror(client, channel, mirror["id"])["state"] == "completed"
        reader = personal_token(client)["token"]

    public = solve_and_install(
        f"{headwater.url}/api/repo/open", "hw-app", tmp_path / "a", tmp_path / "ca"
    )
    private = solve_and_install(
        f"{headwater.url}/api/repo/t/{reader}/closed", "hw-app", tmp_path / "b", tmp_path / "cb"
    )

    assert public == private == ["hw-app-1.0", "hw-base-1.0", "hw-lib-2.0"]
    conda = fast_path(headwater)
    views = {name: conda.views._views[name] for name in ("open", "closed")}
    located = {(where[0], where[3]) for where in conda.files._items}
    for view in views.values():
        assert {(view.id, "hw-app-1.0-0.tar.bz2"), (view.id, "hw-lib-2.0-0.conda")} <= located
    # The passive channel's files were fetched from upstream once, by the application, and
    # are sent by the fast path from then on.
    with httpx.Client(base_url=headwater.url) as anonymous:
        again = anonymous.get("/api/repo/open/linux-64/hw-lib-2.0-0.conda")
    assert again.status_code == 200
    assert upstream.count("/linux-64/hw-lib-2.0-0.conda") == 1


def test_repodata_json_in_each_coding_with_an_etag_of_its_own(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    spec = PackageSpec("zeta", "1.0", subdir=LINUX, payload="z" * 5000)
    with headwater.client(token) as client:
        create_channel(client, "coded")
        upload(client, "coded", build_package(spec, tmp_path))
    url = f"/api/repo/coded/{LINUX}/repodata.json"
    plain, identity = raw_get(headwater, url)
    gzipped, gzip_body = raw_get(headwater, url, **{"Accept-Encoding": "gzip, deflate"})
    zstded, zstd_body = raw_get(headwater, url, **{"Accept-Encoding": "gzip, deflate, br, zstd"})

    assert "content-encoding" not in plain.headers
    assert gzipped.headers["content-encoding"] == "gzip"
    assert zstded.headers["content-encoding"] == "zstd"
    assert gzip.decompress(gzip_body) == identity
    assert zstandard.ZstdDecompressor().decompress(zstd_body) == identity
    assert len(gzip_body) < len(identity) and len(zstd_body) < len(identity)
    sha = plain.headers["etag"].strip('"')
    assert gzipped.headers["etag"] == f'"{sha}-gzip"'
    assert zstded.headers["etag"] == f'"{sha}-zstd"'
    for response, body in ((plain, identity), (gzipped, gzip_body), (zstded, zstd_body)):
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["content-length"] == str(len(body))

    # Each coding revalidates with its own tag, and with another coding's tag of the same
    # bytes (mod_deflate's way); the 304 names the coding this request would get.
    for coding, response in (("gzip", gzipped), ("zstd", zstded), ("identity", plain)):
        for tag in (response.headers["etag"], plain.headers["etag"], zstded.headers["etag"]):
            again, body = raw_get(
                headwater, url, **{"Accept-Encoding": coding, "If-None-Match": tag}
            )
            assert again.status_code == 304 and body == b""
            assert again.headers["etag"] == response.headers["etag"]
    stale, _ = raw_get(headwater, url, **{"Accept-Encoding": "zstd", "If-None-Match": '"0-zstd"'})
    assert stale.status_code == 200
    # Weights decide; a coding refused is not sent.
    weighed, _ = raw_get(headwater, url, **{"Accept-Encoding": "zstd;q=0.5, gzip"})
    assert weighed.headers["content-encoding"] == "gzip"
    refused, _ = raw_get(headwater, url, **{"Accept-Encoding": "*;q=0, identity"})
    assert "content-encoding" not in refused.headers
    # HEAD says what GET would send.
    with httpx.Client(base_url=headwater.url) as client:
        head = client.head(url, headers={"Accept-Encoding": "gzip"})
    assert head.headers["content-length"] == str(len(gzip_body))
    assert head.headers["etag"] == gzipped.headers["etag"]


def test_an_index_without_a_gzip_artifact_is_served_in_the_other_codings(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "older")
        upload(client, "older", build_package(PackageSpec("eta", "1.0", subdir=LINUX), tmp_path))
    blobs = headwater.settings.resolved_blob_dir
    removed = list(blobs.glob(f"indexes/*/{LINUX}/*.json.gz"))
    assert len(removed) == 1
    removed[0].unlink()  # as an index published before gzip artifacts were made
    url = f"/api/repo/older/{LINUX}/repodata.json"
    plain, identity = raw_get(headwater, url)
    gzip_only, body = raw_get(headwater, url, **{"Accept-Encoding": "gzip"})
    assert "content-encoding" not in gzip_only.headers and body == identity
    assert gzip_only.headers["etag"] == plain.headers["etag"]
    both, zstd_body = raw_get(headwater, url, **{"Accept-Encoding": "gzip, zstd"})
    assert both.headers["content-encoding"] == "zstd"
    assert zstandard.ZstdDecompressor().decompress(zstd_body) == identity


def test_token_holders_read_a_private_channel_and_everyone_else_is_refused(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    package = build_package(PackageSpec("theta", "1.0", subdir=LINUX), tmp_path)
    headwater.add_user("eve", "eves own password")
    eve = headwater.login("eve", "eves own password")
    with headwater.client(token) as client:
        create_channel(client, "secret", privacy="private")
        upload(client, "secret", package)
        reader = personal_token(client)
    key = reader["token"]
    file_url = f"/api/repo/secret/{LINUX}/{package.name}"
    basic = httpx.BasicAuth(key, "x-auth-token")
    with httpx.Client(base_url=headwater.url) as client:
        for _ in range(2):  # decided once, then remembered
            by_path = client.get(f"/api/repo/t/{key}/secret/{LINUX}/{package.name}")
            assert by_path.status_code == 200 and by_path.content == package.read_bytes()
            assert by_path.headers["cache-control"] == "private, max-age=31536000, immutable"
            assert client.get(file_url, headers={"X-Auth": key}).status_code == 200
            bearer = client.get(
                f"/api/repo/secret/{LINUX}/repodata.json",
                headers={"Authorization": f"Bearer {key}"},
            )
            assert bearer.status_code == 200
            assert bearer.headers["cache-control"] == "private, no-cache"
            assert client.get(file_url, auth=basic).status_code == 200

            anonymous = client.get(file_url)
            assert anonymous.status_code == 401 and "www-authenticate" in anonymous.headers
            assert client.get(file_url, headers={"X-Auth": "not-a-token"}).status_code == 401
            wrong = client.get(f"/api/repo/t/not-a-token/secret/{LINUX}/repodata.json")
            assert wrong.status_code == 401
            # Signed in, but nothing granted on the channel: it does not exist for her.
            assert client.get(file_url, headers={"X-Auth": eve}).status_code == 404
            shard_index = client.get(
                f"/api/repo/secret/{LINUX}/repodata_shards.msgpack.zst", headers={"X-Auth": eve}
            )
            assert shard_index.status_code == 404

        with headwater.client(token) as admin:
            revoked = admin.delete(f"/api/account/tokens/{reader['id']}")
            assert revoked.status_code == 204
        # Revoked by this process: refused at once.
        assert client.get(file_url, headers={"X-Auth": key}).status_code == 401
        assert client.get(f"/api/repo/t/{key}/secret/{LINUX}/repodata.json").status_code == 401


@pytest.fixture
def quick_tokens(tmp_path: Path) -> Iterator[Headwater]:
    with run_headwater(make_settings(tmp_path / "var", token_cache_seconds=1.0)) as server:
        yield server


def test_a_token_revoked_by_another_process_stops_within_the_window(
    quick_tokens: Headwater, tmp_path: Path
) -> None:
    headwater = quick_tokens
    package = build_package(PackageSpec("iota", "1.0", subdir=LINUX), tmp_path)
    with headwater.client(headwater.login()) as client:
        create_channel(client, "secret", privacy="private")
        upload(client, "secret", package)
        key = personal_token(client)["token"]
    url = f"/api/repo/t/{key}/secret/{LINUX}/{package.name}"
    with httpx.Client(base_url=headwater.url) as client:
        assert client.get(url).status_code == 200
        # Deleted as another replica or `headwater` command would: this process is not told.
        elsewhere = Database(headwater.settings.resolved_database_url)
        with elsewhere.engine.begin() as connection:
            connection.execute(delete(ApiToken).where(ApiToken.token_sha256 == token_digest(key)))
        elsewhere.dispose()
        revoked_at = time.monotonic()
        while client.get(url).status_code == 200:
            assert time.monotonic() - revoked_at < 1.0 + 1.0, "served past the token window"
            time.sleep(0.02)
        assert client.get(url).status_code == 401


def test_a_publish_shows_at_once_here_and_within_a_second_in_another_process(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    first = build_package(PackageSpec("kappa", "1.0", subdir=LINUX), tmp_path)
    second = build_package(PackageSpec("kappa", "1.1", subdir=LINUX), tmp_path)
    url = f"/api/repo/moving/{LINUX}/repodata.json"
    with headwater.client(token) as admin:
        create_channel(admin, "moving")
        upload(admin, "moving", first)
        with (
            serve_process(headwater.settings.data_dir, embedded_worker="false") as other,
            httpx.Client(base_url=headwater.url) as here,
            httpx.Client(base_url=other.url) as there,
        ):
            assert here.get(url).headers["x-headwater-revision"] == "1"
            assert there.get(url).headers["x-headwater-revision"] == "1"
            upload(admin, "moving", second)
            assert here.get(url).headers["x-headwater-revision"] == "2"
            assert second.name in here.get(url).json()["packages.conda"]
            published = time.monotonic()
            while there.get(url).headers["x-headwater-revision"] != "2":
                assert time.monotonic() - published < 2.5, "another process lagged"
                time.sleep(0.02)
            assert second.name in there.get(url).json()["packages.conda"]

            turned = admin.patch("/api/channels/moving", json={"privacy": "private"})
            assert turned.status_code == 200, turned.text
            assert here.get(url).status_code == 401
            changed = time.monotonic()
            while there.get(url).status_code == 200:
                assert time.monotonic() - changed < 2.5, "still public in another process"
                time.sleep(0.02)
            assert there.get(url).status_code == 401


def test_the_fast_path_answers_as_the_application_does(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    """The plain URL (fast path) against the pinned one (the application), for every kind of
    conda URL, GET, HEAD and 304, anonymously and with a token."""
    package = build_package(PackageSpec("lambda", "1.0", subdir=LINUX), tmp_path)
    with headwater.client(token) as client:
        create_channel(client, "same")
        upload(client, "same", package)
    with httpx.Client(base_url=headwater.url) as client:
        shards = read_shard_index(
            client.get(f"/api/repo/same/{LINUX}/repodata_shards.msgpack.zst").content
        )
        names = [
            f"{LINUX}/repodata.json",
            f"{LINUX}/repodata.json.zst",
            f"{LINUX}/repodata_shards.msgpack.zst",
            f"{LINUX}/shards/{shards['lambda']}.msgpack.zst",
            f"{LINUX}/{package.name}",
            "noarch/repodata.json",
        ]
        for prefix in ("/api/repo/", f"/api/repo/t/{token}/"):
            for name in names:
                for coding in ("identity", "gzip", "zstd"):
                    asked = {"Accept-Encoding": coding}
                    fast = client.get(f"{prefix}same/{name}", headers=asked)
                    slow = client.get(f"{prefix}same@1/{name}", headers=asked)
                    assert fast.status_code == slow.status_code == 200, name
                    assert headers_of(fast) == headers_of(slow), name
                    assert fast.content == slow.content, name
                    tag = {"If-None-Match": fast.headers["etag"], **asked}
                    fast_304 = client.get(f"{prefix}same/{name}", headers=tag)
                    slow_304 = client.get(f"{prefix}same@1/{name}", headers=tag)
                    assert fast_304.status_code == slow_304.status_code == 304, name
                    assert headers_of(fast_304) == headers_of(slow_304), name
                    fast_head = client.head(f"{prefix}same/{name}", headers=asked)
                    slow_head = client.head(f"{prefix}same@1/{name}", headers=asked)
                    assert headers_of(fast_head) == headers_of(slow_head), name
                if "shards/" in name or name.endswith(".conda"):
                    assert fast.headers["cache-control"] == slow.headers["cache-control"]
                else:  # the head is revalidated, a pinned revision never changes
                    assert fast.headers["cache-control"] == "public, no-cache"
    assert fast_path(headwater).views._views["same"].head == 1


def test_answers_made_from_a_first_revalidation_or_head_are_the_applications(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    """A client that revalidates a copy it got in another coding, or asks HEAD first, is
    answered from then on from what the fast path prepared: the same answers as the
    application's, body and all."""
    package = build_package(PackageSpec("revalidated", "1.0", subdir=LINUX), tmp_path)
    with headwater.client(token) as client:
        create_channel(client, "again")
        upload(client, "again", package)
    with httpx.Client(base_url=headwater.url) as client:
        gzip_tag = client.get(
            f"/api/repo/again/{LINUX}/repodata.json", headers={"Accept-Encoding": "gzip"}
        ).headers["etag"]
        for name, first in ((f"{LINUX}/repodata.json", "304"), (f"{LINUX}/{package.name}", "HEAD")):
            plain = {"Accept-Encoding": "identity"}
            if first == "304":
                tag = {"If-None-Match": gzip_tag, **plain}
                assert client.get(f"/api/repo/again/{name}", headers=tag).status_code == 304
            else:
                assert client.head(f"/api/repo/again/{name}", headers=plain).status_code == 200
            for method in ("GET", "HEAD", "GET"):
                fast = client.request(method, f"/api/repo/again/{name}", headers=plain)
                slow = client.request(method, f"/api/repo/again@1/{name}", headers=plain)
                assert fast.status_code == slow.status_code == 200, (name, method)
                assert headers_of(fast) == headers_of(slow), (name, method)
                assert fast.content == slow.content, (name, method)
            tag = {"If-None-Match": fast.headers["etag"], **plain}
            assert client.get(f"/api/repo/again/{name}", headers=tag).status_code == 304


def test_hostile_paths_go_to_the_application_and_are_refused(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "open")
        upload(client, "open", build_package(PackageSpec("mu", "1.0", subdir=LINUX), tmp_path))
    paths = [
        f"/api/repo/open/{LINUX}/shards/../../etc",
        f"/api/repo/open/{LINUX}/shards/%2e%2e/%2e%2e/etc/passwd",
        f"/api/repo/open/{LINUX}/shards/{'0' * 63}.msgpack.zst",
        f"/api/repo/open/{LINUX}/shards/{'0' * 64}.msgpack.zst",
        f"/api/repo/open/{LINUX}/..%2f..%2fetc%2fpasswd.conda",
        "/api/repo/open/not-a-subdir/repodata.json",
        f"/api/repo/Open/{LINUX}/repodata.json",
        f"/api/repo/{'x' * 300}/{LINUX}/repodata.json",
        f"/api/repo/t/{'y' * 4000}/open/{LINUX}/repodata.json",
        f"/api/repo/t//open/{LINUX}/repodata.json",
        f"/api/repo/open/{LINUX}/nothing-1.0-0.conda",
        f"/api/repo/open@99/{LINUX}/repodata.json",
        f"/api/repo/open/{LINUX}/repodata.json%0a",  # the guards' to refuse, in front or not
        f"/api/repo/open/{LINUX}/repodata.json?x=%01",
    ]
    with httpx.Client(base_url=headwater.url) as client:
        for path in paths:
            request = client.build_request("GET", "/")
            request.url = request.url.copy_with(raw_path=path.encode())
            response = client.send(request)
            assert 400 <= response.status_code < 500, (path, response.status_code)
        # A body on a read is the guards' to measure, as on any other route.
        url = f"/api/repo/open/{LINUX}/repodata.json"
        assert client.get(url).status_code == 200
        too_large = client.request("GET", url, content=b"x" * (2 << 20))
        assert too_large.status_code == 413, too_large.text
    conda = fast_path(headwater)
    assert set(conda.views._views) == {"open"}


def test_a_fast_path_that_fails_leaves_the_request_to_the_application(
    headwater: Headwater, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In front of FastAPI's error handling, a failure in the fast path must not become the
    server's 500: the application answers the request instead."""
    with headwater.client(token) as client:
        create_channel(client, "sturdy")
        upload(client, "sturdy", build_package(PackageSpec("nu", "1.0", subdir=LINUX), tmp_path))
    url = f"{headwater.url}/api/repo/sturdy/{LINUX}/repodata.json"
    expected = httpx.get(url).content

    async def broken(*args: object) -> None:
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr(CondaFastPath, "answer", broken)
    answered = httpx.get(url)
    assert answered.status_code == 200 and answered.content == expected
    assert answered.headers["x-frame-options"] == "DENY"


@pytest.fixture
def accelerated(tmp_path: Path) -> Iterator[Headwater]:
    settings = make_settings(tmp_path / "var", accel_redirect_prefix="/_blobs/")
    with run_headwater(settings) as server:
        yield server


def test_behind_a_front_proxy_the_answer_names_the_blob_and_carries_no_body(
    accelerated: Headwater, tmp_path: Path
) -> None:
    headwater = accelerated
    package = build_package(PackageSpec("nu", "1.0", subdir=LINUX), tmp_path)
    with headwater.client(headwater.login()) as client:
        create_channel(client, "proxied")
        upload(client, "proxied", package)
    blobs = headwater.settings.resolved_blob_dir
    with httpx.Client(base_url=headwater.url) as client:
        for url in (f"/api/repo/proxied/{LINUX}/", f"/api/repo/proxied@1/{LINUX}/"):
            sent = client.get(url + package.name)
            assert sent.status_code == 200 and sent.content == b""
            assert sent.headers["content-length"] == "0"
            location = sent.headers["x-accel-redirect"]
            assert location.startswith("/_blobs/blobs/")
            assert (blobs / location.removeprefix("/_blobs/")).read_bytes() == package.read_bytes()
            assert sent.headers["etag"].strip('"') == location.rsplit("/", 1)[1]
            index = client.get(url + "repodata.json", headers={"Accept-Encoding": "identity"})
            assert index.content == b"" and index.headers["x-accel-redirect"].endswith(".json")
            # What is not a whole blob file is sent as before: HEAD, 304, shards.
            head = client.head(url + package.name)
            assert "x-accel-redirect" not in head.headers
            assert head.headers["content-length"] == str(package.stat().st_size)
            fresh = client.get(url + package.name, headers={"If-None-Match": sent.headers["etag"]})
            assert fresh.status_code == 304 and "x-accel-redirect" not in fresh.headers


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_nginx_configured_as_docs_operations_says_sends_the_blobs(
    accelerated: Headwater, tmp_path: Path
) -> None:
    """The front proxy's locations as docs/operations.md gives them (but for their paths):
    every coding of every kind of blob, with Headwater's headers, and 304s."""
    headwater = accelerated
    package = build_package(PackageSpec("xi", "1.0", subdir=LINUX), tmp_path)
    with headwater.client(headwater.login()) as client:
        create_channel(client, "proxied")
        upload(client, "proxied", package)
    kept = ("etag", "cache-control", "x-headwater-revision", "content-type", "vary")
    security = ("content-security-policy", "x-frame-options", "x-content-type-options")
    with nginx_in_front(headwater) as proxy, httpx.Client(base_url=proxy) as client:
        for path in (f"{LINUX}/{package.name}", f"{LINUX}/repodata.json", "noarch/repodata.json"):
            for coding in ("identity", "gzip", "zstd"):
                asked = {"Accept-Encoding": coding}
                url = f"/api/repo/proxied/{path}"
                direct = httpx.head(headwater.url + url, headers=asked)
                sent, body = raw_get_from(proxy, url, **asked)
                assert sent.status_code == 200, (path, coding)
                pinned = url.replace("proxied", "proxied@1")
                assert body == raw_get_from(proxy, pinned, **asked)[1], (path, coding)
                for name in (*kept, *security, "content-encoding", "content-length"):
                    assert sent.headers.get(name) == direct.headers.get(name), (path, coding, name)
                fresh = client.get(url, headers={"If-None-Match": sent.headers["etag"], **asked})
                assert fresh.status_code == 304, (path, coding)
                # If-None-Match decides, in Headwater: nginx answers no 304 of its own.
                since = {"If-Modified-Since": formatdate(time.time() + 86400, usegmt=True), **asked}
                assert (
                    client.get(url, headers={"If-None-Match": '"other"', **since}).status_code
                    == 200
                )
        assert (
            client.get(f"/api/repo/proxied/{LINUX}/{package.name}").content == package.read_bytes()
        )
        internal = client.get("/_blobs/" + package.name)
        assert internal.status_code == 404, "the blob location must be internal"


def raw_get_from(base: str, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    with httpx.Client(base_url=base) as client:
        request = client.build_request("GET", path, headers=headers)
        response = client.send(request, stream=True)
        try:
            return response, b"".join(response.iter_raw())
        finally:
            response.close()


def nginx_config(port: int, upstream: str, blobs: Path, prefix: Path) -> str:
    """docs/operations.md's two locations, in a configuration of their own."""
    return f"""worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix / "body"};
    proxy_temp_path {prefix / "proxy"};
    fastcgi_temp_path {prefix / "fastcgi"};
    uwsgi_temp_path {prefix / "uwsgi"};
    scgi_temp_path {prefix / "scgi"};
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        location /_blobs/ {{
            internal;
            alias {blobs}/;
            etag off;
            if_modified_since off;
            add_header ETag $upstream_http_etag;
            add_header Vary $upstream_http_vary;
            add_header Content-Encoding $upstream_http_content_encoding;
            add_header X-Headwater-Revision $upstream_http_x_headwater_revision;
            add_header Content-Security-Policy $upstream_http_content_security_policy;
            add_header X-Frame-Options $upstream_http_x_frame_options;
            add_header X-Content-Type-Options $upstream_http_x_content_type_options;
            add_header Referrer-Policy $upstream_http_referrer_policy;
        }}
    }}
}}
"""


@contextmanager
def nginx_in_front(headwater: Headwater) -> Iterator[str]:
    """nginx on a free port, proxying to `headwater` as docs/operations.md configures it."""
    assert NGINX is not None
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-front-") as scratch:
        prefix = Path(scratch)
        config = prefix / "nginx.conf"
        blobs = headwater.settings.resolved_blob_dir
        config.write_text(nginx_config(port, headwater.url, blobs, prefix))
        user = ["-g", "user root root;"] if os.geteuid() == 0 else []
        process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(config), *user],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(url + "/api/channels", timeout=1)
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((prefix / "error.log").read_text()) from None
                    time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_settings_refuse_a_front_proxy_prefix_that_is_no_location(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must start and end with '/'"):
        Settings(data_dir=tmp_path, accel_redirect_prefix="_blobs")


@pytest.mark.parametrize("redirects", [False, True])
def test_from_an_s3_store_files_are_streamed_or_redirected_to_the_bucket(
    s3: S3Endpoint, tmp_path: Path, redirects: bool
) -> None:
    bucket = s3.new_bucket()
    settings = make_settings(tmp_path / "var", **s3.settings(bucket), blob_redirects=redirects)
    package = build_package(PackageSpec("omicron", "1.0", subdir=LINUX), tmp_path)
    with run_headwater(settings) as headwater:
        with headwater.client(headwater.login()) as client:
            create_channel(client, "bucketed")
            upload(client, "bucketed", package)
        url = f"/api/repo/bucketed/{LINUX}/"
        with httpx.Client(base_url=headwater.url) as client:
            for _ in range(2):  # learned, then from what the fast path keeps
                index = client.get(url + "repodata.json")
                assert index.status_code == 200 and package.name in index.json()["packages.conda"]
                shards = read_shard_index(client.get(url + "repodata_shards.msgpack.zst").content)
                shard = client.get(f"{url}shards/{shards['omicron']}.msgpack.zst")
                assert shard.status_code == 200
                sent = client.get(url + package.name)
                if redirects:
                    assert sent.status_code == 307 and sent.content == b""
                    assert sent.headers["location"].startswith(s3.url)
                    assert httpx.get(sent.headers["location"]).content == package.read_bytes()
                else:
                    assert sent.status_code == 200 and sent.content == package.read_bytes()
        assert fast_path(headwater).views._views["bucketed"].head == 1


def test_pypi_files_share_the_file_answers_with_their_own_media_types(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    """PyPI's files go through the same file answers (repo/files.py), not the fast path."""
    built = build_dist(tmp_path, Dist("pi-demo", "1.0"))
    with headwater.client(token) as client:
        create_channel(client, "py")
        upload(client, "py", built.path)
    url = f"/api/repo/py/simple/pi-demo/{built.path.name}"
    with httpx.Client(base_url=headwater.url) as client:
        wheel = client.get(url)
        assert wheel.status_code == 200 and wheel.content == built.path.read_bytes()
        assert wheel.headers["content-type"] == "application/octet-stream"
        assert wheel.headers["etag"] == f'"{built.sha256}"'
        metadata = client.get(url + ".metadata")
        assert metadata.status_code == 200, metadata.text
        assert metadata.headers["content-type"] == "text/plain; charset=utf-8"
        assert metadata.content == built.metadata
        again = client.get(url, headers={"If-None-Match": wheel.headers["etag"]})
        assert again.status_code == 304
