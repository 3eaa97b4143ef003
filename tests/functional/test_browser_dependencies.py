"""Dependency-aware mirroring in a real browser: the channel's dependency check set on its
Settings page, a mirror that takes dependencies, and the run's report with the broken packages
linked to the filter that broke them."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import chromium, sign_in
from tests.support.conda_packages import PackageSpec, build_channel
from tests.support.flows import create_channel
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import serve_directory

pytestmark = pytest.mark.browser

# hw-gui needs hw-base (MIT) and hw-gpl, which the channel's license filter keeps out.
PACKAGES = [
    PackageSpec("hw-base", "1.0", subdir="noarch"),
    PackageSpec("hw-gpl", "1.0", license="GPL-3.0-only", license_family="GPL3"),
    PackageSpec("hw-gui", "1.0", depends=("hw-base >=1.0", "hw-gpl")),
]


def test_dependency_check_settings_mirror_dependencies_and_the_run_report(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    build_channel(tmp_path / "upstream", PACKAGES)
    build_channel(tmp_path / "elsewhere", [PackageSpec("hw-other", "1.0")])
    with (
        serve_directory(tmp_path / "upstream") as upstream,
        serve_directory(tmp_path / "elsewhere") as elsewhere,
        headwater.client(token) as api,
        chromium() as browser,
    ):
        create_channel(api, "deps", filters={"exclude_licenses": ["gpl3"]})
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD, then="/channels/deps/settings")
        expect(page.get_by_role("heading", name="Dependency check")).to_be_visible()

        # A URL outside the allowlist is refused, and what was typed stays in the form.
        form = page.locator("#dependencies-form")
        form.get_by_label("Must install").fill("hw-gui @ linux-64\nhw-base")
        form.get_by_label("Also available").fill("https://elsewhere.example/conda-forge")
        form.get_by_label("When the specs cannot be solved").select_option("warn")
        form.get_by_role("button", name="Save dependency check").click()
        expect(page.locator("#dependencies [role=alert]")).to_contain_text("also_available")
        expect(form.get_by_label("Must install")).to_have_value("hw-gui @ linux-64\nhw-base")
        expect(form.get_by_label("When the specs cannot be solved")).to_have_value("warn")

        form.get_by_label("Also available").fill(elsewhere.url)
        form.get_by_role("button", name="Save dependency check").click()
        expect(page.get_by_role("status").first).to_contain_text("Dependency check saved")
        saved = api.get("/api/channels/deps").json()
        assert saved["must_install"] == [
            {"spec": "hw-gui", "platform": "linux-64"},
            {"spec": "hw-base", "platform": None},
        ]
        assert [url.rstrip("/") for url in saved["also_available"]] == [elsewhere.url.rstrip("/")]
        assert saved["on_unsolvable"] == "warn"
        expect(form.get_by_label("Must install")).to_have_value("hw-gui @ linux-64\nhw-base")
        expect(form.get_by_label("When the specs cannot be solved")).to_have_value("warn")

        # The channel's filter form offers the dependency keys too.
        channel_filters = page.locator("#channel-filters-form")
        expect(
            channel_filters.get_by_label("Take dependencies of kept packages")
        ).not_to_be_checked()
        expect(channel_filters.get_by_label("Dependency versions")).to_have_value("")

        # A mirror that takes the dependencies of what it keeps, only their newest versions.
        page.goto(headwater.url + "/channels/deps/mirrors/new")
        page.get_by_label("Name").fill("upstream")
        page.get_by_label("Upstream URL").fill(upstream.url)
        page.get_by_label("Take dependencies of kept packages").check()
        page.get_by_label("Dependency versions").select_option("newest")
        page.get_by_role("button", name="Create mirror").click()
        expect(page.get_by_role("status")).to_contain_text("Mirror upstream created.")
        mirror = api.get("/api/channels/deps/mirrors").json()["items"][0]
        assert mirror["filters"]["include_dependencies"] is True
        assert mirror["filters"]["dependencies"] == "newest"
        page.locator("tr[data-mirror='upstream']").locator("summary").click()  # the ⋮ menu
        page.locator("tr[data-mirror='upstream']").get_by_role("link", name="Edit").click()
        expect(page.get_by_label("Take dependencies of kept packages")).to_be_checked()
        expect(page.get_by_label("Dependency versions")).to_have_value("newest")

        # Run it; the run's page shows the report.
        page.goto(headwater.url + "/channels/deps/mirrors")
        page.locator("tr[data-mirror='upstream']").locator("summary").click()  # the ⋮ menu
        page.locator("tr[data-mirror='upstream']").get_by_role("button", name="Run now").click()
        history = page.locator("#history tbody tr").first
        expect(history.locator(".badge")).to_have_text("completed", timeout=60_000)
        history.get_by_role("link").first.click()
        report = page.locator("#report")
        expect(report).to_be_visible()
        expect(report.locator("[data-taken-count]")).to_have_text("0")
        group = report.locator("[data-broken-group='hw-gpl']")
        expect(group.locator("[data-count]")).to_have_text("1")
        expect(group).to_contain_text("hw-gui-1.0-0.conda")
        unsolved = report.locator("#must-install tr[data-platform='linux-64']")
        expect(unsolved.locator("[data-solved]")).to_have_text("cannot be solved")
        expect(unsolved).to_contain_text("hw-gui")

        # The group links to the filter that removed hw-gpl: the channel's license exclusion.
        link = group.locator("a[data-filter-link='channel:exclude_licenses']")
        expect(link).to_contain_text("exclude_licenses")
        link.click()
        expect(page).to_have_url(headwater.url + "/channels/deps/settings#filter-exclude_licenses")
        target = page.locator("#filter-exclude_licenses")
        expect(target).to_be_in_viewport()
        expect(target.locator("input[value=gpl3]")).to_be_checked()
