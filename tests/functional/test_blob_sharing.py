"""A file's bytes are shared between channels only with proof: knowing a private file's sha256
and size (they are in lock files and `pip --hash` lines) does not get its bytes out of the blob
store through a mirror of an upstream that lists them under any name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_dist, build_index
from tests.support.server import Headwater
from tests.support.upstream import Upstream, serve_directory

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@contextmanager
def bob(headwater: Headwater) -> Iterator[httpx.Client]:
    """A signed-in user who is not an administrator and may not read channel `vault`."""
    headwater.add_user("bob", "bobs password")
    with headwater.client(headwater.login("bob", "bobs password")) as client:
        yield client


@pytest.fixture
def secret(headwater: Headwater, token: str, tmp_path: Path) -> Path:
    """A package only the private channel `vault` holds."""
    package = build_package(PackageSpec("secret-tool", "1.0", subdir="noarch"), tmp_path / "s")
    with headwater.client(token) as admin:
        create_channel(admin, "vault", privacy="private")
        with package.open("rb") as stream:
            response = admin.post(
                "/api/channels/vault/files", files={"file": (package.name, stream)}
            )
        assert response.status_code == 201, response.text
    return package


def listing(root: Path, filename: str, sha256: str, size: int) -> Path:
    """An upstream that lists a file by another's digest and size, without having its bytes."""
    noarch = root / "noarch"
    noarch.mkdir(parents=True)
    record = {
        "name": filename.split("-")[0],
        "version": "1.0",
        "build": "0",
        "build_number": 0,
        "depends": [],
        "subdir": "noarch",
        "sha256": sha256,
        "size": size,
    }
    (noarch / "repodata.json").write_text(
        json.dumps({"info": {"subdir": "noarch"}, "packages.conda": {filename: record}})
    )
    return root


@pytest.fixture
def lure(tmp_path: Path, secret: Path) -> Iterator[Upstream]:
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    root = listing(tmp_path / "lure", "innocent-1.0-0.conda", digest, secret.stat().st_size)
    with serve_directory(root) as server:
        yield server


def test_a_passive_mirror_does_not_serve_another_channels_bytes_by_their_digest(
    headwater: Headwater, secret: Path, lure: Upstream
) -> None:
    with bob(headwater) as client:
        assert client.get("/api/repo/vault/noarch/repodata.json").status_code == 404
        create_channel(client, "mine")
        mirror = create_mirror(client, "mine", lure.url, filters={"subdirs": ["noarch"]})
        assert run_mirror(client, "mine", mirror["id"])["state"] == "completed"
        response = client.get("/api/repo/mine/noarch/innocent-1.0-0.conda")
    assert response.content != secret.read_bytes()
    assert response.status_code == 502, response.text
    assert "404" in response.json()["detail"]
    assert lure.count("/noarch/innocent-1.0-0.conda") == 1, "asked its own upstream"


def test_an_active_mirror_does_not_skip_a_download_by_another_channels_digest(
    headwater: Headwater, secret: Path, lure: Upstream
) -> None:
    with bob(headwater) as client:
        create_channel(client, "mine")
        mirror = create_mirror(
            client, "mine", lure.url, mirror_mode="active", filters={"subdirs": ["noarch"]}
        )
        run = run_mirror(client, "mine", mirror["id"])
        # Its own upstream has no such bytes: the file is left out (on_missing_file skip, the
        # default), never taken from the store on the digest's word.
        assert run["state"] == "completed"
        [warning] = run["warnings"]
        assert warning["filename"] == "innocent-1.0-0.conda" and warning["status"] == 404
        assert client.get("/api/repo/mine/noarch/innocent-1.0-0.conda").status_code == 404
    assert lure.count("/noarch/innocent-1.0-0.conda") >= 1


def test_private_pypi_files_and_their_metadata_are_not_served_by_digest(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    wheel = build_dist(tmp_path / "private", Dist("internal-lib", "3.1"))
    with headwater.client(token) as admin:
        create_channel(admin, "vault", privacy="private")
        with wheel.path.open("rb") as stream:
            response = admin.post(
                "/api/channels/vault/files", files={"file": (wheel.path.name, stream)}
            )
        assert response.status_code == 201, response.text
    metadata_sha = hashlib.sha256(wheel.metadata).hexdigest()
    lure = tmp_path / "lure" / "simple" / "lure"
    lure.mkdir(parents=True)
    (lure / "index.html").write_text(
        f'<a href="lure-1.0-py3-none-any.whl#sha256={wheel.sha256}" '
        f'data-core-metadata="sha256={metadata_sha}">lure-1.0-py3-none-any.whl</a>'
    )
    with serve_directory(tmp_path / "lure") as upstream, bob(headwater) as client:
        create_channel(client, "mine")
        mirror = create_mirror(
            client,
            "mine",
            upstream.url + "simple/",
            mirror_type="python_simple",
            filters={"projects": ["lure"]},
        )
        assert run_mirror(client, "mine", mirror["id"])["state"] == "completed"
        metadata = "/simple/lure/lure-1.0-py3-none-any.whl.metadata"
        asked = upstream.count(metadata)  # the run asked for the requirements (and got a 404)
        page = client.get("/api/repo/mine/simple/lure/", headers=JSON).json()
        assert [f["filename"] for f in page["files"]] == ["lure-1.0-py3-none-any.whl"]
        for name in ("lure-1.0-py3-none-any.whl", "lure-1.0-py3-none-any.whl.metadata"):
            response = client.get(f"/api/repo/mine/simple/lure/{name}")
            assert response.status_code == 502, (name, response.text)
            assert response.content not in (wheel.path.read_bytes(), wheel.metadata)
        assert upstream.count(metadata) == asked + 1


def test_channels_mirroring_the_same_upstream_share_what_it_delivered(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as upstream, headwater.client(token) as client:
        for channel in ("first", "second"):
            create_channel(client, channel)
            mirror = create_mirror(
                client,
                channel,
                upstream.url,
                mirror_mode="active",
                filters={"subdirs": ["linux-64", "noarch"]},
            )
            run = run_mirror(client, channel, mirror["id"])
            assert run["state"] == "completed", run["error"]
            downloaded = run["counters"]["downloaded"]
            assert downloaded == (len(CHAIN) if channel == "first" else 0), run["counters"]
        assert upstream.file_requests() == len(CHAIN)
        create_channel(client, "third")
        passive = create_mirror(client, "third", upstream.url, filters={"subdirs": ["noarch"]})
        assert run_mirror(client, "third", passive["id"])["state"] == "completed"
        response = client.get("/api/repo/third/noarch/hw-base-1.0-0.conda")
        assert response.status_code == 200
        assert upstream.file_requests() == len(CHAIN), "served from what the upstream delivered"


def test_after_the_upgrade_the_next_active_run_proves_again_what_it_keeps(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    """A channel mirrored before proofs were kept (migration 0004): its next run reads its
    upstream again, fetches the files it keeps, and reads again the core metadata it extracts
    from wheels whose upstream offers none, so every file is served again."""
    from sqlalchemy import delete, update

    from headwater.models import BlobSource, MirrorSubdirState

    built = build_index(tmp_path / "index", [Dist("plain", "1.0")])  # no .metadata upstream
    wheel = next(item for item in built if item.path.name.endswith(".whl"))
    with serve_directory(tmp_path / "index") as upstream, headwater.client(token) as client:
        create_channel(client, "py")
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="active",
            filters={"projects": ["plain"]},
        )
        assert run_mirror(client, "py", mirror["id"])["state"] == "completed"
        with headwater.resources.db.writing() as session:  # type: ignore[attr-defined]
            session.execute(delete(BlobSource))
            session.execute(update(MirrorSubdirState).values(filters_digest="before 0004"))
        metadata = f"/api/repo/py/simple/plain/{wheel.path.name}.metadata"
        assert client.get(metadata).status_code == 502  # no proof, and upstream has none
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "completed", run["error"]
        assert run["counters"]["downloaded"] == len(built), run["counters"]
        response = client.get(metadata)
        assert response.status_code == 200, response.text
        assert response.content == wheel.metadata
        assert upstream.count(f"/files/{wheel.path.name}.metadata") == 1  # the 502 above
