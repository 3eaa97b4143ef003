"""The CVE pages in a real browser: the channel's CVEs tab, a package's Files tab, a file's
CVEs, and curating a match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.functional.test_cves import ADVISORIES, upload
from tests.support.advisories import import_zip, zip_of, zip_of_files
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


def test_unscored_cves_are_shown_as_such_and_the_filter_form_sets_what_they_count_as(
    headwater: Headwater, token: str, shared_data: Path, tmp_path: Path
) -> None:
    """Real advisories: requests 2.19.1 matches CVE-2018-18074, which only PYSEC (unscored)
    speaks of, and CVE-2023-32681, scored 6.1 by NVD."""
    osv_root = shared_data / "osv"
    advisories = [
        *sorted((osv_root / "pypa-advisory-database" / "vulns" / "requests").glob("*.yaml")),
        *sorted((osv_root / "github-advisory-database" / "requests").glob("*.json")),
        osv_root / "nvd" / "CVE-2023-32681.json",
    ]
    wheel = build_dist(tmp_path, Dist("requests", "2.19.1"))
    with headwater.client(token) as client:
        create_channel(client, "unscored")
        upload(client, "unscored", wheel.path)
        import_zip(client, zip_of_files(osv_root, advisories))

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD, then="/channels/unscored/cves")
        expect(page.locator("#severity-chart [data-band='Unscored']")).to_have_text("1")
        expect(page.locator("#severity-chart [data-band='None']")).to_have_text("0")
        unscored = page.locator("#cves tr[data-cve='CVE-2018-18074']")
        badge = unscored.locator("[data-severity]")
        expect(badge).to_have_text("Unscored")
        expect(badge).to_have_class("badge severity-unscored")
        expect(unscored).to_contain_text("The Requests package before 2.20.0 for Python")
        grey = page.evaluate(
            "() => { const s = document.createElement('span'); s.className = 'severity-none';"
            " document.body.append(s); return getComputedStyle(s).backgroundColor; }"
        )
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") != grey

        # The Files tab: the file's score, and "unscored" beside it.
        page.goto(headwater.url + "/channels/unscored/packages/requests")
        row = page.locator("#files tr", has_text="requests-2.19.1-py3-none-any.whl")
        expect(row.locator("[data-severity]")).to_have_text("Medium 6.1")
        expect(row.locator("[data-unscored]")).to_have_text("+ unscored")

        # The CVE's page says it is unscored.
        page.goto(headwater.url + "/cves/CVE-2018-18074")
        expect(page.locator("h1 [data-severity]")).to_have_text("Unscored")
        expect(page.locator("#unscored-note")).to_be_visible()
        matched = page.locator("tr[data-file='requests-2.19.1-py3-none-any.whl'] [data-size]")
        expect(matched).to_have_text(re.compile(r"^\d[\d.]* (B|KiB)$"))  # with its size

        # The filter form: what an unscored CVE counts as, with the threshold.
        page.goto(headwater.url + "/channels/unscored/settings")
        form = page.locator("#channel-filters-form")
        counted = form.get_by_label("Score an unscored CVE counts as")
        expect(counted).to_be_disabled()
        form.locator("input[name=cve_threshold_enabled]").check()
        form.get_by_label("Count unscored CVEs as the score").check()
        counted.fill("4.5")
        form.get_by_role("button", name="Save filters").click()
        expect(page.get_by_role("status").first).to_contain_text("Filters saved")
    with headwater.client(token) as client:
        filters = client.get("/api/channels/unscored").json()["filters"]
        assert filters == {"cve_score_threshold": 7.0, "cve_unscored_score": 4.5}
