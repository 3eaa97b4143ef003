"""Files an upstream lists but cannot deliver (404, 410): an active run skips them with a warning
and publishes the rest, or fails with `on_missing_file` fail; other faults still fail it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.support.cli import signed_in
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import (
    create_channel,
    create_mirror,
    filenames,
    form_proof,
    repodata,
    run_mirror,
    sign_in_page,
)
from tests.support.python_packages import Dist, build_index
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import Fault, serve_directory

LIB = "hw-lib-2.0-0.conda"
LIB_PATH = f"/linux-64/{LIB}"


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def published(client: httpx.Client, channel: str) -> tuple[bytes, str]:
    response = client.get(f"/api/repo/{channel}/linux-64/repodata.json")
    return response.content, response.headers.get("etag", "")


def test_a_file_upstream_lacks_is_left_out_with_a_warning_and_fetched_next_run(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active")
        assert mirror["on_missing_file"] == "skip"  # the default
        upstream.faults[LIB_PATH] = Fault(status=404)

        run = run_mirror(client, "forge", mirror["id"])

        assert run["state"] == "completed", run["error"]
        [warning] = run["warnings"]
        assert warning["kind"] == "missing_file"
        assert (warning["filename"], warning["status"]) == (LIB, 404)
        assert warning["url"] == upstream.url + LIB_PATH.lstrip("/")
        assert LIB in warning["message"] and "404 Not Found" in warning["message"]
        assert run["counters"]["missing"] == 1
        assert any(line["level"] == "warning" and LIB in line["message"] for line in run["log"]), (
            run["log"]
        )
        listed = filenames(repodata(client, "forge", "linux-64"))
        assert LIB not in listed
        assert {"hw-lib-1.0-0.conda", "hw-app-1.0-0.tar.bz2"} <= listed
        served = client.get("/api/repo/forge/linux-64/hw-lib-1.0-0.conda")
        assert served.status_code == 200
        assert served.content == (upstream.root / "linux-64/hw-lib-1.0-0.conda").read_bytes()
        assert client.get(f"/api/repo/forge{LIB_PATH}").status_code == 404
        history = client.get(f"/api/channels/forge/mirrors/{mirror['id']}/runs").json()
        assert history["items"][0]["warnings"] == run["warnings"]

        # The history and the run's page say "with warnings" and name the file.
        page = client.get("/channels/forge/history").text
        assert 'data-warnings="1"' in page and "with 1 warning" in page
        detail = client.get(f"/runs/{run['id']}").text
        assert f'data-missing-file="{LIB}"' in detail
        assert warning["url"] in detail and "404" in detail

        # Upstream has the file again: the next run asks for it (the subdir is read again,
        # though its repodata did not change) and publishes it.
        del upstream.faults[LIB_PATH]
        again = run_mirror(client, "forge", mirror["id"])

        assert again["state"] == "completed", again["error"]
        assert again["warnings"] == [] and again["counters"]["missing"] == 0
        assert LIB in filenames(repodata(client, "forge", "linux-64"))
        served = client.get(f"/api/repo/forge{LIB_PATH}")
        assert served.status_code == 200
        assert served.content == (upstream.root / LIB_PATH.lstrip("/")).read_bytes()
        assert upstream.count(LIB_PATH) == 2
        assert client.get("/channels/forge/history").text.count("data-warnings=") == 1


def test_gone_is_skipped_as_missing_too(headwater: Headwater, token: str, upstream) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url, mirror_mode="active", filters={"subdirs": ["noarch"]}
        )
        upstream.faults["/noarch/hw-base-1.0-0.conda"] = Fault(status=410)
        run = run_mirror(client, "forge", mirror["id"])
        assert run["state"] == "completed", run["error"]
        assert [(w["filename"], w["status"]) for w in run["warnings"]] == [
            ("hw-base-1.0-0.conda", 410)
        ]
        assert filenames(repodata(client, "forge", "noarch")) == set()


def test_with_on_missing_file_fail_the_run_fails_naming_the_file(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url, mirror_mode="active", on_missing_file="fail"
        )
        assert mirror["on_missing_file"] == "fail"
        assert run_mirror(client, "forge", mirror["id"])["state"] == "completed"
        before = published(client, "forge")

        build_package(PackageSpec("hw-new", "1.0"), upstream.root / "linux-64")
        build_channel(upstream.root, [])
        upstream.faults["/linux-64/hw-new-1.0-0.conda"] = Fault(status=404)

        run = run_mirror(client, "forge", mirror["id"])

        assert run["state"] == "failed"
        assert "404 Not Found" in run["error"] and "hw-new-1.0-0.conda" in run["error"]
        assert "on_missing_file is fail" in run["error"]
        assert run["warnings"] == []
        assert published(client, "forge") == before


def test_a_server_error_that_stays_fails_the_run_even_when_skipping(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active")
        upstream.faults[LIB_PATH] = Fault(status=500)

        run = run_mirror(client, "forge", mirror["id"])

        assert run["state"] == "failed"
        assert "upstream answered 500 Internal Server Error" in run["error"]
        assert LIB in run["error"] and "after 2 attempts" in run["error"]
        assert upstream.count(LIB_PATH) == 2  # retried, then given up
        assert client.get("/api/repo/forge/linux-64/repodata.json").status_code == 404


def test_a_pypi_file_upstream_lacks_is_left_out_and_fetched_next_run(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    dists = [Dist("gamma", "1.0"), Dist("gamma", "1.1")]
    build_index(tmp_path / "pypi", dists)
    wheel = "gamma-1.1-py3-none-any.whl"
    with serve_directory(tmp_path / "pypi") as pypi, headwater.client(token) as client:
        create_channel(client, "py")
        mirror = create_mirror(
            client,
            "py",
            pypi.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="active",
            filters={"projects": ["gamma"]},
        )
        pypi.faults[f"/files/{wheel}"] = Fault(status=404)

        run = run_mirror(client, "py", mirror["id"])

        assert run["state"] == "completed", run["error"]
        assert [w["filename"] for w in run["warnings"]] == [wheel]
        assert client.get(f"/api/repo/py/simple/gamma/{wheel}").status_code == 404
        assert client.get("/api/repo/py/simple/gamma/gamma-1.0-py3-none-any.whl").is_success

        del pypi.faults[f"/files/{wheel}"]
        again = run_mirror(client, "py", mirror["id"])
        assert again["state"] == "completed", again["error"]
        assert again["warnings"] == []
        fetched = client.get(f"/api/repo/py/simple/gamma/{wheel}")
        assert fetched.status_code == 200
        assert fetched.content == (tmp_path / "pypi/files" / wheel).read_bytes()


def test_the_setting_through_rest_and_the_pages(headwater: Headwater, token: str, upstream) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        refused = client.post(
            "/api/channels/forge/mirrors",
            json={"mirror_name": "up", "source_root": upstream.url, "on_missing_file": "maybe"},
        )
        assert refused.status_code == 422
        assert "on_missing_file 'maybe' is not one of skip, fail" in refused.text
        mirror = create_mirror(client, "forge", upstream.url)
        path = f"/api/channels/forge/mirrors/{mirror['id']}"
        assert client.get(path).json()["on_missing_file"] == "skip"

        edited = client.patch(path, json={"on_missing_file": "fail"})
        assert edited.status_code == 200, edited.text
        assert edited.json()["on_missing_file"] == "fail"
        assert client.patch(path, json={"on_missing_file": 1}).status_code == 422
        wrong = client.patch(path, json={"on_missing_file": "ignore"})
        assert wrong.status_code == 422
        assert "on_missing_file 'ignore' is not one of skip, fail" in wrong.text
        assert client.get(path).json()["on_missing_file"] == "fail"

    with headwater.client() as browser:
        assert sign_in_page(browser, ADMIN, PASSWORD).status_code == 303
        assert 'data-on-missing-file="fail"' in browser.get("/channels/forge/mirrors").text
        form_page = browser.get(f"/channels/forge/mirrors/{mirror['id']}/edit").text
        assert re.search(r'name="on_missing_file" value="fail"\s+checked', form_page)
        saved = browser.post(
            f"/channels/forge/mirrors/{mirror['id']}/edit",
            data={
                "mirror_name": "upstream",
                "mirror_type": "conda",
                "source_root": upstream.url,
                "mirror_mode": "active",
                "on_missing_file": "skip",
                "cron": "0 0 * * *",
                "csrf": form_proof(browser, f"/channels/forge/mirrors/{mirror['id']}/edit"),
            },
        )
        assert saved.status_code == 303, saved.text
        assert 'data-on-missing-file="skip"' in browser.get("/channels/forge/mirrors").text


def test_the_setting_and_the_warnings_from_the_command_line(
    headwater: Headwater, upstream, tmp_path: Path
) -> None:
    cli = signed_in(headwater, tmp_path / "home")
    cli("channel", "create", "forge")
    created = cli(
        "mirror", "create", "forge", "--name", "up", "--source", upstream.url,
        "--mode", "active", "--on-missing-file", "fail", "--json",
    )  # fmt: skip
    mirror = json.loads(created.stdout)
    assert mirror["on_missing_file"] == "fail"
    refused = cli(
        "mirror", "edit", "forge", str(mirror["id"]), "--on-missing-file", "never", check=False
    )
    assert refused.returncode != 0
    assert "on_missing_file 'never' is not one of skip, fail" in refused.stdout + refused.stderr
    edited = cli("mirror", "edit", "forge", str(mirror["id"]), "--on-missing-file", "skip")
    assert "skip" in edited.stdout

    upstream.faults[LIB_PATH] = Fault(status=404)
    run = json.loads(cli("mirror", "run", "forge", str(mirror["id"]), "--wait", "--json").stdout)
    assert run["state"] == "completed" and run["warnings"][0]["filename"] == LIB
    shown = cli("run", "show", str(run["id"])).stdout
    assert "completed with 1 warning" in shown and LIB in shown
    assert "completed with 1 warning" in cli("mirror", "runs", "forge", str(mirror["id"])).stdout
