"""The home page a signed-in person lands on: the channels they may read, the runs under way
and the recent failures in them, their CVEs by severity, and for administrators the storage;
nothing of a channel they may not read. Anyone else is sent to the channels."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support.flows import create_channel, create_mirror, run_mirror, sign_in_page
from tests.support.server import ADMIN, PASSWORD, Headwater


def home_of(headwater: Headwater, username: str, password: str) -> str:
    with headwater.client() as browser:
        assert sign_in_page(browser, username, password).status_code == 303
        page = browser.get("/")
    assert page.status_code == 200, page.text
    return page.text


def test_the_home_page_shows_what_needs_attention_in_the_callers_channels(
    headwater: Headwater, tmp_path: Path
) -> None:
    nowhere = "http://127.0.0.1:9/"  # nothing listens: the run fails
    with headwater.client(headwater.login()) as admin:
        create_channel(admin, "open")
        create_channel(admin, "hidden", privacy="private")
        for channel in ("open", "hidden"):
            mirror = create_mirror(admin, channel, nowhere)
            assert run_mirror(admin, channel, mirror["id"])["state"] == "failed"
    headwater.add_user("carol", "carols password")

    page = home_of(headwater, ADMIN, PASSWORD)
    assert re.search(r"data-channel-count>2<", page)
    assert 'data-channel="open"' in page and 'data-channel="hidden"' in page
    failures = page[page.index('id="home-failures"') : page.index('id="home-cves"')]
    assert failures.count("data-run=") == 2 and "open</a> / " in failures
    assert 'id="home-storage"' in page and "data-stored=" in page
    assert 'data-band="Critical"' in page and 'data-band="Unscored"' in page

    page = home_of(headwater, "carol", "carols password")
    assert re.search(r"data-channel-count>1<", page)
    assert 'data-channel="open"' in page and 'data-channel="hidden"' not in page
    assert "hidden</a>" not in page  # nor its mirror's failure
    assert 'id="home-storage"' not in page  # administrators only

    with httpx.Client(base_url=headwater.url) as anonymous:
        home = anonymous.get("/")
    assert (home.status_code, home.headers["location"]) == (303, "/channels")


def test_all_repository_mirrors_filters_by_state_and_channel(headwater: Headwater) -> None:
    with headwater.client(headwater.login()) as admin:
        for channel in ("one", "two"):
            create_channel(admin, channel)
            create_mirror(admin, channel, "http://127.0.0.1:9/")
        mirror = admin.get("/api/channels/one/mirrors").json()["items"][0]
        assert run_mirror(admin, "one", mirror["id"])["state"] == "failed"
    with headwater.client() as browser:
        assert sign_in_page(browser, ADMIN, PASSWORD).status_code == 303
        rows = re.compile(r'data-channel="([a-z]+)"')
        assert rows.findall(browser.get("/mirrors").text) == ["one", "two"]
        assert rows.findall(browser.get("/mirrors?state=failed").text) == ["one"]
        assert rows.findall(browser.get("/mirrors?state=never").text) == ["two"]
        assert rows.findall(browser.get("/mirrors?channel=two").text) == ["two"]
        assert rows.findall(browser.get("/mirrors?state=running&channel=one").text) == []
        refused = browser.get("/mirrors?state=exploded")
        assert refused.status_code == 422 and "is not one of" in refused.text
