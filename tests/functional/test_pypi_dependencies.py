"""A PyPI mirror that names one project takes its dependency tree, so pip installs it from
the channel alone; a must_install a filter change breaks fails the run and names the filter."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.pypi_clients import installed, pip_install
from tests.support.python_packages import Dist, build_index
from tests.support.server import Headwater
from tests.support.upstream import serve_directory

DISTS = [
    Dist("demo-app", "1.0", requires=("demo-lib[fast]>=1.0", "demo-win; sys_platform == 'win32'")),
    Dist("demo-lib", "0.9"),
    Dist("demo-lib", "1.0", requires=("demo-base>=2", "demo-speedups; extra == 'fast'")),
    Dist("demo-lib", "1.1", requires=("demo-base>=2", "demo-speedups; extra == 'fast'")),
    Dist("demo-lib", "1.1", kind="sdist", requires=("demo-base>=2",)),
    Dist("demo-base", "1.0"),
    Dist("demo-base", "2.0"),
    Dist("demo-speedups", "0.5"),
    Dist("demo-win", "1.0"),
    Dist("unrelated", "1.0"),
]


def _serve(tmp_path: Path, json_pages: bool):
    build_index(tmp_path / "upstream", DISTS, json_pages=json_pages)
    return serve_directory(tmp_path / "upstream")


def _logged(client: httpx.Client, run_id: int, text: str) -> bool:
    """Whether the run's log has `text` (a completed run's log is whole)."""
    log = client.get(f"/api/runs/{run_id}").json()["log"]
    return any(text in line["message"] for line in log)


def _channel_files(client: httpx.Client, channel: str) -> dict[str, set[str]]:
    index = client.get(
        f"/api/repo/{channel}/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert index.status_code == 200, index.text
    found = {}
    for project in index.json()["projects"]:
        page = client.get(
            f"/api/repo/{channel}/simple/{project['name']}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        found[project["name"]] = {file["filename"] for file in page.json()["files"]}
    return found


@pytest.mark.parametrize(
    ("mode", "json_pages"),
    [("active", False), ("passive", True)],
    ids=["active-html", "passive-json"],
)
def test_one_named_project_brings_its_dependency_tree(
    headwater: Headwater, token: str, tmp_path: Path, mode: str, json_pages: bool
) -> None:
    with _serve(tmp_path, json_pages) as upstream, headwater.client(token) as client:
        create_channel(client, "py")
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode=mode,
            filters={"projects": ["demo-app"], "include_dependencies": True},
        )
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "completed", run["error"]
        files = _channel_files(client, "py")
        assert set(files) == {"demo-app", "demo-lib", "demo-base", "demo-speedups", "demo-win"}
        assert files["demo-lib"] == {
            "demo_lib-1.0-py3-none-any.whl",
            "demo_lib-1.1-py3-none-any.whl",
            "demo_lib-1.1.tar.gz",
        }
        assert files["demo-base"] == {"demo_base-2.0-py3-none-any.whl"}
        report = run["report"]
        assert report["dependencies"]["taken"] == 6
        assert {f["reason"] for f in report["dependencies"]["files"]} >= {
            "dependency of demo-app",
            "dependency of demo-lib",
        }
        assert report["broken"]["total"] == 0
        assert run["counters"]["dependencies"] == 6
        assert _logged(client, run["id"], "took 6 files of 4 projects as dependencies")

        pip = pip_install(f"{headwater.url}/api/repo/py/simple", tmp_path / "pip", "demo-app")
        assert pip.returncode == 0, pip.stdout + pip.stderr
        # (the test wheels declare no Provides-Extra, so pip leaves the extra's requirement)
        assert installed(tmp_path / "pip") == {
            "demo-app": "1.0",
            "demo-lib": "1.1",
            "demo-base": "2.0",
        }

        # Only the newest: one version of each dependency.
        response = client.put(
            f"/api/channels/py/mirrors/{mirror['id']}",
            json={
                "filters": {
                    "projects": ["demo-app"],
                    "include_dependencies": True,
                    "dependencies": "newest",
                }
            },
        )
        assert response.status_code == 200, response.text
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "completed", run["error"]
        files = _channel_files(client, "py")
        assert files["demo-lib"] == {"demo_lib-1.1-py3-none-any.whl", "demo_lib-1.1.tar.gz"}


def test_a_filter_that_breaks_must_install_fails_the_run_and_names_itself(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    with _serve(tmp_path, json_pages=True) as upstream, headwater.client(token) as client:
        create_channel(client, "py")
        response = client.put(
            "/api/channels/py", json={"must_install": ["demo-app"], "on_unsolvable": "fail"}
        )
        assert response.status_code == 200, response.text
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="passive",
            filters={"projects": ["demo-app"], "include_dependencies": True},
        )
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "completed", run["error"]
        solves = run["report"]["must_install"]
        assert solves and all(solve["solved"] for solve in solves), solves
        before = {
            project: client.get(f"/api/repo/py/simple/{project}/").content
            for project in ("demo-app", "demo-lib", "demo-base")
        }

        response = client.put(
            "/api/channels/py", json={"filters": {"exclude_specs": ["demo-base"]}}
        )
        assert response.status_code == 200, response.text
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "failed"
        assert "must_install" in run["error"]
        detail = client.get(f"/api/runs/{run['id']}").json()
        solve = detail["report"]["must_install"][0]
        assert solve["solved"] is False, detail["report"]
        assert {"level": "channel", "key": "exclude_specs", "value": "demo-base"} in solve["causes"]
        groups = detail["report"]["broken"]["groups"]
        assert groups and groups[0]["dependency"] == "demo-base"
        assert groups[0]["causes"] == [
            {"level": "channel", "key": "exclude_specs", "value": "demo-base"}
        ]
        after = {
            project: client.get(f"/api/repo/py/simple/{project}/").content for project in before
        }
        assert after == before


def test_also_available_indexes_satisfy_what_the_channel_lacks(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    with _serve(tmp_path, json_pages=True) as upstream, headwater.client(token) as client:
        create_channel(client, "py")
        response = client.put(
            "/api/channels/py",
            json={
                "must_install": [{"spec": "demo-app", "platform": "linux-64"}],
                "on_unsolvable": "fail",
                "also_available": [upstream.url + "simple/"],
            },
        )
        assert response.status_code == 200, response.text
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="active",
            filters={"projects": ["demo-app"]},
        )
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "completed", run["error"]
        report = client.get(f"/api/runs/{run['id']}").json()["report"]
        assert report["dependencies"]["taken"] == 0
        assert report["broken"]["total"] == 0, report["broken"]
        [solve] = report["must_install"]
        assert solve["platform"] == "linux-64" and solve["solved"], solve
        assert "demo-base==2.0" in solve["message"]


def test_a_mirror_of_one_project_is_told_which_dependencies_its_projects_filter_leaves_out(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    with _serve(tmp_path, json_pages=True) as upstream, headwater.client(token) as client:
        create_channel(client, "alone")
        mirror = create_mirror(
            client,
            "alone",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="passive",
            filters={"projects": ["demo-app", "demo-lib"]},
        )
        run = run_mirror(client, "alone", mirror["id"])
        report = client.get(f"/api/runs/{run['id']}").json()["report"]

    assert run["state"] == "completed", run["error"]
    assert report["checked"]
    missing = {group["dependency"]: group for group in report["broken"]["groups"]}
    # demo-lib 1.0 and 1.1 need demo-base, which the mirror's projects filter does not name
    base = missing["demo-base"]
    assert base["causes"] == [{"level": "mirror", "key": "projects", "value": "demo-base"}]
    assert all(p["filename"].replace("_", "-").startswith("demo-lib-") for p in base["packages"])
    assert base["count"] == 3  # two wheels and the sdist of demo-lib 1.0 and 1.1
    assert "demo-lib" not in missing  # demo-app's demo-lib>=1.0 is in the channel


def test_the_preview_shows_the_dependency_tree_before_anything_is_downloaded(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    filters = {"projects": ["demo-app"], "include_dependencies": True}
    with _serve(tmp_path, json_pages=True) as upstream, headwater.client(token) as client:
        create_channel(client, "ahead")
        draft = {
            "source_root": upstream.url + "simple/",
            "mirror_type": "python_simple",
            "filters": filters,
        }
        response = client.post("/api/channels/ahead/mirrors/preview", json=draft)
        assert response.status_code == 200, response.text
        preview = response.json()
        taken = client.post(
            "/api/channels/ahead/mirrors/preview",
            params={"show": "taken", "reason": "dependency"},
            json=draft,
        ).json()
        assert upstream.file_requests() == 0
        mirror = create_mirror(
            client,
            "ahead",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="passive",
            filters=filters,
        )
        run = run_mirror(client, "ahead", mirror["id"])

    assert preview["subdirs"][0]["subdir"] == "demo-app"
    assert {s["subdir"] for s in preview["subdirs"]} >= {"demo-lib", "demo-base"}
    assert preview["counts"]["dependencies"] == run["counters"]["dependencies"] == 6
    assert preview["counts"]["taken"] == run["counters"]["added"]
    why = {f["filename"]: f["detail"] for f in taken["files"]["items"]}
    assert why["demo_base-2.0-py3-none-any.whl"] == "dependency of demo-lib"
    assert why["demo_lib-1.1.tar.gz"] == "dependency of demo-app"
    assert "demo_base-1.0-py3-none-any.whl" not in why
