"""The CVE pages in a real browser: the channel's CVEs tab, a package's Files tab, a file's
CVEs, curating a match, and curating hundreds of matches in one action."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.functional.test_cves import ADVISORIES, upload
from tests.support.advisories import import_zip, zip_of, zip_of_files
from tests.support.browser import chromium, sign_in
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.many_records import write_upstream
from tests.support.python_packages import Dist, build_dist
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import serve_directory

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


def test_one_action_curates_hundreds_of_matches(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    """A passive mirror brings 520 records of scorepkg (metadata only); both test CVEs match
    every one. The CVE's page summarizes them before its paged list; one scope action curates
    them all, a page's "select all" curates a page, the channel's tab curates what is left."""
    versions = [("scorepkg", f"{major}.{minor}") for major in range(1, 53) for minor in range(10)]
    write_upstream(tmp_path / "upstream", {"linux-64": versions})
    with serve_directory(tmp_path / "upstream") as upstream, headwater.client(token) as client:
        create_channel(client, "triage")
        mirror = create_mirror(client, "triage", upstream.url, mirror_mode="passive")
        assert run_mirror(client, "triage", mirror["id"])["state"] == "completed"
        import_zip(client, zip_of(ADVISORIES))

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD, then="/channels/triage/cves")
        expect(page.locator("[data-cve-count]")).to_have_text("2")
        expect(page.locator("[data-unresolved-count]")).to_have_text("2")

        # The CVE's page: the packages it affects first, then a page of 100 of its 520 files.
        page.goto(headwater.url + "/cves/CVE-2099-0001")
        affected = page.locator("#cve-affected tr[data-package='scorepkg']")
        expect(affected.locator("[data-files]")).to_have_text("520")
        expect(affected).to_contain_text("1.0 … 52.9 (520 versions)")
        expect(affected.locator("[data-status-count='reported']")).to_have_text("reported 520")
        assert page.evaluate(
            "() => Boolean(document.getElementById('cve-affected').compareDocumentPosition("
            "document.getElementById('cve-files')) & Node.DOCUMENT_POSITION_FOLLOWING)"
        )
        files = page.locator("#cve-files tbody tr")
        expect(files).to_have_count(100)
        expect(page.locator("nav.pager")).to_contain_text("Showing 1\u2013100 of 520")
        page.locator("#cve-files").get_by_role("link", name="File").click()
        expect(page).to_have_url(re.compile(r"sort=file"))
        expect(files.first).to_have_attribute("data-file", "scorepkg-1.0-0.conda")
        page.locator("#cve-files").get_by_role("link", name="File").click()  # descending
        expect(files.first).to_have_attribute("data-file", "scorepkg-9.9-0.conda")
        file_link = page.get_by_role("link", name="scorepkg-9.9-0.conda")
        file_page = file_link.get_attribute("href")
        assert file_page is not None

        # One action for the whole channel.
        scope = page.locator("#curate-scope")
        scope.get_by_label("Channel").select_option("triage")
        scope.get_by_label("Status").select_option("cleared")
        scope.get_by_label("Note").fill("the vulnerable module is not built")
        scope.get_by_role("button", name="Curate the scope").click()
        expect(page.get_by_role("status")).to_contain_text(
            "520 matches of CVE-2099-0001 now cleared"
        )
        expect(affected.locator("[data-status-count='cleared']")).to_have_text("cleared 520")
        expect(page.locator("#cve-files [data-status]", has_text="reported")).to_have_count(0)

        # The file's score now comes from the other CVE, still reported (5.0).
        page.goto(headwater.url + file_page)
        expect(page.locator("p [data-severity]")).to_have_text("Medium 5.0")

        # A page of the other CVE's files, ticked at once.
        page.goto(headwater.url + "/cves/CVE-2099-0002")
        page.get_by_label("Select all on this page").check()
        expect(page.locator("#cve-files input[name=match_id]:checked")).to_have_count(100)
        bulk = page.locator("#bulk-curate")
        expect(bulk.get_by_role("button")).to_have_text("Curate the selected files (100)")
        bulk.get_by_label("Status of the selected").select_option("active")
        bulk.get_by_role("button").click()
        expect(page.get_by_role("status")).to_contain_text(
            "100 matches of CVE-2099-0002 now active"
        )
        other = page.locator("#cve-affected tr[data-package='scorepkg']")
        expect(other.locator("[data-status-count='active']")).to_have_text("active 100")
        expect(other.locator("[data-status-count='reported']")).to_have_text("reported 420")

        # The channel's tab: tick the CVE, curate its every match there.
        page.goto(headwater.url + "/channels/triage/cves")
        page.get_by_label("Select CVE-2099-0002").check()
        tab = page.locator("#bulk-curate")
        tab.get_by_label("Status of the selected").select_option("mitigated")
        tab.get_by_label("Note on the selected").fill("patched in our build")
        tab.get_by_role("button").click()
        expect(page.get_by_role("status")).to_contain_text(
            "520 matches of CVE-2099-0002 now mitigated"
        )
        row = page.locator("#cves tr[data-cve='CVE-2099-0002']")
        expect(row.locator("[data-status-count='mitigated']")).to_have_text("mitigated 520")
        expect(page.locator("[data-unresolved-count]")).to_have_text("0")
        expect(page.locator("[data-cve-count]")).to_have_text("2")  # CVEs, whatever the status
        # Every match curated: the file scores by its highest curated match again (9.8).
        page.goto(headwater.url + file_page)
        expect(page.locator("p [data-severity]")).to_have_text("Critical 9.8")
