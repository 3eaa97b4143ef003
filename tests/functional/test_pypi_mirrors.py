"""PyPI mirrors and uploads beyond the happy path: corrupted files, unknown projects, upstream
changes between runs, and uploads by REST, CLI and twine."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from headwater.storage import content_key
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_dist, build_index
from tests.support.server import Headwater
from tests.support.upstream import Fault, serve_directory

DISTS = [
    Dist("gamma", "1.0", license_expression="Apache-2.0"),
    Dist("gamma", "1.0", kind="sdist"),
    Dist("gamma", "1.1", license_expression="Apache-2.0"),
]
WHEEL = "/files/gamma-1.1-py3-none-any.whl"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def upstream(tmp_path: Path):
    build_index(tmp_path / "upstream", DISTS)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def pypi_mirror(client: httpx.Client, channel: str, upstream, mode: str, **filters) -> dict:
    create_channel(client, channel)
    return create_mirror(
        client,
        channel,
        upstream.url + "simple/",
        mirror_type="python_simple",
        mirror_mode=mode,
        filters={"projects": ["gamma"], **filters},
    )


def listed(client: httpx.Client, channel: str, project: str = "gamma") -> dict[str, str]:
    response = client.get(f"/api/repo/{channel}/simple/{project}/", headers=JSON)
    if response.status_code == 404:
        return {}
    assert response.status_code == 200, response.text
    return {f["filename"]: f["hashes"]["sha256"] for f in response.json()["files"]}


def test_active_run_fails_on_a_corrupted_wheel_and_changes_nothing(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        mirror = pypi_mirror(client, "py", upstream, "active", exclude_specs=["gamma>1.0"])
        assert run_mirror(client, "py", mirror["id"])["state"] == "completed"
        before = listed(client, "py")
        assert set(before) == {"gamma-1.0-py3-none-any.whl", "gamma-1.0.tar.gz"}

        upstream.faults[WHEEL] = Fault(body=b"not the wheel the index promised")
        client.put(
            f"/api/channels/py/mirrors/{mirror['id']}", json={"filters": {"exclude_specs": None}}
        )
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "failed"
        assert "checksum mismatch for gamma-1.1-py3-none-any.whl" in run["error"]
        assert listed(client, "py") == before
        assert client.get("/api/repo/py/simple/gamma/gamma-1.1-py3-none-any.whl").status_code == 404


def test_passive_first_request_of_a_corrupted_wheel_errors_and_stores_nothing(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        mirror = pypi_mirror(client, "py", upstream, "passive")
        assert run_mirror(client, "py", mirror["id"])["state"] == "completed"
        sha256 = listed(client, "py")["gamma-1.1-py3-none-any.whl"]
        original = (upstream.root / WHEEL.lstrip("/")).read_bytes()
        upstream.faults[WHEEL] = Fault(body=bytes(reversed(original)), times=1)
        url = "/api/repo/py/simple/gamma/gamma-1.1-py3-none-any.whl"
        try:
            refused = client.get(url)
        except httpx.HTTPError:
            pass  # the mismatch showed while the body streamed: the body is cut short
        else:
            assert refused.status_code == 502
            assert "checksum mismatch" in refused.json()["detail"]
        store = headwater.resources.store  # type: ignore[attr-defined]
        assert store.stat(content_key(sha256)) is None

        served = client.get(url)
        assert served.status_code == 200 and served.content == original
        assert store.stat(content_key(sha256)) is not None
        assert upstream.count(WHEEL) == 2


def test_unknown_project_is_a_warning_and_the_run_says_what_is_missing(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "py")
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            filters={"projects": ["gamma", "no-such-project"]},
        )
        assert mirror["warnings"] == [
            f"project 'no-such-project' was not found at {upstream.url}simple/"
        ]
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "completed", run["error"]
        assert any("no project no-such-project" in line["message"] for line in run["log"])
        assert len(listed(client, "py")) == 3

        missing = client.post(
            "/api/channels/py/mirrors",
            json={
                "mirror_name": "nothing",
                "mirror_type": "python_simple",
                "source_root": upstream.url + "simple/",
            },
        )
        assert missing.status_code == 422
        assert "projects" in missing.json()["detail"]


def test_files_gone_upstream_leave_and_new_ones_arrive(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        mirror = pypi_mirror(client, "py", upstream, "active")
        assert run_mirror(client, "py", mirror["id"])["state"] == "completed"
        build_index(
            upstream.root, [DISTS[0], Dist("gamma", "1.2", license_expression="Apache-2.0")]
        )
        run = run_mirror(client, "py", mirror["id"])
        assert run["state"] == "completed", run["error"]
        assert set(listed(client, "py")) == {
            "gamma-1.0-py3-none-any.whl",
            "gamma-1.2-py3-none-any.whl",
        }
        assert run["counters"]["added"] == 1 and run["counters"]["removed"] == 2


def test_upload_by_rest_then_duplicate_is_409(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    built = build_dist(tmp_path / "dist", Dist("delta", "0.1", license_expression="MIT"))
    with headwater.client(token) as client:
        create_channel(client, "internal")
        for attempt in (201, 409):
            with built.path.open("rb") as stream:
                response = client.post(
                    "/api/channels/internal/files",
                    files={"file": (built.path.name, stream, "application/octet-stream")},
                )
            assert response.status_code == attempt, response.text
        assert listed(client, "internal", "delta") == {built.path.name: built.sha256}
        files = client.get("/api/channels/internal/packages/delta/files").json()
        assert files["items"][0]["package_type"] == "python"
        assert files["items"][0]["license"] == "MIT"
        assert files["items"][0]["url"] == f"/api/repo/internal/simple/delta/{built.path.name}"

        broken = tmp_path / "delta-0.2-py3-none-any.whl"
        broken.write_bytes(b"not a zip")
        with broken.open("rb") as stream:
            response = client.post(
                "/api/channels/internal/files",
                files={"file": (broken.name, stream, "application/octet-stream")},
            )
        assert response.status_code == 422, response.text
        assert listed(client, "internal", "delta") == {built.path.name: built.sha256}


def _twine(url: str, username: str, password: str, *paths: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    command = [sys.executable, "-m", "twine", "upload", "--repository-url", url]
    command += ["--username", username, "--password", password, "--non-interactive"]
    command += ["--disable-progress-bar", *map(str, paths)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_twine_uploads_with_a_token(headwater: Headwater, token: str, tmp_path: Path) -> None:
    wheel = build_dist(tmp_path / "dist", Dist("epsilon", "2.0", requires=("gamma",)))
    sdist = build_dist(tmp_path / "dist", Dist("epsilon", "2.0", kind="sdist"))
    with headwater.client(token) as client:
        create_channel(client, "internal")
    url = f"{headwater.url}/api/repo/internal/"

    uploaded = _twine(url, token, "x-auth-token", wheel.path, sdist.path)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    with headwater.client() as client:
        assert listed(client, "internal", "epsilon") == {
            wheel.path.name: wheel.sha256,
            sdist.path.name: sdist.sha256,
        }
        metadata = client.get(f"/api/repo/internal/simple/epsilon/{wheel.path.name}.metadata")
        assert metadata.status_code == 200
        assert (
            hashlib.sha256(metadata.content).hexdigest()
            == hashlib.sha256(wheel.metadata).hexdigest()
        )

    again = _twine(url, "__token__", token, wheel.path)
    assert again.returncode != 0
    assert "409" in again.stdout + again.stderr

    refused = _twine(url, "nobody", "x-auth-token", sdist.path)
    assert refused.returncode != 0
    assert "403" in refused.stdout + refused.stderr or "401" in refused.stdout + refused.stderr
