"""A package of 2,000 files in a real browser: its Files list a page of 100 at a time, grouped
by version with a subdir column, paged with Next to the last page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.functional.test_listing import SUBDIRS, repodata_channel
from tests.support.browser import chromium
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.server import Headwater
from tests.support.upstream import serve_directory

pytestmark = pytest.mark.browser


def test_the_files_of_a_large_package_page_by_version(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    # 100 versions of 20 files (4 subdirs, 5 builds): five whole versions to a page of 100.
    versions = [f"2.{minor}.0" for minor in range(100)]
    total = repodata_channel(tmp_path / "upstream", "hw-big", versions, builds=5)
    assert total == 2000
    with serve_directory(tmp_path / "upstream") as upstream, headwater.client(token) as client:
        create_channel(client, "big")
        mirror = create_mirror(client, "big", upstream.url, mirror_mode="passive")
        assert run_mirror(client, "big", mirror["id"])["state"] == "completed"

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{headwater.url}/channels/big/packages")
        page.get_by_role("link", name="hw-big").click()
        expect(page.locator("#files-summary")).to_have_text(
            "2,000 files in 100 versions, newest first."
        )
        rows = page.locator("#files tbody tr[data-file]")
        groups = page.locator("#files tbody[data-version]")
        pager = page.get_by_role("navigation", name="pages")
        seen: set[str] = set()
        newest = 99
        for number in range(20):
            expect(pager).to_contain_text(
                f"Showing {number * 100 + 1:,}\N{EN DASH}{(number + 1) * 100:,} of 2,000."
            )
            expect(rows).to_have_count(100)
            expect(groups).to_have_count(5)
            # newest version first, by version order (2.99.0 before 2.10.0 before 2.9.0)
            shown = [groups.nth(i).get_attribute("data-version") for i in range(5)]
            assert shown == [f"2.{newest - i}.0" for i in range(5)]
            newest -= 5
            header = groups.first.locator("tr.version-group")
            expect(header).to_contain_text(f"{shown[0]} · 20 files")
            subdirs = set(groups.first.locator("[data-subdir]").all_inner_texts())
            assert subdirs == set(SUBDIRS)
            links = page.locator("#files tbody a[href^='/api/repo/big/']")
            paths = set(links.evaluate_all("links => links.map(a => a.getAttribute('href'))"))
            assert len(paths) == 100 and not paths & seen  # each page shows other files
            seen |= paths
            if number < 19:
                pager.get_by_role("link", name="Next").click()
                expect(page).to_have_url(re.compile(rf"offset={(number + 1) * 100}$"))
        expect(pager.get_by_role("link", name="Next")).to_have_count(0)
        assert len(seen) == 2000
        pager.get_by_role("link", name="First").click()
        expect(groups.first).to_have_attribute("data-version", "2.99.0")
