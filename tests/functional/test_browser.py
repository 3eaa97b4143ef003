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
        page.goto(headwater.url + "/")
        expect(page).to_have_url(headwater.url + "/login?next=%2Fchannels")

        page.get_by_label("Username").fill(ADMIN)
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("wrong username or password")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Channels")).to_be_visible()

        page.get_by_label("Name").fill("forge")
        page.get_by_label("Description").fill("our conda-forge")
        page.get_by_role("button", name="Create channel").click()
        expect(page.get_by_role("status")).to_contain_text("Channel forge created.")

        # The Mirrors tab's green Mirror button opens the create-mirror form.
        page.get_by_role("link", name="Mirror", exact=True).click()
        page.get_by_label("Name").fill("conda-forge")
        page.get_by_label("Upstream URL").fill(upstream.url)
        page.get_by_label("Active: download every file during the run").check()
        page.get_by_label("noarch", exact=True).check()
        page.get_by_label("linux-64", exact=True).check()
        page.get_by_role("button", name="Create mirror").click()
        expect(page.get_by_role("status")).to_contain_text("Mirror conda-forge created.")
        row = page.locator("tr[data-mirror='conda-forge']")
        expect(row).to_contain_text("never run")

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
        page.locator("tr[data-mirror='hourly']").get_by_role("link", name="Edit").click()
        expect(page.locator(".warning")).to_contain_text("more often than daily")
