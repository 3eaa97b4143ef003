"""The web UI in a real browser: sign in, create a channel and a mirror, run it, see the history."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import chromium
from tests.support.conda_packages import CHAIN, build_channel
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import serve_directory

pytestmark = pytest.mark.browser


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_sign_in_create_channel_and_mirror_run_now_and_see_it_completed(
    headwater: Headwater, upstream
) -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        # Anyone sees the public channels; a page that needs more sends them to sign in.
        page.goto(headwater.url + "/")
        expect(page.get_by_role("heading", name="Channels")).to_be_visible()
        page.goto(headwater.url + "/mirrors")
        expect(page).to_have_url(headwater.url + "/login?next=%2Fmirrors")

        page.get_by_label("Username").fill(ADMIN)
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("wrong username or password")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="All Repository Mirrors")).to_be_visible()
        page.get_by_role("link", name="Channels", exact=True).click()

        page.get_by_label("Name").fill("forge")
        page.get_by_label("Description").fill("our conda-forge")
        page.get_by_role("button", name="Create channel").click()
        expect(page.get_by_role("status")).to_contain_text("Channel forge created.")

        # Every tab of the channel has the green Mirror button; it opens the create-mirror form.
        tabs = page.locator("#channel-tabs a")
        names = [tabs.nth(i).inner_text().split()[0] for i in range(tabs.count())]
        assert {"Packages", "Mirrors", "History", "Settings"} <= set(names), names
        for name in names:
            tabs.filter(has_text=name).first.click()
            button = page.locator("#new-mirror")
            expect(button).to_have_text("Mirror")
            assert button.get_attribute("href") == "/channels/forge/mirrors/new", name
        page.locator("#new-mirror").click()
        page.get_by_label("Name").fill("conda-forge")
        page.get_by_label("Upstream URL").fill(upstream.url)
        page.get_by_label("Active: download every file during the run").check()
        page.get_by_label("noarch", exact=True).check()
        page.get_by_label("linux-64", exact=True).check()
        page.get_by_role("button", name="Create mirror").click()
        expect(page.get_by_role("status")).to_contain_text("Mirror conda-forge created.")
        row = page.locator("tr[data-mirror='conda-forge']")
        expect(row).to_contain_text("never run")

        row.locator("summary").click()  # the ⋮ menu
        row.get_by_role("button", name="Run now").click()
        expect(page).to_have_url(headwater.url + "/channels/forge/history")
        history = page.locator("#history tbody tr").first
        expect(history.locator(".badge")).to_have_text("completed", timeout=60_000)
        expect(history).to_contain_text("conda-forge")
        assert history.locator("td").nth(7).inner_text() == str(len(CHAIN))  # added

        page.get_by_role("link", name="Packages").click()
        expect(page.locator("#packages")).to_contain_text("hw-app")
        page.get_by_role("link", name="All Repository Mirrors").click()
        expect(page.locator("tr[data-mirror='conda-forge'] .badge")).to_have_text("completed")


def test_a_frequent_schedule_is_accepted_with_a_warning(headwater: Headwater, upstream) -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.goto(headwater.url + "/login")
        page.get_by_label("Username").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Name").fill("fast")
        page.get_by_role("button", name="Create channel").click()
        page.goto(headwater.url + "/channels/fast/mirrors/new")
        page.get_by_label("Name").fill("hourly")
        page.get_by_label("Upstream URL").fill(upstream.url)
        page.get_by_label("Schedule (cron, UTC)").fill("61 * * * *")
        page.get_by_role("button", name="Create mirror").click()
        expect(page.get_by_role("alert")).to_contain_text("cron '61 * * * *' is not valid")
        page.get_by_label("Schedule (cron, UTC)").fill("0 * * * *")
        page.get_by_role("button", name="Create mirror").click()
        expect(page.get_by_role("status")).to_contain_text("runs more often than daily")
        page.locator("tr[data-mirror='hourly']").locator("summary").click()  # the ⋮ menu
        page.locator("tr[data-mirror='hourly']").get_by_role("link", name="Edit").click()
        expect(page.locator("#schedule .warning")).to_contain_text("more often than daily")


def test_channel_filters_mirror_filters_preview_and_excluded_counts(
    headwater: Headwater, tmp_path: Path
) -> None:
    from tests.support.conda_packages import PackageSpec

    packages = [
        *CHAIN,
        PackageSpec("hw-old", "0.1", timestamp=1_600_000_000_000),
        PackageSpec("hw-undated", "0.1", timestamp=None),
    ]
    build_channel(tmp_path / "filtered", packages)
    with serve_directory(tmp_path / "filtered") as upstream, chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        page.goto(headwater.url + "/login")
        page.get_by_label("Username").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Name").fill("forge")
        page.get_by_role("button", name="Create channel").click()

        # A channel filter: no GPL-3 in this channel.
        page.get_by_role("link", name="Settings").click()
        channel_form = page.locator("#channel-filters-form")
        channel_form.locator("input[name=exclude_licenses][value=gpl3]").check()
        channel_form.get_by_role("button", name="Save filters").click()
        expect(page.get_by_role("status").first).to_contain_text("Filters saved")

        # A mirror with its own filters.
        page.get_by_role("link", name="Mirrors", exact=True).click()
        page.get_by_role("link", name="Mirror", exact=True).click()
        page.get_by_label("Name").fill("conda-forge")
        page.get_by_label("Upstream URL").fill(upstream.url)
        page.get_by_label("noarch", exact=True).check()
        page.get_by_label("linux-64", exact=True).check()
        page.get_by_label("Published from").fill("2021-01-01")
        page.get_by_role("button", name="View channel filters").click()
        expect(page.locator("#channel-filters")).to_contain_text("gpl3")

        # Including only GPL-3 here would leave nothing with the channel's exclusion: said at once.
        include_gpl3 = page.locator("input[name=include_licenses][value=gpl3]")
        include_gpl3.check()
        expect(page.locator("[data-nothing-passes]")).to_contain_text("These filters leave nothing")
        include_gpl3.uncheck()
        expect(page.locator("[data-nothing-passes]")).to_be_hidden()

        # The CVE score box is off until its checkbox is ticked.
        score = page.get_by_label("CVE score threshold")
        expect(score).to_be_disabled()
        page.get_by_label("Drop files whose CVE score is above").check()
        expect(score).to_be_enabled()
        page.get_by_label("Drop files whose CVE score is above").uncheck()

        page.get_by_role("button", name="Preview").click()
        result = page.locator("#preview-result")
        expect(result.locator("[data-taken]")).to_have_text(str(len(packages) - 3))
        expect(result.locator("li[data-reason='date']")).to_have_text("dropped by date: 2")
        expect(result.locator("li[data-reason='channel filter']")).to_have_text(
            "dropped by channel filter: 1"
        )
        expect(result).to_contain_text("no timestamp")
        assert upstream.file_requests() == 0

        page.get_by_role("button", name="Create mirror").click()
        expect(page.get_by_role("status")).to_contain_text("Mirror conda-forge created.")
        page.locator("tr[data-mirror='conda-forge']").locator("summary").click()  # the ⋮ menu
        page.locator("tr[data-mirror='conda-forge']").get_by_role("button", name="Run now").click()
        history = page.locator("#history tbody tr").first
        expect(history.locator(".badge")).to_have_text("completed", timeout=60_000)
        expect(history.locator("td.excluded")).to_contain_text("3")
        expect(history.locator("[data-reason='date']")).to_have_text("date: 2")
        expect(history.locator("[data-reason='channel filter']")).to_have_text("channel filter: 1")
