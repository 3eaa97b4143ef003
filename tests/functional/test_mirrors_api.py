"""Conda mirrors through the REST API: fields, validation, subdirs, upstream changes, deletion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, filenames, repodata, run_mirror
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import forward_proxy, serve_directory

MIRROR_FIELDS = {
    "id",
    "mirror_name",
    "mirror_type",
    "source_root",
    "mirror_mode",
    "cron",
    "proxy",
    "filters",
    "state",
    "next_run_at",
}


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", [*CHAIN, PackageSpec("hw-mac", "1.0", subdir="osx-arm64")])
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_mirror_fields_defaults_and_validation(headwater: Headwater, token: str, upstream) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url)
        assert set(mirror) >= MIRROR_FIELDS
        assert mirror["mirror_type"] == "conda"
        assert mirror["mirror_mode"] == "passive"
        assert mirror["cron"] == "0 0 * * *"
        assert mirror["source_root"] == upstream.url
        assert mirror["state"] is None
        assert mirror["run"] is None

        def refused(body: dict, words: str, status: int = 422) -> None:
            response = client.post(
                "/api/channels/forge/mirrors",
                json={"mirror_name": "x", "source_root": upstream.url, **body},
            )
            assert response.status_code == status, response.text
            assert words in response.json()["detail"], response.json()

        refused(
            {"source_root": "https://example.com/conda"},
            "is not allowed; HEADWATER_UPSTREAM_ALLOWLIST permits",
        )
        refused({"source_root": "ftp://127.0.0.1/x"}, "is not an http(s) URL")
        refused({"mirror_mode": "lazy"}, "mirror_mode 'lazy' is not one of active, passive")
        refused({"mirror_type": "rpm"}, "mirror_type 'rpm' is not one of")
        refused({"filters": {"subdirs": ["linux-64", "beos-64"]}}, "unknown subdir 'beos-64'")
        refused(
            {"filters": {"exclude_everything": True}}, "unknown filter key 'exclude_everything'"
        )
        refused({"mirror_name": "upstream"}, "already has a mirror named 'upstream'", status=409)
        refused({"proxy": "gopher://proxy"}, "must be an http or https URL")
        refused({"mirror_name": ""}, "mirror_name '' is not valid")
        assert client.get("/api/channels/forge/mirrors").json()["total_count"] == 1

        shown = client.get(f"/api/channels/forge/mirrors/{mirror['id']}").json()
        assert shown["id"] == mirror["id"]
        assert client.get("/api/channels/forge/mirrors/999").status_code == 404
        assert client.get("/api/channels/nope/mirrors").status_code == 404


def test_subdirs_named_or_all_the_upstream_has(headwater: Headwater, token: str, upstream) -> None:
    with headwater.client(token) as client:
        create_channel(client, "every")
        everything = create_mirror(client, "every", upstream.url)
        assert run_mirror(client, "every", everything["id"])["state"] == "completed"
        assert "hw-mac-1.0-0.conda" in filenames(repodata(client, "every", "osx-arm64"))
        assert "hw-lib-2.0-0.conda" in filenames(repodata(client, "every", "linux-64"))

        create_channel(client, "linux")
        named = create_mirror(
            client, "linux", upstream.url, filters={"subdirs": ["linux-64", "noarch"]}
        )
        run = run_mirror(client, "linux", named["id"])
        assert run["state"] == "completed"
        assert run["counters"]["added"] == len(CHAIN)
        assert client.get("/api/repo/linux/osx-arm64/repodata.json").status_code == 404


def test_upstream_changes_reach_the_channel_and_unchanged_subdirs_are_not_refetched(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url, filters={"subdirs": ["linux-64", "noarch"]}
        )
        first = run_mirror(client, "forge", mirror["id"])
        assert first["counters"]["added"] == len(CHAIN)
        etag = client.get("/api/repo/forge/linux-64/repodata.json").headers["etag"]

        second = run_mirror(client, "forge", mirror["id"])
        assert second["state"] == "completed"
        assert second["counters"]["added"] == second["counters"]["removed"] == 0
        assert second["counters"]["unchanged"] == len(CHAIN)
        assert upstream.conditional_hits["/linux-64/repodata.json.zst"] == 1
        assert client.get("/api/repo/forge/linux-64/repodata.json").headers["etag"] == etag

        # Upstream drops hw-tool and adds hw-lib 3.0.
        (upstream.root / "linux-64" / "hw-tool-0.1-0.conda").unlink()
        build_package(
            PackageSpec("hw-lib", "3.0", depends=("hw-base",)), upstream.root / "linux-64"
        )
        build_channel(upstream.root, [])
        third = run_mirror(client, "forge", mirror["id"])
        assert (third["counters"]["added"], third["counters"]["removed"]) == (1, 1)
        names = filenames(repodata(client, "forge", "linux-64"))
        assert "hw-lib-3.0-0.conda" in names
        assert "hw-tool-0.1-0.conda" not in names
        assert client.get("/api/repo/forge/linux-64/hw-tool-0.1-0.conda").status_code == 404


def test_mode_change_from_passive_to_active_downloads_at_the_next_run(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url, filters={"subdirs": ["linux-64", "noarch"]}
        )
        assert run_mirror(client, "forge", mirror["id"])["counters"]["downloaded"] == 0
        client.put(f"/api/channels/forge/mirrors/{mirror['id']}", json={"mirror_mode": "active"})
        run = run_mirror(client, "forge", mirror["id"])
        assert run["counters"]["downloaded"] == len(CHAIN)
        assert upstream.file_requests() == len(CHAIN)


def test_two_mirrors_fill_one_channel_and_deleting_one_takes_its_files(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    other_root = tmp_path / "other"
    build_channel(other_root, [PackageSpec("other-pkg", "1.0"), PackageSpec("hw-tool", "0.1")])
    with serve_directory(other_root) as other, headwater.client(token) as client:
        create_channel(client, "mixed")
        first = create_mirror(
            client,
            "mixed",
            upstream.url,
            mirror_name="first",
            filters={"subdirs": ["linux-64", "noarch"]},
        )
        second = create_mirror(
            client,
            "mixed",
            other.url,
            mirror_name="second",
            filters={"subdirs": ["linux-64", "noarch"]},
        )
        assert run_mirror(client, "mixed", first["id"])["state"] == "completed"
        run = run_mirror(client, "mixed", second["id"])
        assert run["state"] == "completed"
        assert run["counters"]["added"] == 1  # hw-tool was already there from the first mirror
        assert any(
            "already in the channel from another source" in line["message"] for line in run["log"]
        )
        names = filenames(repodata(client, "mixed", "linux-64"))
        assert {"other-pkg-1.0-0.conda", "hw-tool-0.1-0.conda", "hw-lib-2.0-0.conda"} <= names

        all_mirrors = client.get("/api/mirrors").json()
        assert all_mirrors["total_count"] == 2
        assert {m["mirror_name"] for m in all_mirrors["items"]} == {"first", "second"}
        assert all(
            m["channel"] == "mixed" and m["state"] == "completed" for m in all_mirrors["items"]
        )

        assert client.delete(f"/api/channels/mixed/mirrors/{first['id']}").status_code == 204
        names = filenames(repodata(client, "mixed", "linux-64"))
        assert names == {"other-pkg-1.0-0.conda"}
        assert client.get("/api/channels/mixed/runs").json()["total_count"] == 1


def test_upstream_without_the_named_subdirs_fails_with_a_hint(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve_directory(empty) as nothing, headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", nothing.url, filters={"subdirs": ["linux-64"]})
        run = run_mirror(client, "forge", mirror["id"])
        assert run["state"] == "failed"
        assert "has none of the subdirs linux-64; check source_root" in run["error"]
        listed = create_mirror(client, "forge", nothing.url, mirror_name="probe")
        run = run_mirror(client, "forge", listed["id"])
        assert "serves no conda subdir" in run["error"]


def test_repodata_v2_base_url_and_conda_reserialised_records(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    """Upstreams that put files elsewhere (CEP-15 base_url) or carry url/channel fields."""
    import json

    root = tmp_path / "v2"
    build_channel(root, [PackageSpec("far", "1.0")])
    document = json.loads((root / "linux-64" / "repodata.json").read_text())
    (root / "files").mkdir()
    shutil.move(root / "linux-64" / "far-1.0-0.conda", root / "files" / "far-1.0-0.conda")
    for record in document["packages.conda"].values():
        record["url"] = "https://conda.anaconda.org/elsewhere/linux-64/far-1.0-0.conda"
        record["channel"] = "https://conda.anaconda.org/elsewhere"
    document["repodata_version"] = 2
    document["info"]["base_url"] = "../files/"
    (root / "linux-64" / "repodata.json").write_text(json.dumps(document))
    (root / "linux-64" / "repodata.json.zst").unlink()
    with serve_directory(root) as upstream, headwater.client(token) as client:
        create_channel(client, "far")
        mirror = create_mirror(
            client, "far", upstream.url, mirror_mode="active", filters={"subdirs": ["linux-64"]}
        )
        run = run_mirror(client, "far", mirror["id"])
        assert run["state"] == "completed", run["error"]
        record = repodata(client, "far", "linux-64")["packages.conda"]["far-1.0-0.conda"]
        assert "url" not in record and "channel" not in record
        assert upstream.count("/files/far-1.0-0.conda") == 1
        assert client.get("/api/repo/far/linux-64/far-1.0-0.conda").status_code == 200


def test_a_mirror_with_a_proxy_reaches_its_upstream_through_it(tmp_path: Path, upstream) -> None:
    with forward_proxy() as proxy:
        settings = make_settings(tmp_path / "var", proxy_allowlist=(proxy.url,))
        with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
            create_channel(client, "proxied")
            mirror = create_mirror(
                client,
                "proxied",
                upstream.url,
                mirror_mode="passive",
                proxy=proxy.url,
                filters={"subdirs": ["linux-64", "noarch"]},
            )
            assert mirror["proxy"] == proxy.url
            assert run_mirror(client, "proxied", mirror["id"])["state"] == "completed"
            assert f"{upstream.url}linux-64/repodata.json.zst" in proxy.requests
            # A passive file is fetched through the mirror's proxy too.
            assert client.get("/api/repo/proxied/linux-64/hw-lib-2.0-0.conda").status_code == 200
            assert f"{upstream.url}linux-64/hw-lib-2.0-0.conda" in proxy.requests


def test_transient_upstream_failures_are_retried(
    headwater: Headwater, token: str, upstream
) -> None:
    from tests.support.upstream import Fault

    upstream.faults["/linux-64/repodata.json.zst"] = Fault(status=503, times=1)
    upstream.faults["/linux-64/hw-lib-2.0-0.conda"] = Fault(status=502, times=1)
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client,
            "forge",
            upstream.url,
            mirror_mode="active",
            filters={"subdirs": ["linux-64", "noarch"]},
        )
        run = run_mirror(client, "forge", mirror["id"])
        assert run["state"] == "completed", run["error"]
        assert upstream.count("/linux-64/repodata.json.zst") == 2
        assert upstream.count("/linux-64/hw-lib-2.0-0.conda") == 2
