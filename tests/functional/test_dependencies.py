"""Dependency-aware conda mirroring: a run takes what its kept packages need, checks the revision
it built before it becomes the head, and names the filter that broke an install."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import make_settings
from tests.functional.test_conda_client import solve_and_install
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, filenames, repodata, run_mirror
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import serve_directory

FORGE = Path(__file__).resolve().parents[3] / "shared" / "data" / "repodata"
FORGE = FORGE / "conda-forge-subchannel-python3.9"


def groups_for(run: dict[str, Any], dependency: str) -> list[dict[str, Any]]:
    return [g for g in run["report"]["broken"]["groups"] if g["dependency"] == dependency]


def channel_files(client: httpx.Client, channel: str) -> set[str]:
    found = set()
    for subdir in ("linux-64", "noarch"):
        response = client.get(f"/api/repo/{channel}/{subdir}/repodata.json")
        if response.status_code == 200:
            found |= filenames(response.json())
    return found


@pytest.mark.shared_data
def test_excluding_gpl_on_conda_forge_names_libgcc_ng_and_the_channel_filter(
    headwater: Headwater, token: str
) -> None:
    if not FORGE.is_dir():
        pytest.skip(f"{FORGE} is absent")
    with serve_directory(FORGE) as upstream, headwater.client(token) as client:
        create_channel(
            client,
            "forge",
            filters={"exclude_licenses": ["gpl2", "gpl3"], "subdirs": ["linux-64", "noarch"]},
        )
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="passive")
        run = run_mirror(client, "forge", mirror["id"])
        log = "\n".join(
            line["message"] for line in client.get(f"/api/runs/{run['id']}").json()["log"]
        )

    assert run["state"] == "completed", run["error"]
    assert run["report"]["checked"]
    groups = groups_for(run, "libgcc-ng")
    assert groups, run["report"]["broken"]["groups"][:5]
    causes = [cause for group in groups for cause in group["causes"]]
    assert {"level": "channel", "key": "exclude_licenses", "value": "gpl3"} in causes
    example = groups[0]["packages"][0]
    assert example["subdir"] == "linux-64"
    assert example["spec"].startswith("libgcc-ng")
    # most linux-64 packages need it: hundreds of them are named broken
    assert sum(group["count"] for group in groups) > 300
    assert "need libgcc-ng" in log and "the channel's exclude_licenses gpl3" in log


@pytest.fixture
def chain(tmp_path: Path):
    specs = [
        *CHAIN,
        PackageSpec("hw-base", "1.1", subdir="noarch"),
        PackageSpec("hw-gpl-lib", "1.0", license="GPL-3.0-only", license_family="GPL3"),
        PackageSpec("hw-gpl-app", "1.0", depends=("hw-gpl-lib", "__glibc >=2.17")),
    ]
    build_channel(tmp_path / "upstream", specs)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_include_dependencies_takes_the_closure_and_rattler_installs_it(
    headwater: Headwater, token: str, chain, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "deps")
        mirror = create_mirror(
            client,
            "deps",
            chain.url,
            mirror_mode="active",
            filters={"only_specs": ["hw-app"], "include_dependencies": True},
        )
        run = run_mirror(client, "deps", mirror["id"])
        files = channel_files(client, "deps")

    assert run["state"] == "completed", run["error"]
    # hw-app needs hw-lib >=2 (not 1.0), which needs hw-base >=1.0: both versions by default
    assert files == {
        "hw-app-1.0-0.tar.bz2",
        "hw-lib-2.0-0.conda",
        "hw-base-1.0-0.conda",
        "hw-base-1.1-0.conda",
    }
    assert run["counters"]["dependencies"] == 3
    reasons = {item["filename"]: item["reason"] for item in run["report"]["dependencies"]["files"]}
    assert reasons["hw-lib-2.0-0.conda"] == "dependency of hw-app"
    assert reasons["hw-base-1.1-0.conda"] == "dependency of hw-lib"
    assert run["report"]["broken"]["total"] == 0

    installed = solve_and_install(
        f"{headwater.url}/api/repo/deps", "hw-app", tmp_path / "env", tmp_path / "cache"
    )
    assert installed == ["hw-app-1.0", "hw-base-1.1", "hw-lib-2.0"]


def test_the_preview_shows_what_the_closure_adds_before_anything_is_downloaded(
    headwater: Headwater, token: str, chain
) -> None:
    filters = {"only_specs": ["hw-app"], "include_dependencies": True}
    with headwater.client(token) as client:
        create_channel(client, "ahead")
        draft = {"source_root": chain.url, "filters": filters}
        response = client.post("/api/channels/ahead/mirrors/preview", json=draft)
        assert response.status_code == 200, response.text
        preview = response.json()
        taken = client.post(
            "/api/channels/ahead/mirrors/preview",
            params={"show": "taken", "reason": "dependency"},
            json=draft,
        ).json()
        assert chain.file_requests() == 0
        mirror = create_mirror(client, "ahead", chain.url, mirror_mode="passive", filters=filters)
        run = run_mirror(client, "ahead", mirror["id"])

    assert preview["counts"]["taken"] == 4
    assert preview["counts"]["dependencies"] == 3
    why = {f["filename"]: f["detail"] for f in taken["files"]["items"]}
    assert why == {
        "hw-lib-2.0-0.conda": "dependency of hw-app",
        "hw-base-1.0-0.conda": "dependency of hw-lib",
        "hw-base-1.1-0.conda": "dependency of hw-lib",
    }
    assert run["counters"]["added"] == preview["counts"]["taken"]
    assert run["counters"]["dependencies"] == preview["counts"]["dependencies"]
    assert run["excluded_reasons"] == preview["counts"]["by_reason"]


def test_newest_takes_one_version_and_refusing_filters_still_hold(
    headwater: Headwater, token: str, chain
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "newest", filters={"exclude_licenses": ["gpl3"]})
        mirror = create_mirror(
            client,
            "newest",
            chain.url,
            mirror_mode="passive",
            filters={
                "only_specs": ["hw-app", "hw-gpl-app"],
                "include_dependencies": True,
                "dependencies": "newest",
            },
        )
        run = run_mirror(client, "newest", mirror["id"])
        files = channel_files(client, "newest")

    assert run["state"] == "completed", run["error"]
    assert files == {
        "hw-app-1.0-0.tar.bz2",
        "hw-gpl-app-1.0-0.conda",
        "hw-lib-2.0-0.conda",
        "hw-base-1.1-0.conda",
    }
    # the GPL library is refused by the channel, and reported rather than taken
    [group] = groups_for(run, "hw-gpl-lib")
    assert group["causes"] == [{"level": "channel", "key": "exclude_licenses", "value": "gpl3"}]
    assert group["packages"] == [
        {"subdir": "linux-64", "filename": "hw-gpl-app-1.0-0.conda", "spec": "hw-gpl-lib"}
    ]
    # a virtual package is the client's machine, never a finding
    assert not groups_for(run, "__glibc")


def test_an_unsolvable_must_install_fails_the_run_and_clients_keep_the_previous_revision(
    headwater: Headwater, token: str, chain
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "guarded")
        response = client.put(
            "/api/channels/guarded",
            json={"must_install": [{"spec": "hw-app", "platform": "linux-64"}]},
        )
        assert response.status_code == 200, response.text
        assert response.json()["on_unsolvable"] == "fail"
        mirror = create_mirror(client, "guarded", chain.url, mirror_mode="passive")
        first = run_mirror(client, "guarded", mirror["id"])
        assert first["state"] == "completed", first["error"]
        [solve] = first["report"]["must_install"]
        assert solve["solved"] and solve["platform"] == "linux-64"
        before = {
            subdir: client.get(f"/api/repo/guarded/{subdir}/repodata.json")
            for subdir in ("linux-64", "noarch")
        }
        head = client.get("/api/channels/guarded").json()["head"]

        client.put("/api/channels/guarded", json={"filters": {"exclude_specs": ["hw-base"]}})
        second = run_mirror(client, "guarded", mirror["id"])

        assert second["state"] == "failed"
        assert "must_install on linux-64 cannot be solved" in second["error"]
        assert "the channel's exclude_specs hw-base" in second["error"]
        [solve] = second["report"]["must_install"]
        assert not solve["solved"]
        assert {"level": "channel", "key": "exclude_specs", "value": "hw-base"} in solve["causes"]
        assert "hw-base" in solve["message"]
        for subdir, response in before.items():
            after = client.get(f"/api/repo/guarded/{subdir}/repodata.json")
            assert after.content == response.content
            assert after.headers["X-Headwater-Revision"] == str(head)
        assert client.get("/api/channels/guarded").json()["head"] == head

        client.put("/api/channels/guarded", json={"on_unsolvable": "warn"})
        third = run_mirror(client, "guarded", mirror["id"])
        assert third["state"] == "completed", third["error"]
        assert not third["report"]["must_install"][0]["solved"]
        assert "hw-base-1.0-0.conda" not in filenames(repodata(client, "guarded", "noarch"))


def test_also_available_satisfies_what_the_channel_leaves_to_another(
    headwater: Headwater, token: str, chain, tmp_path: Path
) -> None:
    build_channel(tmp_path / "base", [PackageSpec("hw-base", "1.0", subdir="noarch")])
    with serve_directory(tmp_path / "base") as base, headwater.client(token) as client:
        create_channel(client, "inhouse")
        mirror = create_mirror(
            client,
            "inhouse",
            chain.url,
            mirror_mode="passive",
            filters={"only_specs": ["hw-app", "hw-lib"]},
        )
        alone = run_mirror(client, "inhouse", mirror["id"])
        assert alone["state"] == "completed", alone["error"]
        [group] = groups_for(alone, "hw-base")
        assert group["causes"] == [{"level": "mirror", "key": "only_specs", "value": ""}]

        response = client.put("/api/channels/inhouse", json={"also_available": [base.url]})
        assert response.status_code == 200, response.text
        assert response.json()["also_available"] == [base.url.rstrip("/") + "/"]
        beside = run_mirror(client, "inhouse", mirror["id"])

    assert beside["state"] == "completed", beside["error"]
    assert beside["report"]["checked"]
    assert groups_for(beside, "hw-base") == []
    assert beside["report"]["broken"]["total"] == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"must_install": "hw-app"}, "must_install: Input should be a valid list"),
        ({"must_install": [{"spec": "hw-app", "platform": "amiga"}]}, "unknown platform"),
        ({"must_install": ["numpy >=>= 1"]}, "must_install entry 1"),
        ({"must_install": [{"spec": "x", "extra": 1}]}, "must_install entry 1"),
        ({"must_install": ["a"] * 101}, "at most 100"),
        ({"must_install": ["py*"]}, "neither a conda MatchSpec"),
        ({"must_install": ["x @ https://example.org/x.whl"]}, "names a URL"),
        ({"also_available": ["ftp://example.org/"]}, "not an http(s) URL"),
        ({"also_available": ["http://10.0.0.1/internal/"]}, "not allowed"),
        ({"also_available": ["http://user:pw@127.0.0.1:9/c/"]}, "credentials"),
        ({"also_available": ["http://127.0.0.1:9/c/?token=secret"]}, "query or fragment"),
        ({"also_available": ["http://127.0.0.1:99999/c/"]}, "not an http(s) URL"),
        ({"also_available": ["http://xn--/"]}, "not an http(s) URL"),
        ({"also_available": [{"url": 1}]}, "also_available"),
        ({"on_unsolvable": "explode"}, "not one of fail, warn"),
        ({"filters": {"dependencies": "some"}}, "dependencies"),
        ({"filters": {"include_dependencies": "yes"}}, "include_dependencies"),
    ],
)
def test_dependency_settings_refuse_bad_input_with_a_4xx_that_says_why(
    headwater: Headwater, token: str, fields: dict[str, Any], message: str
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "strict")
        response = client.put("/api/channels/strict", json=fields)
        channel = client.get("/api/channels/strict").json()
    assert response.status_code in (400, 422), response.text
    assert message in response.text
    assert channel["must_install"] == [] and channel["also_available"] == []
    assert channel["on_unsolvable"] == "fail"


@pytest.mark.postgres
def test_dependencies_are_taken_and_checked_on_postgres(
    tmp_path: Path, postgres_url: str, chain
) -> None:
    settings = make_settings(tmp_path / "var", database_url=postgres_url)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "pg")
        client.put("/api/channels/pg", json={"must_install": ["hw-app"]})
        mirror = create_mirror(
            client,
            "pg",
            chain.url,
            mirror_mode="passive",
            filters={"only_specs": ["hw-app"], "include_dependencies": True},
        )
        first = run_mirror(client, "pg", mirror["id"])
        assert first["state"] == "completed", first["error"]
        assert first["counters"]["dependencies"] == 3
        assert [solve["solved"] for solve in first["report"]["must_install"]] == [True]
        before = client.get("/api/repo/pg/noarch/repodata.json").content

        client.put("/api/channels/pg", json={"filters": {"exclude_licenses": ["mit"]}})
        second = run_mirror(client, "pg", mirror["id"])

        assert second["state"] == "failed"
        assert not second["report"]["must_install"][0]["solved"]
        assert client.get("/api/repo/pg/noarch/repodata.json").content == before


def raw_record(name: str, version: str, depends: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "build": "0",
        "build_number": 0,
        "sha256": "a" * 64,
        "size": 1,
        "depends": depends,
        "license": "MIT",
        "timestamp": 1_700_000_000_000,
        **extra,
    }


def write_repodata(root: Path, subdir: str, records: dict[str, dict[str, Any]]) -> None:
    (root / subdir).mkdir(parents=True, exist_ok=True)
    document = {"info": {"subdir": subdir}, "packages": records}
    (root / subdir / "repodata.json").write_bytes(orjson.dumps(document))


def test_what_an_upstream_writes_in_depends_never_breaks_a_run(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    long_spec = "lib " + ">=1," * 30_000
    write_repodata(
        tmp_path / "up",
        "linux-64",
        {
            "a-1-0.tar.bz2": raw_record("a", "1", None, constrains=None),  # mamba writes this
            "b-1-0.tar.bz2": raw_record("b", "1", "lib"),
            "c-1-0.tar.bz2": raw_record("c", "1", [1, {"x": 2}, "lib >=1"]),
            "d-1-0.tar.bz2": raw_record("d", "1", [], constrains="lib <2"),
            "e-1-0.tar.bz2": raw_record("e", "1", [long_spec, "lib >=>= 1"]),
            "f-1-0.tar.bz2": raw_record("f", "1", ["<script>alert(1)</script>"]),
            "g-1-0.tar.bz2": raw_record("g", "1", ["a"]),
        },
    )
    write_repodata(tmp_path / "up", "noarch", {})
    with serve_directory(tmp_path / "up") as upstream, headwater.client(token) as client:
        create_channel(client, "odd")
        client.put("/api/channels/odd", json={"must_install": ["g"], "on_unsolvable": "fail"})
        mirror = create_mirror(
            client,
            "odd",
            upstream.url,
            mirror_mode="passive",
            filters={"include_dependencies": True},
        )
        run = run_mirror(client, "odd", mirror["id"])
        page = client.get(f"/runs/{run['id']}")
        published = repodata(client, "odd", "linux-64")
        log = [line["message"] for line in client.get(f"/api/runs/{run['id']}").json()["log"]]

    assert run["state"] == "completed", run["error"]
    # what is not a list makes a record unusable; a null is read as none and dropped
    assert filenames(published) == {
        "a-1-0.tar.bz2",
        "c-1-0.tar.bz2",
        "e-1-0.tar.bz2",
        "f-1-0.tar.bz2",
        "g-1-0.tar.bz2",
    }
    assert "depends" not in published["packages"]["a-1-0.tar.bz2"]
    assert sum("skipped" in line and "is not a list" in line for line in log) == 2
    # py-rattler reads the published subdir and solves g (which needs a)
    [solve] = run["report"]["must_install"]
    assert solve["solved"], solve
    specs = {p["spec"] for g in run["report"]["broken"]["groups"] for p in g["packages"]}
    assert all(len(spec) <= 300 for spec in specs)
    assert any(spec.startswith("lib >=1,>=1,") and spec.endswith("…") for spec in specs)
    assert {"lib >=>= 1", "<script>alert(1)</script>"} <= specs
    assert page.status_code == 200 and "<script>alert(1)" not in page.text
    assert len(orjson.dumps(run["report"])) < 100_000


def test_a_run_of_an_unchanged_upstream_keeps_naming_the_filter(
    headwater: Headwater, token: str, chain, tmp_path: Path
) -> None:
    upload = build_package(PackageSpec("hw-extra", "1.0", depends=("hw-base",)), tmp_path / "up")
    with headwater.client(token) as client:
        create_channel(client, "steady", filters={"exclude_specs": ["hw-base"]})
        mirror = create_mirror(client, "steady", chain.url, mirror_mode="passive")
        first = run_mirror(client, "steady", mirror["id"])
        second = run_mirror(client, "steady", mirror["id"])  # nothing changed anywhere
        with upload.open("rb") as stream:
            response = client.post(
                "/api/channels/steady/files", files={"file": (upload.name, stream)}
            )
        assert response.status_code == 201, response.text
        third = run_mirror(client, "steady", mirror["id"])  # the head moved: checked again

    cause = {"level": "channel", "key": "exclude_specs", "value": "hw-base"}
    for run in (first, second, third):
        assert run["state"] == "completed", run["error"]
        [group] = groups_for(run, "hw-base")
        assert group["causes"] == [cause]
    assert "that report stands" in second["report"]["notes"][0]
    assert second["report"]["revision"] == first["report"]["revision"]
    assert third["report"]["revision"] == first["report"]["revision"] + 1
    [group] = groups_for(third, "hw-base")
    assert "hw-extra-1.0-0.conda" in {p["filename"] for p in group["packages"]}
    assert any("upstream unchanged" in note for note in third["report"]["notes"])


def test_an_also_available_channel_that_cannot_be_read_is_a_note(
    headwater: Headwater, token: str, chain, tmp_path: Path
) -> None:
    (tmp_path / "garbage" / "linux-64").mkdir(parents=True)
    (tmp_path / "garbage" / "linux-64" / "repodata.json").write_text('{"packages": {"x": 1}}')
    (tmp_path / "garbage" / "noarch").mkdir(parents=True)
    (tmp_path / "garbage" / "noarch" / "repodata.json").write_text("not json")
    with serve_directory(tmp_path / "garbage") as garbage, headwater.client(token) as client:
        create_channel(client, "beside")
        client.put(
            "/api/channels/beside",
            json={"also_available": [garbage.url], "must_install": ["hw-app"]},
        )
        mirror = create_mirror(
            client,
            "beside",
            chain.url,
            mirror_mode="passive",
            filters={"only_specs": ["hw-app", "hw-lib"]},
        )
        run = run_mirror(client, "beside", mirror["id"])

    # hw-base is missing and the other channel cannot say otherwise: a finding, a failed solve
    assert run["state"] == "failed"
    assert "must_install on linux-64 cannot be solved" in run["error"]
    assert groups_for(run, "hw-base")
    notes = run["report"]["notes"]
    assert any(note.startswith(f"also_available {garbage.url}") for note in notes), notes
