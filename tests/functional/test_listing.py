"""Lists on pages are sorted in the database by the column a header names (`sort=name`,
`sort=-name`), keep their filters while they sort and page, and refuse an unknown column with
422 that names the ones there are; a package's Files list pages by whole versions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

import httpx

from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.server import Headwater
from tests.support.upstream import serve_directory

SUBDIRS = ("linux-64", "osx-arm64", "win-64", "noarch")


def repodata_channel(root: Path, name: str, versions: Iterable[str], builds: int) -> int:
    """A conda channel of repodata only (a passive mirror fetches no file): `builds` files of
    package `name` per version in each of SUBDIRS. Returns how many files it lists."""
    count = 0
    for subdir in SUBDIRS:
        records = {}
        for version in versions:
            for number in range(builds):
                build = f"h{number:04d}_{number}"
                filename = f"{name}-{version}-{build}.conda"
                records[filename] = {
                    "build": build,
                    "build_number": number,
                    "depends": [],
                    "license": "MIT",
                    "name": name,
                    "sha256": hashlib.sha256(f"{subdir}/{filename}".encode()).hexdigest(),
                    "size": 1024 + number,
                    "subdir": subdir,
                    "timestamp": 1_700_000_000_000,
                    "version": version,
                }
        document = {
            "info": {"subdir": subdir},
            "packages": {},
            "packages.conda": records,
            "repodata_version": 1,
        }
        (root / subdir).mkdir(parents=True, exist_ok=True)
        (root / subdir / "repodata.json").write_text(json.dumps(document))
        count += len(records)
    return count


def rows(page: httpx.Response, attribute: str) -> list[str]:
    assert page.status_code == 200, page.text
    return re.findall(rf'<tr {attribute}="([^"]*)"', page.text)


def test_the_history_sorts_by_its_columns_and_refuses_an_unknown_one(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    repodata_channel(tmp_path / "upstream", "hw-small", ["1.0"], builds=1)
    with serve_directory(tmp_path / "upstream") as upstream, headwater.client(token) as client:
        create_channel(client, "sorted")
        good = create_mirror(client, "sorted", upstream.url, mirror_name="alpha")
        bad = create_mirror(client, "sorted", "http://127.0.0.1:9/", mirror_name="beta")
        first = run_mirror(client, "sorted", good["id"])
        second = run_mirror(client, "sorted", bad["id"])
        assert (first["state"], second["state"]) == ("completed", "failed")
        ids = [str(first["id"]), str(second["id"])]

        history = "/channels/sorted/history"
        assert rows(client.get(history), "data-run") == ids[::-1]  # newest first
        assert rows(client.get(history, params={"sort": "run"}), "data-run") == ids
        assert rows(client.get(history, params={"sort": "mirror"}), "data-run") == ids
        assert rows(client.get(history, params={"sort": "-mirror"}), "data-run") == ids[::-1]
        assert rows(client.get(history, params={"sort": "state"}), "data-run") == ids
        assert rows(client.get(history, params={"sort": "-state"}), "data-run") == ids[::-1]
        page = client.get(history, params={"sort": "-state"})
        assert 'aria-sort="descending"' in page.text
        assert 'href="/channels/sorted/history?sort=state"' in page.text  # the next click

        refused = client.get(history, params={"sort": "colour"})
        assert refused.status_code == 422
        assert "cannot sort by" in refused.text and "colour" in refused.text
        assert "sort by one of: run, mirror, state, started, finished" in refused.text
        assert client.get(history, params={"sort": "x" * 65}).status_code == 422
        api = client.get("/api/channels/sorted/runs")
        assert [str(run["id"]) for run in api.json()["items"]] == ids[::-1]


def test_the_jobs_sort_by_kind_and_keep_the_kind_filter(headwater: Headwater, token: str) -> None:
    with headwater.client(token) as client:
        create_channel(client, "jobs")
        mirror = create_mirror(client, "jobs", "http://127.0.0.1:9/")
        run_mirror(client, "jobs", mirror["id"])
        client.post("/api/jobs", json={"kind": "revision-prune"})  # 409 if one is under way
        kinds = rows(client.get("/admin/jobs", params={"sort": "kind"}), "data-kind")
        assert len(set(kinds)) >= 2 and kinds == sorted(kinds)
        backwards = rows(client.get("/admin/jobs", params={"sort": "-kind"}), "data-kind")
        assert backwards == sorted(kinds, reverse=True)

        page = client.get("/admin/jobs", params={"kind": "mirror", "sort": "-state"})
        assert set(rows(page, "data-kind")) == {"mirror"}
        # the headers sort within the filter; the filter form keeps the sort
        assert "/admin/jobs?kind=mirror&amp;sort=state" in page.text
        assert '<input type="hidden" name="sort" value="-state">' in page.text
        refused = client.get("/admin/jobs", params={"sort": "colour"})
        assert refused.status_code == 422 and "cannot sort by" in refused.text


def test_the_audit_log_sorts_within_its_filters_and_pages(headwater: Headwater, token: str) -> None:
    with headwater.client(token) as client:
        for name in ("bravo", "alpha", "charlie"):
            create_channel(client, name)
        created = {"action": "channel.create"}
        assert (
            rows(client.get("/admin/audit", params=created), "data-action")
            == ["channel.create"] * 3
        )

        def targets(**params: str) -> list[str]:
            page = client.get("/admin/audit", params={**created, **params})
            assert page.status_code == 200, page.text
            return re.findall(r"<td>channel\.create</td><td>([a-z]+)</td>", page.text)

        assert targets() == ["charlie", "alpha", "bravo"]  # newest first
        assert targets(sort="target") == ["alpha", "bravo", "charlie"]
        assert targets(sort="-target") == ["charlie", "bravo", "alpha"]
        assert targets(sort="when") == ["bravo", "alpha", "charlie"]
        assert targets(sort="target", offset="1") == ["bravo", "charlie"]
        # A page past the end says so and leads back, not "Showing 11-3 of 3".
        beyond = client.get("/admin/audit", params={**created, "offset": "10"}).text
        assert "This page is past the end: there are 3." in beyond
        assert 'href="/admin/audit?action=channel.create" rel="last"' in beyond
        assert 'rel="first"' in beyond and 'rel="prev"' not in beyond
        page = client.get("/admin/audit", params={**created, "sort": "target"})
        assert "/admin/audit?action=channel.create&amp;sort=-target" in page.text
        refused = client.get("/admin/audit", params={"sort": "-colour"})
        assert refused.status_code == 422 and "cannot sort by" in refused.text


def test_the_other_lists_sort_and_refuse_unknown_columns(headwater: Headwater, token: str) -> None:
    with headwater.client(token) as client:
        for name in ("bravo", "alpha"):
            create_channel(client, name, privacy="private" if name == "bravo" else "public")
        channels = re.compile(r'<td><a href="/channels/([a-z]+)/packages">')
        assert channels.findall(client.get("/channels").text) == ["alpha", "bravo"]
        assert channels.findall(client.get("/channels?sort=-name").text) == ["bravo", "alpha"]
        assert channels.findall(client.get("/channels?sort=-privacy").text) == ["alpha", "bravo"]
        for path in (
            "/channels",
            "/channels/alpha/revisions",
            "/admin/users",
            "/mirrors",
            "/organizations",
        ):
            assert client.get(path, params={"sort": "-created_at"}).status_code == 422, path
            assert client.get(path, params={"offset": "-1"}).status_code == 422, path
        assert client.get("/channels/alpha/revisions", params={"sort": "-files"}).status_code == 200
        assert client.get("/admin/users", params={"sort": "-signed-in"}).status_code == 200
        assert client.get("/mirrors", params={"sort": "state", "state": "never"}).status_code == 200
        assert client.get("/organizations", params={"sort": "-created"}).status_code == 200


def test_a_package_page_pages_by_whole_versions(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    # 32 files a version (4 subdirs, 8 builds): three whole versions fit on a page of 100
    versions = [f"1.{minor}" for minor in range(10)]
    total = repodata_channel(tmp_path / "upstream", "hw-many", versions, builds=8)
    with serve_directory(tmp_path / "upstream") as upstream, headwater.client(token) as client:
        create_channel(client, "many")
        mirror = create_mirror(client, "many", upstream.url, mirror_mode="passive")
        assert run_mirror(client, "many", mirror["id"])["state"] == "completed"
        seen: list[str] = []
        offset: str | None = "0"
        while offset is not None:
            page = client.get("/channels/many/packages/hw-many", params={"offset": offset})
            shown = re.findall(r'<a href="/api/repo/many/([^"]+)">', page.text)
            assert len(shown) == len(rows(page, "data-file"))
            groups = re.findall(r'<tbody data-version="([^"]*)">', page.text)
            assert len(shown) == 32 * len(groups) <= 100  # whole versions only
            seen += shown
            found = re.search(r'href="[^"]*offset=(\d+)" rel="next"', page.text)
            offset = found.group(1) if found else None
        assert len(seen) == len(set(seen)) == total == 320
        first = client.get("/channels/many/packages/hw-many")
        assert re.findall(r'<tbody data-version="([^"]*)">', first.text) == ["1.9", "1.8", "1.7"]
        # an offset inside a page shows the page that holds it
        middle = client.get("/channels/many/packages/hw-many", params={"offset": 40})
        assert middle.text.count("<tr data-file") == 96
        assert rows(middle, "data-file") == rows(first, "data-file")
        assert client.get("/channels/many/packages/nothing").status_code == 404
