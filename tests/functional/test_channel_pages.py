"""A channel's pages as a person reads them: the header names the URLs conda and pip use, and
each one answers as its client expects."""

from __future__ import annotations

import html
import re
from pathlib import Path

from tests.support.conda_packages import PackageSpec, build_package
from tests.support.flows import create_channel, sign_in_page
from tests.support.pypi_clients import installed, pip_install
from tests.support.python_packages import Dist, build_dist
from tests.support.server import ADMIN, PASSWORD, Headwater


def test_the_channel_header_gives_the_conda_and_the_pip_url(headwater: Headwater) -> None:
    with headwater.client(headwater.login()) as api:
        create_channel(api, "tools")
    headwater.add_user("reader", "readers password")
    with headwater.client() as browser:
        assert sign_in_page(browser, ADMIN, PASSWORD).status_code == 303
        page = browser.get("/channels/tools/packages").text
        # The green Mirror button is on every tab of a channel its managers see.
        for tab in ("packages", "cves", "revisions", "mirrors", "history", "settings"):
            shown = browser.get(f"/channels/tools/{tab}").text
            assert shown.count('id="new-mirror"') == 1, tab
    with headwater.client() as reader:
        assert sign_in_page(reader, "reader", "readers password").status_code == 303
        assert 'id="new-mirror"' not in reader.get("/channels/tools/packages").text
    conda = re.search(r"<code data-conda-url>([^<]+)</code>", page)
    pip = re.search(r"<code data-pip-url>([^<]+)</code>", page)
    assert conda is not None and pip is not None, page
    assert conda.group(1) == f"{headwater.url}/api/repo/tools"
    assert pip.group(1) == f"{headwater.url}/api/repo/tools/simple/"
    with headwater.client() as client:
        repodata = client.get(conda.group(1) + "/noarch/repodata.json")
        assert repodata.status_code == 200 and repodata.json()["info"]["subdir"] == "noarch"
        index = client.get(pip.group(1), headers={"Accept": "text/html"})
        assert index.status_code == 200 and "<html" in index.text.lower()


def test_a_package_page_gives_install_commands_that_work(
    headwater: Headwater, tmp_path: Path
) -> None:
    """The commands a package's page gives name this server's URLs: conda's channel, its
    pinned revision, and pip's index, which pip installs the package from."""
    conda_package = build_package(PackageSpec("hw-tool", "1.0", subdir="noarch"), tmp_path)
    wheel = build_dist(tmp_path / "dist", Dist("hw-lib", "2.0"))
    with headwater.client(headwater.login()) as api:
        create_channel(api, "tools")
        for path in (conda_package, wheel.path):
            with path.open("rb") as stream:
                sent = api.post("/api/channels/tools/files", files={"file": (path.name, stream)})
            assert sent.status_code == 201, sent.text
        head = api.get("/api/channels/tools").json()["head"]
    base = f"{headwater.url}/api/repo/tools"
    with headwater.client() as browser:
        assert sign_in_page(browser, ADMIN, PASSWORD).status_code == 303
        conda_page = commands(browser.get("/channels/tools/packages/hw-tool").text)
        python_page = commands(browser.get("/channels/tools/packages/hw-lib").text)
    assert conda_page == {
        "conda": f"conda install --channel {base} hw-tool",
        "pixi": f"pixi workspace channel add {base} && pixi add hw-tool",
        "pinned": f"conda install --channel {base}@{head} hw-tool",
    }
    assert python_page == {
        "pip": f"pip install --index-url {base}/simple/ hw-lib",
        "uv": f"uv pip install --index-url {base}/simple/ hw-lib",
        "pinned-pip": f"pip install --index-url {base}@{head}/simple/ hw-lib",
    }
    pinned_channel = conda_page["pinned"].split()[3]
    with headwater.client() as client:
        repodata = client.get(f"{pinned_channel}/noarch/repodata.json").json()
    assert conda_package.name in repodata["packages.conda"]
    for key in ("pip", "pinned-pip"):
        index = python_page[key].split()[3]
        installed_ = pip_install(index, tmp_path / key, "hw-lib")
        assert installed_.returncode == 0, installed_.stderr
        assert installed(tmp_path / key) == {"hw-lib": "2.0"}


def commands(page: str) -> dict[str, str]:
    found = re.findall(r'<code data-install="([a-z-]+)">([^<]+)</code>', page)
    return {key: html.unescape(text) for key, text in found}
