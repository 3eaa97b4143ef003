"""The mirror screens in a real browser, as their users know them: the Mirrors tab's ⋮ menu,
project chips checked as they are entered, the frequency's live sentence, Save with Run now."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import chromium, sign_in
from tests.support.flows import create_channel, create_mirror, wait_for_run
from tests.support.python_packages import Dist, build_index
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import Upstream, serve_directory

pytestmark = pytest.mark.browser

CLOSED = "http://127.0.0.1:9/"  # allowed, nothing listens: a run fails at once


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Upstream]:
    build_index(tmp_path / "index", [Dist("web-lib", "0.5")])
    with serve_directory(tmp_path / "index") as server:
        yield server


def signed_in(browser, headwater: Headwater) -> Page:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, headwater.url, ADMIN, PASSWORD)
    return page


def test_the_menu_edits_and_runs_and_the_frequency_follows_the_cron(
    headwater: Headwater,
) -> None:
    with headwater.client(headwater.login()) as api:
        create_channel(api, "forge")
        mirror = create_mirror(api, "forge", CLOSED, mirror_name="closed")
    with chromium() as browser:
        page = signed_in(browser, headwater)
        page.goto(headwater.url + "/channels/forge/mirrors")
        row = page.locator("tr[data-mirror='closed']")
        menu = row.locator("summary")
        expect(menu).to_have_attribute("aria-haspopup", "true")
        expect(menu).to_have_attribute("aria-expanded", "false")
        expect(row.get_by_role("button", name="Run now")).to_be_hidden()

        # Open, Escape closes it; the items are Edit, Run now and Delete (no Stop: nothing runs).
        menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        items = row.locator(".menu-items")
        expect(items.get_by_role("link", name="Edit")).to_be_visible()
        expect(items.get_by_role("button")).to_have_text(["Run now", "Delete"])
        page.keyboard.press("Escape")
        expect(menu).to_have_attribute("aria-expanded", "false")
        expect(items).to_be_hidden()
        expect(menu).to_be_focused()

        # Run now queues a run: the history shows it.
        menu.click()
        row.get_by_role("button", name="Run now").click()
        expect(page).to_have_url(headwater.url + "/channels/forge/history")
        expect(page.get_by_role("status")).to_contain_text("Run of closed queued.")
        with headwater.client(headwater.login()) as api:
            runs = api.get(f"/api/channels/forge/mirrors/{mirror['id']}/runs").json()["items"]
            wait_for_run(api, runs[0]["id"])

        # Edit goes to the edit page, whose frequency sentence follows what is typed.
        page.goto(headwater.url + "/channels/forge/mirrors")
        menu.click()
        row.get_by_role("link", name="Edit").click()
        expect(page).to_have_url(f"{headwater.url}/channels/forge/mirrors/{mirror['id']}/edit")
        cron = page.get_by_label("Schedule (cron, UTC)")
        schedule = page.locator("#schedule")
        expect(schedule).to_contain_text("At 12:00 AM")
        cron.fill("61 * * * *")
        expect(schedule.locator("[data-schedule-error]")).to_contain_text(
            "cron '61 * * * *' is not valid"
        )
        cron.fill("30 2 * * 1")
        expect(schedule.locator("[data-schedule-sentence]")).to_contain_text(
            "At 02:30 AM, only on Monday (UTC). Next runs:"
        )
        expect(schedule.locator("time")).to_have_count(3)
        cron.press_sequentially("<b>")  # typed markup is never markup
        expect(schedule.locator("[data-schedule-error]")).to_be_visible()
        expect(schedule.locator("b")).to_have_count(0)
        cron.fill("0 * * * *")
        expect(schedule.locator(".warning")).to_contain_text("more often than daily")

        # Save with Run now: the tab says the run was queued and links to it.
        page.get_by_label("Run now after saving").check()
        page.get_by_role("button", name="Save mirror").click()
        expect(page.get_by_role("status").first).to_contain_text("Mirror closed saved")
        queued = page.locator("[data-queued]")
        expect(queued).to_contain_text("of mirror closed was queued")
        queued.get_by_role("link", name="follow it").click()
        expect(page).to_have_url(re.compile(r"/runs/\d+$"))
        expect(page.get_by_role("heading").first).to_be_visible()


def test_project_chips_turn_blue_when_accepted_and_red_with_the_reason(
    headwater: Headwater, index: Upstream
) -> None:
    with headwater.client(headwater.login()) as api:
        create_channel(api, "py")
    with chromium() as browser:
        page = signed_in(browser, headwater)
        page.goto(headwater.url + "/channels/py/mirrors/new")
        page.get_by_label("Type").select_option(label="PyPI (simple index)")
        page.get_by_label("Upstream URL").fill(index.url + "simple/")
        projects = page.get_by_label("Projects")
        for name in ("Web_Lib", "name!", "no-such-project"):
            projects.fill(name)
            projects.press("Enter")
        chips = page.locator(".chip")
        expect(chips).to_have_count(3)

        accepted = chips.nth(0)
        expect(accepted).to_have_class(re.compile(r"\bchip-ok\b"))
        expect(accepted).to_have_text(re.compile(r"^web-lib"))  # normalized as PEP 503 says
        expect(accepted.locator("input[type=hidden]")).to_have_value("web-lib")

        invalid = chips.nth(1)
        expect(invalid).to_have_class(re.compile(r"\bchip-bad\b"))
        expect(invalid.locator(".chip-reason")).to_contain_text("not a valid project name")

        missing = chips.nth(2)
        expect(missing).to_have_class(re.compile(r"\bchip-bad\b"))
        expect(missing.locator(".chip-reason")).to_contain_text(f"not found on {index.url}")

        # The same project under another spelling is one chip.
        projects.fill("web.lib")
        projects.press("Enter")
        expect(chips).to_have_count(3)
