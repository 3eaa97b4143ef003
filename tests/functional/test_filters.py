"""Filters through the REST API: validation, edits that take effect at the next run, filters
that leave nothing, and the preview."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.conda_packages import CHAIN, PackageSpec, build_channel
from tests.support.flows import create_channel, create_mirror, filenames, repodata, run_mirror
from tests.support.server import Headwater
from tests.support.upstream import serve_directory

OLD = 1_600_000_000_000  # 2020-09-13
NEW = 1_700_000_000_000  # 2023-11-14
PACKAGES = [
    *CHAIN,
    PackageSpec("hw-old", "0.1", timestamp=OLD),
    PackageSpec("hw-new", "0.1", timestamp=NEW, license="BSD-3-Clause", license_family="BSD"),
    PackageSpec("hw-undated", "0.1", timestamp=None),
]


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", PACKAGES)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


@pytest.mark.parametrize(
    ("filters", "words"),
    [
        ({"only_specs": ["hw-lib"], "exclude_specs": ["hw-app"]}, "only_specs cannot be combined"),
        ({"exclude_specs": ["hw-lib >=>1"]}, "'hw-lib >=>1' is not a valid conda MatchSpec"),
        ({"exclude_specs": ["conda-forge::numpy"]}, "not channel"),
        ({"exclude_licenses": ["gplv3"]}, "unknown license family 'gplv3'"),
        ({"date_from": "2024/01/01"}, "'2024/01/01' is not a date written YYYY-MM-DD"),
        ({"date_from": "2024-02-30"}, "filter 'date_from'"),
        (
            {"date_from": "2024-03-01", "date_to": "2024-02-01"},
            "date_from 2024-03-01 is after date_to",
        ),
        ({"cve_score_threshold": 11}, "filter 'cve_score_threshold'"),
        ({"exclude_non_curated_cve": "yes"}, "filter 'exclude_non_curated_cve'"),
        ({"licences": ["mit"]}, "unknown filter key 'licences'"),
    ],
)
def test_invalid_filters_are_refused_with_the_reason(
    headwater: Headwater, token: str, upstream, filters: dict, words: str
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        for path, body in (
            (
                "/api/channels/forge/mirrors",
                {"mirror_name": "m", "source_root": upstream.url, "filters": filters},
            ),
        ):
            response = client.post(path, json=body)
            assert response.status_code == 422, response.text
            assert words in response.json()["detail"]
        channel = client.put("/api/channels/forge", json={"filters": filters})
        assert channel.status_code == 422 and words in channel.json()["detail"]
        assert client.get("/api/channels/forge").json()["filters"] == {}


def test_every_key_round_trips(headwater: Headwater, token: str, upstream) -> None:
    filters = {
        "subdirs": ["linux-64", "noarch"],
        "include_specs": ["hw-lib >=2"],
        "exclude_specs": ["hw-*"],
        "include_licenses": ["mit", "bsd"],
        "exclude_licenses": ["gpl3"],
        "date_from": "2020-01-01",
        "date_to": "2030-12-31",
        "cve_score_threshold": 7.5,
        "exclude_non_curated_cve": True,
    }
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, filters=filters)
        assert mirror["filters"] == filters
        merged = client.put(
            f"/api/channels/forge/mirrors/{mirror['id']}",
            json={"filters": {"date_to": None, "exclude_licenses": ["gpl2", "gpl3"]}},
        ).json()
        assert "date_to" not in merged["filters"]
        assert merged["filters"]["exclude_licenses"] == ["gpl2", "gpl3"]
        assert merged["filters"]["include_specs"] == ["hw-lib >=2"]


def test_filters_that_leave_nothing_give_an_empty_channel_and_say_why(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "empty", filters={"exclude_licenses": ["mit", "gpl3", "bsd"]})
        mirror = create_mirror(
            client, "empty", upstream.url, filters={"subdirs": ["linux-64", "noarch"]}
        )
        run = run_mirror(client, "empty", mirror["id"])
        assert run["state"] == "completed"
        assert run["counters"]["added"] == 0
        assert run["excluded_reasons"] == {"channel filter": len(PACKAGES)}
        assert filenames(repodata(client, "empty", "linux-64")) == set()
        assert filenames(repodata(client, "empty", "noarch")) == set()

        create_channel(client, "disjoint", filters={"subdirs": ["osx-arm64"]})
        other = create_mirror(client, "disjoint", upstream.url, filters={"subdirs": ["linux-64"]})
        run = run_mirror(client, "disjoint", other["id"])
        assert run["state"] == "completed" and run["counters"]["seen"] == 0
        assert any("share no subdir" in line["message"] for line in run["log"])


def test_a_narrowed_filter_removes_files_and_a_widened_one_brings_them(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url, filters={"subdirs": ["linux-64", "noarch"]}
        )
        assert run_mirror(client, "forge", mirror["id"])["counters"]["added"] == len(PACKAGES)

        client.put(
            f"/api/channels/forge/mirrors/{mirror['id']}",
            json={"filters": {"exclude_specs": ["hw-lib <2"]}},
        )
        narrowed = run_mirror(client, "forge", mirror["id"])
        assert (narrowed["counters"]["added"], narrowed["counters"]["removed"]) == (0, 1)
        assert narrowed["excluded_reasons"] == {"spec": 1}
        assert "hw-lib-1.0-0.conda" not in filenames(repodata(client, "forge", "linux-64"))

        client.put("/api/channels/forge", json={"filters": {"date_from": "2021-01-01"}})
        dated = run_mirror(client, "forge", mirror["id"])
        assert dated["excluded_reasons"] == {"spec": 1, "channel filter": 2}  # hw-old, hw-undated
        assert dated["counters"]["removed"] == 2

        client.put(
            f"/api/channels/forge/mirrors/{mirror['id']}", json={"filters": {"exclude_specs": None}}
        )
        client.put("/api/channels/forge", json={"filters": {"date_from": None}})
        widened = run_mirror(client, "forge", mirror["id"])
        assert (widened["counters"]["added"], widened["counters"]["removed"]) == (3, 0)
        assert "hw-lib-1.0-0.conda" in filenames(repodata(client, "forge", "linux-64"))


def test_preview_says_what_would_be_taken_and_dropped_without_downloading(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge", filters={"exclude_licenses": ["gpl3"]})
        draft = {
            "source_root": upstream.url,
            "filters": {"subdirs": ["linux-64", "noarch"], "date_from": "2021-01-01"},
        }
        response = client.post("/api/channels/forge/mirrors/preview", json=draft)
        assert response.status_code == 200, response.text
        preview = response.json()
        assert preview["counts"] == {
            "seen": len(PACKAGES),
            "taken": len(PACKAGES) - 3,
            "dropped": 3,
            "by_reason": {"date": 2, "channel filter": 1},
            "dependencies": 0,
        }
        linux = next(s for s in preview["subdirs"] if s["subdir"] == "linux-64")
        assert linux["by_reason"] == {"date": 2, "channel filter": 1}
        why = {f["filename"]: f["detail"] for f in preview["files"]["items"] if not f["taken"]}
        # Each file's size as the upstream's index gives it.
        assert all(f["size"] and f["size"] > 0 for f in preview["files"]["items"])
        assert why == {
            "hw-old-0.1-0.conda": "published before date_from 2021-01-01",
            "hw-undated-0.1-0.conda": "no timestamp",
            "hw-tool-0.1-0.conda": "channel filter: license 'GPL-3.0-only' (gpl3) is in exclude_licenses",
        }
        dropped = client.post(
            "/api/channels/forge/mirrors/preview",
            params={"show": "dropped", "reason": "date", "limit": 1},
            json=draft,
        ).json()
        assert dropped["files"]["total_count"] == 2 and len(dropped["files"]["items"]) == 1
        assert upstream.file_requests() == 0

        trial = client.post(
            "/api/channels/forge/mirrors/preview",
            json={**draft, "channel_filters": {"subdirs": ["osx-64"]}},
        ).json()
        assert trial["warnings"] == ["the subdirs filters share no subdir"]
        assert trial["counts"]["seen"] == 0

        mirror = create_mirror(client, "forge", upstream.url, filters=draft["filters"])
        saved = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/preview").json()
        assert saved["counts"] == preview["counts"]
        run = run_mirror(client, "forge", mirror["id"])
        assert run["excluded_reasons"] == preview["counts"]["by_reason"]
        assert run["counters"]["added"] == preview["counts"]["taken"]

        refused = client.post(
            "/api/channels/forge/mirrors/preview", json={"source_root": "https://example.com/"}
        )
        assert refused.status_code == 422 and "not allowed" in refused.json()["detail"]
