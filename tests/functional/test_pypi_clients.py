"""pip and uv install from a channel filled by a PyPI mirror of a static simple index."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from pypi_simple import ACCEPT_HTML_ONLY, ACCEPT_JSON_ONLY, PyPISimple

from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.pypi_clients import installed, pip_install, uv_install
from tests.support.python_packages import Dist, build_index
from tests.support.server import Headwater
from tests.support.upstream import serve_directory

DISTS = [
    Dist("Demo-App", "1.0", requires=("demo-lib>=1.0",), license_expression="MIT"),
    Dist("Demo-App", "1.0", kind="sdist", requires=("demo-lib>=1.0",)),
    Dist("demo-lib", "0.9", yanked="broken build"),
    Dist("demo-lib", "1.0", license="BSD-3-Clause"),
    Dist("demo-lib", "1.1", requires_python=">=3.8", license="BSD-3-Clause"),
    Dist("demo-lib", "1.1", kind="sdist", requires_python=">=3.8"),
]


@pytest.fixture(params=["html", "json"])
def upstream(request: pytest.FixtureRequest, tmp_path: Path):
    """A static directory index (HTML only), or one that also answers PEP 691 JSON."""
    build_index(tmp_path / "upstream", DISTS, json_pages=request.param == "json")
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def _mirror_projects(headwater: Headwater, token: str, upstream, mode: str) -> dict:
    with headwater.client(token) as client:
        create_channel(client, "py")
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode=mode,
            filters={"projects": ["Demo_App", "demo-lib"]},
        )
        assert mirror["filters"]["projects"] == ["demo-app", "demo-lib"]
        assert mirror["warnings"] == []
        return run_mirror(client, "py", mirror["id"])


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_pip_and_uv_install_a_project_and_its_dependency(
    headwater: Headwater, token: str, upstream, tmp_path: Path, mode: str
) -> None:
    run = _mirror_projects(headwater, token, upstream, mode)
    assert run["state"] == "completed", run["error"]
    assert run["counters"]["added"] == len(DISTS)
    if mode == "passive":
        assert upstream.file_requests() == 0, "a passive run must not fetch distribution files"
    else:
        assert upstream.file_requests() == len(DISTS)
    index = f"{headwater.url}/api/repo/py/simple"

    pip = pip_install(index, tmp_path / "pip", "demo-app")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert installed(tmp_path / "pip") == {"demo-app": "1.0", "demo-lib": "1.1"}
    assert (tmp_path / "pip" / "demo_lib" / "__init__.py").read_text() == '__version__ = "1.1"\n'

    uv = uv_install(index, tmp_path / "uv", "demo-app", "demo-lib==1.0")
    assert uv.returncode == 0, uv.stdout + uv.stderr
    assert installed(tmp_path / "uv") == {"demo-app": "1.0", "demo-lib": "1.0"}

    if mode == "passive":
        # Each wheel a client asked for was fetched from upstream once, then served from store.
        assert upstream.file_requests() == 3


def test_html_and_json_pages_list_the_same_files_for_pypi_simple(
    headwater: Headwater, token: str, upstream
) -> None:
    run = _mirror_projects(headwater, token, upstream, "active")
    assert run["state"] == "completed", run["error"]
    index = f"{headwater.url}/api/repo/py/simple/"
    with PyPISimple(index, accept=ACCEPT_HTML_ONLY) as html_client:
        html_page = html_client.get_project_page("demo-lib")
        assert {p for p in html_client.get_index_page().projects} == {"demo-app", "demo-lib"}
    with PyPISimple(index, accept=ACCEPT_JSON_ONLY) as json_client:
        json_page = json_client.get_project_page("demo-lib")

    def listing(page) -> dict:
        return {
            p.filename: (
                p.digests["sha256"],
                p.requires_python,
                bool(p.has_metadata),
                p.yanked_reason,
            )
            for p in page.packages
        }

    expected = {d.filename for d in DISTS if d.project == "demo-lib"}
    assert set(listing(html_page)) == expected
    assert listing(html_page) == listing(json_page)
    wheel = next(p for p in json_page.packages if p.filename == "demo_lib-1.1-py3-none-any.whl")
    assert wheel.requires_python == ">=3.8"
    yanked = next(p for p in json_page.packages if p.version == "0.9")
    assert yanked.is_yanked and yanked.yanked_reason == "broken build"
    # Core metadata (PEP 658) for every wheel: the upstream's, or read from the wheel itself.
    assert wheel.has_metadata
    with httpx.Client() as client:
        metadata = client.get(wheel.url.split("#")[0] + ".metadata")
        assert metadata.status_code == 200
        assert b"Name: demo-lib\n" in metadata.content
        assert b"Version: 1.1\n" in metadata.content
        data = client.get(wheel.url)
        assert data.status_code == 200
        assert hashlib.sha256(data.content).hexdigest() == wheel.digests["sha256"]


def test_non_normalized_project_url_redirects(headwater: Headwater, token: str, upstream) -> None:
    run = _mirror_projects(headwater, token, upstream, "passive")
    assert run["state"] == "completed", run["error"]
    with httpx.Client(base_url=headwater.url) as client:
        response = client.get("/api/repo/py/simple/Demo_App/")
        assert response.status_code == 301
        assert response.headers["location"].endswith("/api/repo/py/simple/demo-app/")
        assert client.get("/api/repo/py/simple/no-such-project/").status_code == 404
