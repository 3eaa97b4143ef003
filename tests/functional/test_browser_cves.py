"""The CVE pages in a real browser: the channel's CVEs tab, a package's Files tab, a file's
CVEs, and curating a match."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.functional.test_cves import ADVISORIES, upload
from tests.support.advisories import import_zip, zip_of
from tests.support.browser import chromium, sign_in
from tests.support.flows import create_channel
from tests.support.python_packages import Dist, build_dist
from tests.support.server import ADMIN, PASSWORD, Headwater

pytestmark = pytest.mark.browser


def test_cves_tab_files_tab_and_curation(headwater: Headwater, token: str, tmp_path: Path) -> None:
    wheels = [build_dist(tmp_path, Dist("scorepkg", v)) for v in ("1.0", "2.0")]
    with headwater.client(token) as client:
        create_channel(client, "secure")
        for wheel in wheels:
            upload(client, "secure", wheel.path)
        import_zip(client, zip_of(ADVISORIES))

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD, then="/channels/secure/cves")

        # The CVEs tab: its badge is the channel's CVE count, the chart counts by severity.
        expect(page.locator("[data-cve-count]")).to_have_text("2")
        rows = page.locator("#cves tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator("#severity-chart [data-band='Critical']")).to_have_text("1")
        expect(page.locator("#severity-chart [data-band='Medium']")).to_have_text("1")
        page.get_by_label("Score at least").fill("9")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("CVE-2099-0001")

        # A package's Files tab: each file's score and number of CVEs, the number a link.
        page.get_by_role("link", name="Packages").click()
        page.get_by_role("link", name="scorepkg").click()
        expect(page.get_by_role("link", name="Files")).to_be_visible()
        row = page.locator("#files tr", has_text="scorepkg-1.0-py3-none-any.whl")
        expect(row.locator("[data-severity]")).to_have_text("Critical 9.8")
        row.locator("[data-cve-count] a").click()

        # The file's CVEs, curated from here.
        table = page.locator("#file-cves")
        expect(table.locator("tbody tr")).to_have_count(2)
        critical = table.locator("tr[data-cve='CVE-2099-0001']")
        critical.get_by_label("Status of CVE-2099-0001").select_option("cleared")
        critical.get_by_label("Note on CVE-2099-0001").fill("the vulnerable module is not shipped")
        critical.get_by_role("button", name="Curate").click()
        expect(page.get_by_role("status")).to_contain_text("CVE-2099-0001")
        expect(critical.locator("[data-status]")).to_have_text("cleared")
        expect(critical).to_contain_text("the vulnerable module is not shipped")
        # The file's score now comes from its remaining reported match (5.0).
        expect(page.locator("p [data-severity]")).to_have_text("Medium 5.0")

        # The CVE page lists the files with their statuses.
        critical.get_by_role("link", name="CVE-2099-0001").click()
        expect(page.get_by_role("heading", name="CVE-2099-0001")).to_be_visible()
        expect(
            page.locator("#cve-files tr[data-file='scorepkg-1.0-py3-none-any.whl'] [data-status]")
        ).to_have_text("cleared")
        expect(
            page.locator("#cve-files tr[data-file='scorepkg-2.0-py3-none-any.whl'] [data-status]")
        ).to_have_text("reported")
