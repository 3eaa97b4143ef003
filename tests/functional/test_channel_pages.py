"""A channel's pages as a person reads them: the header names the URLs conda and pip use, and
each one answers as its client expects."""

from __future__ import annotations

import re

from tests.support.flows import create_channel, sign_in_page
from tests.support.server import ADMIN, PASSWORD, Headwater


def test_the_channel_header_gives_the_conda_and_the_pip_url(headwater: Headwater) -> None:
    with headwater.client(headwater.login()) as api:
        create_channel(api, "tools")
    with headwater.client() as browser:
        assert sign_in_page(browser, ADMIN, PASSWORD).status_code == 303
        page = browser.get("/channels/tools/packages").text
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
