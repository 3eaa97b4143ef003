"""Channels through the REST API: sign-in, create, list, edit, delete, upload, and serving."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import zstandard

from headwater.formats.conda.shards import read_shard_index
from tests.support.conda_packages import PackageSpec, build_package
from tests.support.flows import create_channel, filenames
from tests.support.server import Headwater


def test_sign_in_gives_a_token_that_works_in_either_header(headwater: Headwater) -> None:
    with headwater.client() as client:
        bad = client.post("/api/auth/login", json={"username": "admin", "password": "nope"})
        assert bad.status_code == 401
        assert bad.json()["detail"] == "wrong username or password"
        token = client.post(
            "/api/auth/login",
            json={"username": "admin", "password": "correct horse battery staple"},
        ).json()["token"]
        assert client.get("/api/account", headers={"X-Auth": token}).json()["username"] == "admin"
        assert (
            client.get("/api/account", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )
        assert client.get("/api/account", headers={"X-Auth": "forged"}).status_code == 401


def test_managing_channels_needs_a_signed_in_user(headwater: Headwater) -> None:
    with headwater.client() as client:
        refused = client.post("/api/channels", json={"name": "forge"})
        assert refused.status_code == 401
        assert refused.json()["detail"].startswith("sign in to create channels")
        assert client.get("/api/channels").json() == {"items": [], "total_count": 0}


def test_channel_lifecycle(headwater: Headwater, token: str) -> None:
    with headwater.client(token) as client:
        created = create_channel(client, "forge", description="conda-forge for us")
        assert created["name"] == "forge"
        assert created["owner"] == "admin"
        assert created["privacy"] == "public"
        assert created["filters"] == {}

        duplicate = client.post("/api/channels", json={"name": "forge"})
        assert duplicate.status_code == 409
        for bad in ("Forge", "1forge", "for ge", "t"):
            response = client.post("/api/channels", json={"name": bad})
            assert response.status_code == 422, bad
            assert repr(bad) in response.json()["detail"]
        unknown = client.post("/api/channels", json={"name": "x", "colour": "blue"})
        assert unknown.status_code == 422
        assert "unknown field 'colour'" in unknown.json()["detail"]

        for name in ("bravo", "alpha"):
            create_channel(client, name)
        listing = client.get("/api/channels", params={"limit": 2}).json()
        assert listing["total_count"] == 3
        assert [c["name"] for c in listing["items"]] == ["alpha", "bravo"]
        assert [
            c["name"] for c in client.get("/api/channels", params={"offset": 2}).json()["items"]
        ] == ["forge"]

        edited = client.put(
            "/api/channels/forge",
            json={"description": "ours", "filters": {"subdirs": ["linux-64", "noarch"]}},
        )
        assert edited.status_code == 200
        assert edited.json()["description"] == "ours"
        assert edited.json()["filters"] == {"subdirs": ["linux-64", "noarch"]}
        bad_filter = client.put("/api/channels/forge", json={"filters": {"subdirs": ["linux-65"]}})
        assert bad_filter.status_code == 422
        assert "unknown subdir 'linux-65'" in bad_filter.json()["detail"]
        unknown_key = client.put("/api/channels/forge", json={"filters": {"colour": ["blue"]}})
        assert unknown_key.status_code == 422
        assert "unknown filter key 'colour'" in unknown_key.json()["detail"]
        cleared = client.put("/api/channels/forge", json={"filters": {"subdirs": None}})
        assert cleared.json()["filters"] == {}

        assert client.delete("/api/channels/forge").status_code == 204
        gone = client.get("/api/channels/forge")
        assert gone.status_code == 404
        assert gone.json()["detail"] == "channel 'forge' does not exist"


def upload(client, channel: str, path: Path, name: str | None = None):
    with path.open("rb") as stream:
        return client.post(
            f"/api/channels/{channel}/files", files={"file": (name or path.name, stream)}
        )


def test_upload_reads_metadata_from_the_package_and_publishes_it(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    conda = build_package(PackageSpec("up-lib", "1.2", depends=("python >=3.9",)), tmp_path)
    bz2 = build_package(
        PackageSpec("up-data", "0.1", subdir="noarch", extension=".tar.bz2"), tmp_path
    )
    with headwater.client(token) as client:
        create_channel(client, "uploads")
        added = upload(client, "uploads", conda)
        assert added.status_code == 201, added.text
        file = added.json()
        assert (file["subdir"], file["name"], file["version"], file["build"]) == (
            "linux-64",
            "up-lib",
            "1.2",
            "0",
        )
        assert file["uploaded_by"] == "admin"
        assert upload(client, "uploads", bz2).status_code == 201

        linux = client.get("/api/repo/uploads/linux-64/repodata.json").json()
        record = linux["packages.conda"]["up-lib-1.2-0.conda"]
        assert record["depends"] == ["python >=3.9"]
        assert record["sha256"] == file["sha256"]
        assert record["size"] == conda.stat().st_size
        assert (
            "up-data-0.1-0.tar.bz2"
            in client.get("/api/repo/uploads/noarch/repodata.json").json()["packages"]
        )
        assert (
            client.get("/api/repo/uploads/linux-64/up-lib-1.2-0.conda").content
            == conda.read_bytes()
        )

        again = upload(client, "uploads", conda)
        assert again.status_code == 409
        assert "already in channel" in again.json()["detail"]

        files = client.get("/api/channels/uploads/packages/up-lib/files").json()
        assert [f["filename"] for f in files["items"]] == ["up-lib-1.2-0.conda"]
        packages = client.get("/api/channels/uploads/packages").json()
        assert [p["name"] for p in packages["items"]] == ["up-data", "up-lib"]


def test_broken_archives_are_refused_and_store_nothing(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    good = build_package(PackageSpec("up-lib", "1.2"), tmp_path)
    truncated = tmp_path / "up-lib-1.3-0.conda"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    no_index = tmp_path / "up-lib-1.4-0.conda"
    with zipfile.ZipFile(no_index, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
    garbage = tmp_path / "up-lib-1.5-0.tar.bz2"
    garbage.write_bytes(b"no bzip2 here")
    wrong_name = tmp_path / "renamed-1.0-0.conda"
    wrong_name.write_bytes(good.read_bytes())

    store_root = headwater.settings.resolved_blob_dir
    with headwater.client(token) as client:
        create_channel(client, "uploads")
        before = sorted(p for p in store_root.rglob("*") if p.is_file())
        for path, words in [
            (truncated, "not a readable conda package"),
            (no_index, "has no info component (info-*.tar.zst) at its top level"),
            (garbage, "not a readable conda package"),
            (wrong_name, "does not match its metadata"),
        ]:
            response = upload(client, "uploads", path)
            assert response.status_code == 422, (path.name, response.text)
            assert words in response.json()["detail"], response.json()
        readme = upload(client, "uploads", good, name="README.txt")
        assert readme.status_code == 422
        assert "not a conda package file name" in readme.json()["detail"]
        assert sorted(p for p in store_root.rglob("*") if p.is_file()) == before
        assert client.get("/api/channels/uploads").json()["file_count"] == 0


def test_serving_validators_head_noarch_and_clear_404s(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    package = build_package(PackageSpec("srv", "1.0"), tmp_path)
    with headwater.client(token) as client:
        create_channel(client, "srv")
        assert client.get("/api/repo/srv/noarch/repodata.json").json() == {
            "info": {"subdir": "noarch"},
            "packages": {},
            "packages.conda": {},
            "removed": [],
            "repodata_version": 1,
        }
        upload(client, "srv", package)

    with headwater.client() as anonymous:  # public channels need no token
        first = anonymous.get("/api/repo/srv/linux-64/repodata.json")
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert first.headers["last-modified"]
        assert (
            anonymous.get(
                "/api/repo/srv/linux-64/repodata.json", headers={"If-None-Match": etag}
            ).status_code
            == 304
        )
        assert (
            anonymous.get(
                "/api/repo/srv/linux-64/repodata.json",
                headers={"If-Modified-Since": first.headers["last-modified"]},
            ).status_code
            == 304
        )
        head = anonymous.head("/api/repo/srv/linux-64/repodata.json")
        assert head.status_code == 200
        # Of the representation negotiated (repodata.json is sent gzipped or zstd-compressed).
        assert head.headers["content-length"] == first.headers["content-length"]
        assert head.content == b""

        zst = anonymous.get("/api/repo/srv/linux-64/repodata.json.zst")
        assert zstandard.ZstdDecompressor().decompressobj().decompress(zst.content) == first.content
        shard_index = anonymous.get("/api/repo/srv/linux-64/repodata_shards.msgpack.zst")
        shards = read_shard_index(shard_index.content)
        assert list(shards) == ["srv"]
        shard = anonymous.get(f"/api/repo/srv/linux-64/shards/{shards['srv']}.msgpack.zst")
        assert shard.status_code == 200
        assert "immutable" in shard.headers["cache-control"]
        head_file = anonymous.head("/api/repo/srv/linux-64/srv-1.0-0.conda")
        assert int(head_file.headers["content-length"]) == package.stat().st_size

        # A channel nobody has is one an anonymous caller may not see: sign in (401).
        nope = anonymous.get("/api/repo/nope/linux-64/repodata.json")
        assert nope.status_code == 401
        assert nope.headers["www-authenticate"] == 'Basic realm="headwater"'
        with headwater.client(token) as signed_in:
            missing = signed_in.get("/api/repo/nope/linux-64/repodata.json")
            assert missing.status_code == 404
            assert missing.json()["detail"] == "channel 'nope' does not exist"
        for path, words in [
            ("/api/repo/srv/linux-65/repodata.json", "'linux-65' is not a conda subdir"),
            ("/api/repo/srv/osx-64/repodata.json", "has no packages for osx-64"),
            (
                "/api/repo/srv/linux-64/missing-1.0-0.conda",
                "has no file linux-64/missing-1.0-0.conda",
            ),
            ("/api/repo/srv/linux-64/shards/" + "0" * 64 + ".msgpack.zst", "has no shard"),
        ]:
            response = anonymous.get(path)
            assert response.status_code == 404, path
            assert words in response.json()["detail"], (path, response.json())


def test_deleting_a_file_republishes_its_subdir(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    package = build_package(PackageSpec("gone", "1.0"), tmp_path)
    with headwater.client(token) as client:
        create_channel(client, "srv")
        upload(client, "srv", package)
        assert "gone-1.0-0.conda" in filenames(
            client.get("/api/repo/srv/linux-64/repodata.json").json()
        )
        assert client.delete("/api/channels/srv/files/linux-64/gone-1.0-0.conda").status_code == 204
        assert filenames(client.get("/api/repo/srv/linux-64/repodata.json").json()) == set()
        assert client.delete("/api/channels/srv/files/linux-64/gone-1.0-0.conda").status_code == 404


def test_zst_repodata_is_smaller(headwater: Headwater, token: str, tmp_path: Path) -> None:
    with headwater.client(token) as client:
        create_channel(client, "many")
        for index in range(20):
            upload(client, "many", build_package(PackageSpec("many", f"1.{index}"), tmp_path))
        plain = client.get("/api/repo/many/linux-64/repodata.json").content
        packed = client.get("/api/repo/many/linux-64/repodata.json.zst").content
        assert len(packed) < len(plain) / 3
        assert len(json.loads(plain)["packages.conda"]) == 20
        assert io.BytesIO(packed).read(4) == b"\x28\xb5\x2f\xfd"  # the zstd magic number


@pytest.mark.parametrize("privacy", ["authenticated", "private"])
def test_non_public_channels_need_a_token(
    headwater: Headwater, token: str, tmp_path: Path, privacy: str
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "secret", privacy=privacy)
        upload(client, "secret", build_package(PackageSpec("s", "1.0"), tmp_path))
    with headwater.client() as anonymous:
        refused = anonymous.get("/api/repo/secret/linux-64/repodata.json")
        assert refused.status_code == 401
        assert (
            anonymous.get(f"/api/repo/t/{token}/secret/linux-64/repodata.json").status_code == 200
        )
        assert (
            anonymous.get(
                "/api/repo/secret/linux-64/repodata.json", headers={"X-Auth": token}
            ).status_code
            == 200
        )
