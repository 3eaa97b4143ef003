"""The CVE database through the REST API: import, matching, curation, scores and counts, and
the CVE rules of mirror runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater.settings import Settings
from tests.conftest import make_settings
from tests.support.advisories import (
    CRITICAL,
    MEDIUM_V2,
    import_zip,
    osv,
    zip_of,
    zip_of_files,
)
from tests.support.cli import signed_in
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, filenames, repodata, run_mirror
from tests.support.python_packages import Dist, build_dist
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import serve_directory


def upload(client: httpx.Client, channel: str, path: Path) -> None:
    with path.open("rb") as stream:
        response = client.post(
            f"/api/channels/{channel}/files",
            files={"file": (path.name, stream, "application/octet-stream")},
        )
    assert response.status_code == 201, response.text


def files_of(client: httpx.Client, channel: str, package: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/channels/{channel}/packages/{package}/files")
    assert response.status_code == 200, response.text
    return {f["filename"]: f for f in response.json()["items"]}


def matched(client: httpx.Client, cve_id: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/cves/{cve_id}/files")
    assert response.status_code == 200, response.text
    return {m["filename"]: m for m in response.json()["items"]}


# Real advisories -------------------------------------------------------------------------------


@pytest.fixture
def mapped_settings(tmp_path: Path, shared_data: Path) -> Settings:
    """Conda names mapped to PyPI names with the real parselmouth mapping."""
    mapping = shared_data / "mapping" / "parselmouth_compressed_mapping.json"
    return make_settings(tmp_path / "var", cve_name_mapping=mapping)


def test_real_advisories_match_vulnerable_versions_and_not_fixed_ones(
    mapped_settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    osv_root = shared_data / "osv"
    pysec = sorted((osv_root / "pypa-advisory-database" / "vulns").glob("*/*.yaml"))
    ghsa = sorted((osv_root / "github-advisory-database").glob("*/*.json"))
    nvd = sorted((osv_root / "nvd").glob("*.json"))
    requests_wheels = [
        build_dist(tmp_path / "dist", Dist("requests", version)) for version in ("2.19.1", "2.20.0")
    ]
    requests_conda = [
        build_package(PackageSpec("requests", version, subdir="noarch"), tmp_path / "conda")
        for version in ("2.19.1", "2.20.0")
    ]
    with run_headwater(mapped_settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "mixed")
        for item in requests_wheels:
            upload(client, "mixed", item.path)
        for path in requests_conda:
            upload(client, "mixed", path)

        imported = import_zip(client, zip_of_files(osv_root, pysec + ghsa + nvd))
        assert imported["advisories"] == len(pysec) + len(ghsa) + len(nvd)
        assert imported["problems"] == []
        assert imported["withdrawn"] >= 10

        cve = matched(client, "CVE-2018-18074")
        assert set(cve) == {"requests-2.19.1-py3-none-any.whl", "requests-2.19.1-0.conda"}
        assert {m["status"] for m in cve.values()} == {"reported"}
        files = files_of(client, "mixed", "requests")
        assert (
            files["requests-2.20.0-py3-none-any.whl"]["cve_count"]
            < (files["requests-2.19.1-py3-none-any.whl"]["cve_count"])
        )
        fixed_cves = {
            c["id"]
            for c in client.get("/api/cves", params={"channel": "mixed", "limit": 500}).json()[
                "items"
            ]
        }
        assert "CVE-2018-18074" in fixed_cves

        # NVD and GitHub disagree on CVE-2023-43804 (urllib3): both kept, NVD's used.
        detail = client.get("/api/cves/CVE-2023-43804").json()
        assert (detail["score"], detail["cvss3_source"], detail["severity"]) == (8.1, "nvd", "High")
        github = [s for s in detail["other_scores"] if s["source"] == "GHSA-v845-jxx5-vc9f"]
        assert [s["score"] for s in github] == [5.9]
        # Django's NVD record has CVSS v2 too.
        django = client.get("/api/cves/CVE-2022-34265").json()
        assert django["cvss2_score"] is not None and django["cvss2_vector"]

        again = import_zip(client, zip_of_files(osv_root, pysec + ghsa + nvd))
        assert again["unchanged"] == again["advisories"] and again["added"] == 0
        assert again["matching"] is None


def test_unscored_is_not_safe_with_real_advisories(
    headwater: Headwater, token: str, shared_data: Path, tmp_path: Path
) -> None:
    """PYSEC-2018-28 (CVE-2018-18074, requests before 2.20.0) carries no CVSS score, and no
    other advisory of the data scores that CVE: it shows as Unscored, summarized from its
    details, and keeps requests 2.19.1 out of a 7.0 threshold. PYSEC-2023-74 (CVE-2023-32681)
    and PYSEC-2021-142 (CVE-2020-14343) carry none either, but NVD's and GitHub's advisories
    of the same CVEs do, and the CVEs take their scores."""
    osv_root = shared_data / "osv"
    vulns = osv_root / "pypa-advisory-database" / "vulns"
    pysec = sorted(vulns.glob("requests/*.yaml")) + sorted(vulns.glob("pyyaml/*.yaml"))
    ghsa = sorted((osv_root / "github-advisory-database").glob("*/*.json"))
    nvd = sorted((osv_root / "nvd").glob("*.json"))
    build_channel(
        tmp_path / "upstream",
        [PackageSpec("requests", version, subdir="noarch") for version in ("2.19.1", "2.20.0")],
    )
    old, new = "requests-2.19.1-0.conda", "requests-2.20.0-0.conda"

    def cve(client: httpx.Client, cve_id: str) -> dict[str, Any]:
        response = client.get(f"/api/cves/{cve_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    with serve_directory(tmp_path / "upstream") as upstream, headwater.client(token) as client:
        assert import_zip(client, zip_of_files(osv_root, pysec))["problems"] == []
        for cve_id in ("CVE-2018-18074", "CVE-2023-32681", "CVE-2020-14343"):
            assert (cve(client, cve_id)["score"], cve(client, cve_id)["severity"]) == (
                None,
                "Unscored",
            )
        redirect = cve(client, "CVE-2018-18074")
        assert redirect["summary"].startswith("The Requests package before 2.20.0 for Python")
        assert len(redirect["summary"]) <= 200 < len(redirect["description"])

        # The same CVEs from NVD and GitHub: their scores now score the CVEs.
        assert import_zip(client, zip_of_files(osv_root, ghsa + nvd))["problems"] == []
        proxy = cve(client, "CVE-2023-32681")
        assert (proxy["score"], proxy["cvss3_source"], proxy["severity"]) == (6.1, "nvd", "Medium")
        yaml = cve(client, "CVE-2020-14343")
        assert (yaml["score"], yaml["cvss3_source"]) == (9.8, "GHSA-8q59-q68h-6hv4")
        assert cve(client, "CVE-2018-18074")["severity"] == "Unscored"

        # Under the default setting, a 7.0 threshold keeps 2.19.1 out for its unscored CVE.
        create_channel(client, "reqs")
        mirror = create_mirror(
            client, "reqs", upstream.url, mirror_mode="active", filters={"cve_score_threshold": 7}
        )
        preview = client.post(f"/api/channels/reqs/mirrors/{mirror['id']}/preview").json()
        assert {f["filename"]: f["detail"] for f in preview["files"]["items"]} == {
            old: "unscored CVE counted above cve_score_threshold 7.0",
            new: None,
        }
        run = run_mirror(client, "reqs", mirror["id"])
        assert run["state"] == "completed", run["error"]
        assert run["excluded_reasons"] == {"cve": 1}
        files = files_of(client, "reqs", "requests")
        assert set(files) == {new}
        assert (files[new]["cve_score"], files[new]["cve_unscored"]) == (6.1, False)

        # Counting unscored CVEs as 5.0 lets it in: scored 6.1, and unscored beside that.
        edited = client.put(
            f"/api/channels/reqs/mirrors/{mirror['id']}",
            json={"filters": {"cve_unscored_score": 5}},
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["filters"] == {"cve_score_threshold": 7.0, "cve_unscored_score": 5.0}
        run = run_mirror(client, "reqs", mirror["id"])
        assert run["state"] == "completed", run["error"]
        assert run["excluded_reasons"] == {}
        files = files_of(client, "reqs", "requests")
        assert (files[old]["cve_score"], files[old]["cve_unscored"]) == (6.1, True)
        listed = client.get("/api/cves", params={"channel": "reqs"}).json()
        assert {c["id"]: c["severity"] for c in listed["items"]} == {
            "CVE-2023-32681": "Medium",
            "CVE-2018-18074": "Unscored",
        }
        by_severity = client.get("/api/channels/reqs/cves").json()["by_severity"]
        assert (by_severity["Unscored"], by_severity["Medium"], by_severity["None"]) == (1, 1, 0)

        refused = client.put(
            f"/api/channels/reqs/mirrors/{mirror['id']}",
            json={"filters": {"cve_score_threshold": None}},
        )
        assert refused.status_code == 422
        assert "set cve_score_threshold too" in refused.json()["detail"]


# Synthetic advisories: curation, scores, counts --------------------------------------------------

ADVISORIES = {
    "a.json": osv("GHSA-test-0001", "scorepkg", aliases=("CVE-2099-0001",), vector=CRITICAL),
    "b.json": osv("PYSEC-2099-2", "scorepkg", aliases=("CVE-2099-0002",), vector=MEDIUM_V2),
}


def curate(client: httpx.Client, match_id: int, status: str, note: str = "") -> dict[str, Any]:
    response = client.put(f"/api/cves/matches/{match_id}", json={"status": status, "note": note})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_file_scores_follow_the_status_rule_and_counts_are_distinct(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    wheels = {
        v: build_dist(tmp_path / "dist", Dist("scorepkg", v)).path.name
        for v in ("1.0", "2.0", "3.0")
    }
    with headwater.client(token) as client:
        create_channel(client, "scores")
        for name in wheels.values():
            upload(client, "scores", tmp_path / "dist" / name)
        imported = import_zip(client, zip_of(ADVISORIES))
        assert imported["matching"]["added"] == 6
        critical, medium = matched(client, "CVE-2099-0001"), matched(client, "CVE-2099-0002")
        assert client.get("/api/cves/CVE-2099-0002").json()["score"] == 5.0

        # 1.0: only cleared matches → the highest cleared score.
        curate(client, critical[wheels["1.0"]]["id"], "cleared", "not reachable")
        curate(client, medium[wheels["1.0"]]["id"], "cleared")
        # 2.0: a reported 9.8 and an active 5.0 → 9.8.
        curate(client, medium[wheels["2.0"]]["id"], "active")
        # 3.0: an active 5.0 and a cleared 9.8 → 5.0.
        curate(client, medium[wheels["3.0"]]["id"], "active")
        shown = curate(client, critical[wheels["3.0"]]["id"], "cleared", "patched locally")
        assert shown["curated"] and shown["curated_by"] == "admin" and shown["curated_at"]

        files = files_of(client, "scores", "scorepkg")
        assert {v: files[name]["cve_score"] for v, name in wheels.items()} == {
            "1.0": 9.8,
            "2.0": 9.8,
            "3.0": 5.0,
        }
        assert all(files[name]["cve_count"] == 2 for name in wheels.values())

        cves = client.get("/api/channels/scores/cves").json()
        assert cves["total_count"] == 2  # two CVEs, six matches
        assert cves["by_severity"]["Critical"] == 1 and cves["by_severity"]["Medium"] == 1
        active = client.get("/api/cves", params={"status": "active"}).json()
        assert [c["id"] for c in active["items"]] == ["CVE-2099-0002"]
        assert active["items"][0]["statuses"] == {"active": 2}

        # A re-import that changes an advisory keeps every curation.
        changed = dict(ADVISORIES)
        changed["a.json"] = osv(
            "GHSA-test-0001",
            "scorepkg",
            aliases=("CVE-2099-0001",),
            vector=CRITICAL,
            summary="a better summary",
        )
        again = import_zip(client, zip_of(changed))
        assert again["updated"] == 1 and again["unchanged"] == 1
        after = matched(client, "CVE-2099-0001")
        assert after[wheels["3.0"]]["status"] == "cleared"
        assert after[wheels["3.0"]]["note"] == "patched locally"
        assert client.get("/api/cves/CVE-2099-0001").json()["summary"] == "a better summary"

        # Withdrawn, the advisory stops matching; fixed, the newer files leave the CVE.
        changed["b.json"] = osv(
            "PYSEC-2099-2",
            "scorepkg",
            aliases=("CVE-2099-0002",),
            vector=MEDIUM_V2,
            withdrawn="2024-02-01T00:00:00Z",
        )
        changed["a.json"] = osv(
            "GHSA-test-0001", "scorepkg", aliases=("CVE-2099-0001",), vector=CRITICAL, fixed="2.0"
        )
        import_zip(client, zip_of(changed))
        assert set(matched(client, "CVE-2099-0001")) == {wheels["1.0"]}
        assert matched(client, "CVE-2099-0002") == {}
        assert client.get("/api/channels/scores/cves").json()["total_count"] == 1


def test_bad_input_is_refused_with_the_reason(headwater: Headwater, token: str) -> None:
    with headwater.client(token) as client:
        refused = client.post(
            "/api/cves/import", files={"file": ("x.json", b"{not json", "application/json")}
        )
        assert refused.status_code == 422 and "not valid JSON" in refused.json()["detail"]
        refused = client.post(
            "/api/cves/import", files={"file": ("x.json", b'{"hello": 1}', "application/json")}
        )
        assert refused.status_code == 422
        assert "not an OSV advisory or an NVD record" in refused.json()["detail"]
        import_zip(client, zip_of(ADVISORIES))
        bad_status = client.put("/api/cves/matches/999999", json={"status": "cleared"})
        assert bad_status.status_code == 404
        assert client.get("/api/cves/CVE-1999-0000").status_code == 404
        assert client.get("/api/cves", params={"status": "fine"}).status_code == 422


# CVE rules in mirror runs ------------------------------------------------------------------------

RULE_ADVISORIES = {
    "lib.json": osv(
        "GHSA-hw-lib", "hw-lib", aliases=("CVE-2099-0100",), vector=CRITICAL, fixed="2.0"
    ),
    "base.json": osv("PYSEC-hw-base", "hw-base", aliases=("CVE-2099-0101",), vector=MEDIUM_V2),
}


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def _everything(client: httpx.Client, channel: str) -> set[str]:
    return filenames(repodata(client, channel, "linux-64")) | filenames(
        repodata(client, channel, "noarch")
    )


@pytest.mark.parametrize(
    ("filters", "dropped"),
    [
        ({"cve_score_threshold": 7}, {"hw-lib-1.0-0.conda"}),
        ({"exclude_non_curated_cve": True}, {"hw-lib-1.0-0.conda", "hw-base-1.0-0.conda"}),
    ],
)
def test_cve_rules_drop_files_from_active_mirrors_only(
    headwater: Headwater, token: str, upstream, filters: dict[str, Any], dropped: set[str]
) -> None:
    everything = {spec.filename for spec in CHAIN}
    with headwater.client(token) as client:
        import_zip(client, zip_of(RULE_ADVISORIES))
        for mode in ("active", "passive"):
            create_channel(client, mode)
            mirror = create_mirror(client, mode, upstream.url, mirror_mode=mode, filters=filters)
            preview = client.post(f"/api/channels/{mode}/mirrors/{mirror['id']}/preview").json()
            run = run_mirror(client, mode, mirror["id"])
            assert run["state"] == "completed", run["error"]
            if mode == "active":
                assert _everything(client, mode) == everything - dropped
                assert run["excluded_reasons"] == {"cve": len(dropped)}
                assert preview["counts"]["by_reason"] == {"cve": len(dropped)}
            else:
                assert _everything(client, mode) == everything
                assert run["excluded_reasons"] == {}
                assert preview["counts"]["by_reason"] == {}
        # The files the active mirror kept are matched and scored as they arrived.
        if "hw-base-1.0-0.conda" not in dropped:
            kept = files_of(client, "active", "hw-base")
            assert kept["hw-base-1.0-0.conda"]["cve_score"] == 5.0


def test_a_curated_match_lets_a_file_back_in(headwater: Headwater, token: str, upstream) -> None:
    with headwater.client(token) as client:
        import_zip(client, zip_of(RULE_ADVISORIES))
        create_channel(client, "curated")
        # First a mirror without CVE rules, so the files arrive and can be curated.
        mirror = create_mirror(client, "curated", upstream.url, mirror_mode="active")
        assert run_mirror(client, "curated", mirror["id"])["state"] == "completed"
        match = matched(client, "CVE-2099-0101")["hw-base-1.0-0.conda"]
        curate(client, match["id"], "mitigated", "we patch hw-base at build time")
        client.put(
            f"/api/channels/curated/mirrors/{mirror['id']}",
            json={"filters": {"exclude_non_curated_cve": True}},
        )
        run = run_mirror(client, "curated", mirror["id"])
        assert run["state"] == "completed", run["error"]
        kept = _everything(client, "curated")
        assert "hw-base-1.0-0.conda" in kept  # its only match is curated
        assert "hw-lib-1.0-0.conda" not in kept  # still reported
        assert run["excluded_reasons"] == {"cve": 1}


def test_cli_imports_lists_and_curates(headwater: Headwater, token: str, tmp_path: Path) -> None:
    headwater_cli = signed_in(headwater, tmp_path / "home")
    folder = tmp_path / "advisories"
    folder.mkdir()
    for name, document in ADVISORIES.items():
        (folder / name).write_text(json.dumps(document))
    wheel = build_dist(tmp_path / "dist", Dist("scorepkg", "1.0"))
    headwater_cli("channel", "create", "cli")
    headwater_cli("channel", "upload", "cli", str(wheel.path))
    imported = json.loads(headwater_cli("cve", "import", str(folder), "--json").stdout)
    assert imported["advisories"] == 2 and imported["matching"]["added"] == 2
    listed = json.loads(headwater_cli("cve", "list", "--channel", "cli", "--json").stdout)
    assert [c["id"] for c in listed["items"]] == ["CVE-2099-0001", "CVE-2099-0002"]
    files = json.loads(headwater_cli("cve", "files", "CVE-2099-0001", "--json").stdout)
    match_id = files["items"][0]["id"]
    curated = json.loads(
        headwater_cli(
            "cve", "curate", str(match_id), "--status", "disputed", "--note", "n/a",
            "--json",
        ).stdout
    )  # fmt: skip
    assert curated["status"] == "disputed" and curated["curated"]
    shown = headwater_cli("cve", "show", "CVE-2099-0001").stdout
    assert "Critical" in shown and "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" in shown
    refused = headwater_cli("cve", "import", str(tmp_path / "nowhere"), check=False)
    assert refused.returncode == 1 and "is not a file, a directory or a URL" in refused.stderr


def test_a_curation_follows_an_advisory_given_a_cve_id_later(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    wheel = build_dist(tmp_path / "dist", Dist("scorepkg", "1.0"))
    early = {"x.json": osv("GHSA-late-0001", "scorepkg", vector=CRITICAL)}
    later = {
        "x.json": osv("GHSA-late-0001", "scorepkg", vector=CRITICAL, aliases=("CVE-2099-0777",))
    }
    with headwater.client(token) as client:
        create_channel(client, "late")
        upload(client, "late", wheel.path)
        import_zip(client, zip_of(early))
        match = matched(client, "GHSA-late-0001")[wheel.path.name]
        curate(client, match["id"], "mitigated", "sandboxed")
        import_zip(client, zip_of(later))
        assert client.get("/api/cves/GHSA-late-0001").status_code == 404
        moved = matched(client, "CVE-2099-0777")[wheel.path.name]
        assert (moved["status"], moved["note"]) == ("mitigated", "sandboxed")


def test_a_malformed_advisory_is_a_problem_not_a_failure(headwater: Headwater, token: str) -> None:
    broken = osv("PYSEC-2099-9", "scorepkg")
    broken["affected"] = [None]
    broken["references"] = ["javascript:alert(1)"]
    with headwater.client(token) as client:
        imported = import_zip(client, zip_of({**ADVISORIES, "broken.json": broken}))
        assert imported["advisories"] == 2
        assert imported["problems"] and "broken.json" in imported["problems"][0]
        assert all(
            ref.startswith("https://")
            for ref in client.get("/api/cves/CVE-2099-0001").json()["references"]
        )
