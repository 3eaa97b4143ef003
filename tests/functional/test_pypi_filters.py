"""Filters on PyPI mirrors: licence, platform, date, spec, pre-release and keep-latest, each with
the reason it counts under, through the REST API against a loopback index of real files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_index
from tests.support.server import Headwater
from tests.support.upstream import serve_directory


def _day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


LINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
WINDOWS = "cp311-cp311-win_amd64"
MACOS = "cp311-cp311-macosx_11_0_arm64"
BSD = ("License :: OSI Approved :: BSD License",)
DISTS = [
    Dist("alpha", "1.0", license_expression="MIT", uploaded=_day("2023-01-05T10:00:00")),
    Dist("alpha", "2.0", license_expression="GPL-3.0-or-later", uploaded=_day("2024-03-01")),
    Dist("alpha", "2.1rc1", license_expression="MIT", uploaded=_day("2024-06-01")),
    Dist("alpha", "3.0", classifiers=BSD, uploaded=_day("2024-09-01")),
    Dist("alpha", "3.0", tag=LINUX, classifiers=BSD, uploaded=_day("2024-09-01")),
    Dist("alpha", "3.0", tag=WINDOWS, classifiers=BSD, uploaded=_day("2024-09-01")),
    Dist("alpha", "3.0", tag=MACOS, classifiers=BSD, uploaded=_day("2024-09-01")),
    Dist("alpha", "3.0", kind="sdist", classifiers=BSD, uploaded=_day("2024-09-01")),
    Dist("beta", "1.0", license="MIT License", uploaded=_day("2024-01-01")),
    Dist("beta", "1.1", license="MIT License", uploaded=_day("2024-02-01")),
    Dist("beta", "1.2", license="MIT License", uploaded=_day("2024-03-01")),
    Dist("beta", "1.3", license="MIT License", uploaded=_day("2024-04-01"), yanked="oops"),
]
ALL = {d.filename for d in DISTS}


def files_of(dists: list[Dist], version: str | None = None, project: str = "alpha") -> set[str]:
    return {d.filename for d in dists if d.project == project and version in (None, d.version)}


@pytest.fixture
def upstream(tmp_path: Path):
    build_index(tmp_path / "upstream", DISTS, json_pages=True)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def mirrored(
    headwater: Headwater,
    token: str,
    upstream,
    filters: dict[str, Any],
    channel: str = "py",
    **fields: Any,
) -> tuple[set[str], dict[str, Any]]:
    """Run a PyPI mirror of alpha and beta with `filters` into a new channel: the channel's
    files and the run. The mirror's preview must have foretold the run's counts."""
    with headwater.client(token) as client:
        create_channel(client, channel)
        body = {"mirror_type": "python_simple", **fields}
        filters = {"projects": ["alpha", "beta"], **filters}
        mirror = create_mirror(client, channel, upstream.url + "simple/", filters=filters, **body)
        run = run_mirror(client, channel, mirror["id"])
        assert run["state"] == "completed", run["error"]
        preview = client.post(f"/api/channels/{channel}/mirrors/{mirror['id']}/preview").json()
        run["preview"] = preview
        if not any("reads it from the files" in warning for warning in preview["warnings"]):
            assert preview["counts"]["by_reason"] == run["excluded_reasons"]
    return channel_files(headwater, channel), run


def channel_files(headwater: Headwater, channel: str) -> set[str]:
    found = set()
    with httpx.Client(base_url=headwater.url) as client:
        for project in ("alpha", "beta"):
            response = client.get(
                f"/api/repo/{channel}/simple/{project}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            )
            if response.status_code == 200:
                found |= {f["filename"] for f in response.json()["files"]}
    return found


PRERELEASE = files_of(DISTS, "2.1rc1")


def test_without_filters_everything_but_prereleases_arrives(
    headwater: Headwater, token: str, upstream
) -> None:
    files, run = mirrored(headwater, token, upstream, {})
    assert files == ALL - PRERELEASE
    assert run["excluded_reasons"] == {"spec": 1}


def test_prereleases_come_in_when_asked(headwater: Headwater, token: str, upstream) -> None:
    files, run = mirrored(headwater, token, upstream, {"include_prereleases": True})
    assert files == ALL
    assert run["excluded_reasons"] == {}


def test_license_filter_reads_core_metadata(headwater: Headwater, token: str, upstream) -> None:
    files, run = mirrored(headwater, token, upstream, {"exclude_licenses": ["gpl3"]})
    assert files == ALL - PRERELEASE - files_of(DISTS, "2.0")
    assert run["excluded_reasons"] == {"spec": 1, "license": 1}


def test_include_licenses_by_classifier(headwater: Headwater, token: str, upstream) -> None:
    files, run = mirrored(headwater, token, upstream, {"include_licenses": ["bsd"]})
    # The index offers core metadata for wheels only: the passive mirror cannot tell the
    # sdist's license, and an unknown license is not bsd.
    assert files == files_of(DISTS, "3.0") - {"alpha-3.0.tar.gz"}
    assert run["excluded_reasons"] == {"spec": 1, "license": 7}


def test_platform_filter_maps_subdirs_to_wheel_tags(
    headwater: Headwater, token: str, upstream
) -> None:
    files, run = mirrored(headwater, token, upstream, {"subdirs": ["win-64", "noarch"]})
    linux = {d.filename for d in DISTS if d.tag == LINUX}
    macos = {d.filename for d in DISTS if d.tag == MACOS}
    assert linux and macos
    assert files == ALL - PRERELEASE - linux - macos
    assert run["excluded_reasons"] == {"subdir": 2, "spec": 1}
    files, _ = mirrored(headwater, token, upstream, {"subdirs": ["linux-64"]}, channel="linux")
    assert files == linux


def test_date_filter_on_upload_time(headwater: Headwater, token: str, upstream) -> None:
    window = {"date_from": "2024-01-01", "date_to": "2024-03-01", "include_prereleases": True}
    files, run = mirrored(headwater, token, upstream, window)
    assert files == files_of(DISTS, "2.0") | files_of(DISTS, "1.0", "beta") | files_of(
        DISTS, "1.1", "beta"
    ) | files_of(DISTS, "1.2", "beta")
    assert run["excluded_reasons"] == {"date": len(ALL) - len(files)}


def test_spec_filters_are_pep_508(headwater: Headwater, token: str, upstream) -> None:
    files, run = mirrored(headwater, token, upstream, {"exclude_specs": ["alpha<3", "beta>=1.2"]})
    assert files == files_of(DISTS, "3.0") | files_of(DISTS, "1.0", "beta") | files_of(
        DISTS, "1.1", "beta"
    )
    assert run["excluded_reasons"] == {"spec": len(ALL) - len(files)}


def test_conda_specs_are_refused_on_a_pypi_mirror(headwater: Headwater, token: str) -> None:
    with headwater.client(token) as client:
        create_channel(client, "py")
        response = client.post(
            "/api/channels/py/mirrors",
            json={
                "mirror_name": "bad",
                "mirror_type": "python_simple",
                "source_root": "http://127.0.0.1:9/simple/",
                "filters": {"projects": ["alpha"], "only_specs": ["alpha 1.0 py_0"]},
            },
        )
    assert response.status_code == 422
    assert "alpha 1.0 py_0" in response.json()["detail"]


def test_keep_latest_keeps_the_newest_versions_not_yanked(
    headwater: Headwater, token: str, upstream
) -> None:
    files, run = mirrored(headwater, token, upstream, {"keep_latest": 2})
    # beta 1.3 is yanked: the two latest are the newest two nobody withdrew.
    assert files_of(DISTS, project="beta") & files == files_of(DISTS, "1.2", "beta") | files_of(
        DISTS, "1.1", "beta"
    )
    assert files_of(DISTS, project="alpha") & files == files_of(DISTS, "3.0") | files_of(
        DISTS, "2.0"
    )
    assert run["excluded_reasons"] == {"spec": len(ALL) - len(files)}


def test_channel_filter_applies_to_pypi_mirrors(headwater: Headwater, token: str, upstream) -> None:
    with headwater.client(token) as client:
        create_channel(client, "py", filters={"exclude_licenses": ["mit"]})
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            filters={"projects": ["alpha", "beta"]},
        )
        run = run_mirror(client, "py", mirror["id"])
    assert run["state"] == "completed", run["error"]
    assert channel_files(headwater, "py") == files_of(DISTS, "2.0") | files_of(DISTS, "3.0")
    assert run["excluded_reasons"] == {"spec": 1, "channel filter": 5}


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_without_index_metadata_passive_licenses_are_unknown_and_active_reads_the_file(
    headwater: Headwater, token: str, tmp_path: Path, mode: str
) -> None:
    build_index(tmp_path / "static", DISTS, json_pages=False)
    with serve_directory(tmp_path / "static") as static:
        files, run = mirrored(
            headwater, token, static, {"exclude_licenses": ["none"]}, mirror_mode=mode
        )
    if mode == "passive":
        assert files == set()
        assert run["excluded_reasons"] == {"spec": 1, "license": len(ALL) - 1}
    else:
        # Every file here states its licence inside; the active run read it from the file.
        assert files == ALL - PRERELEASE
        assert run["excluded_reasons"] == {"spec": 1}
        # The preview downloads no file, so it cannot know those licenses, and says so.
        assert run["preview"]["counts"]["by_reason"] == {"spec": 1, "license": len(ALL) - 1}
        assert any("no core metadata for 12 files" in w for w in run["preview"]["warnings"])
