"""The administrators' Storage page in a real browser: what the blob store holds per channel
and mirror, and a collection queued from it; and a run's progress bar while it downloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.functional.test_runs import SLOW, start_slow_run, wait_for_pace
from tests.support.browser import chromium, sign_in
from tests.support.conda_packages import CHAIN, build_channel
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import serve_directory

pytestmark = pytest.mark.browser


def test_the_storage_page_shows_the_usage_and_queues_a_collection(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    root = build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(root) as upstream, headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active")
        assert run_mirror(client, "forge", mirror["id"])["state"] == "completed"
        usage = client.get("/api/storage").json()
    (forge,) = [row for row in usage["channels"] if row["name"] == "forge"]
    assert forge["files"] == len(CHAIN)

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD)
        page.get_by_role("link", name="Storage", exact=True).click()
        expect(page).to_have_url(headwater.url + "/admin/storage")
        expect(page.get_by_role("heading", name="Storage", exact=True)).to_be_visible()
        expect(page.locator("[data-backend]")).to_have_text("local")
        expect(page.locator("[data-stored]")).to_contain_text(f"{usage['blobs']} blobs")
        expect(page.locator("[data-grace]")).to_have_text("24 hours")
        # The first start collects once at once, as every deployment job's schedule does.
        first = usage["last_collection"]["run_id"]
        expect(page.locator("#last-collection")).to_contain_text(f"run #{first}")
        channel = page.locator('#storage-channels tr[data-name="forge"]')
        expect(channel.locator("[data-files]")).to_have_text(str(len(CHAIN)))
        expect(channel.locator("[data-package-bytes]")).to_contain_text("KiB")
        shown_bytes = channel.locator("[data-package-bytes]").get_attribute("data-package-bytes")
        assert shown_bytes == str(forge["package_bytes"])
        expect(page.locator('#storage-mirrors tr[data-name="forge/upstream"]')).to_be_visible()

        page.get_by_role("button", name="Collect garbage now").click()
        expect(page).to_have_url(headwater.url + "/admin/storage")
        flash = page.get_by_role("status")
        expect(flash).to_contain_text("Queued blob-collect run #")
        found = re.search(r"run #(\d+)", flash.inner_text())
        assert found is not None and int(found.group(1)) > first
        queued = int(found.group(1))
        last = page.locator("#last-collection")
        expect(last.get_by_role("link")).to_have_text(f"run #{queued}")
        # The page follows the collection until it ends (the grace keeps every blob here).
        expect(last.locator(".badge")).to_have_text("completed", timeout=30_000)
        expect(last.locator("[data-deleted]")).to_have_text("0")

        last.get_by_role("link").click()
        expect(page).to_have_url(headwater.url + f"/admin/jobs/{queued}")
        expect(page.locator("#collected [data-listed]")).to_have_text(str(usage["blobs"]))
        expect(page.locator("#collected [data-deleted]")).to_have_text("0")
        expect(page.locator(".log")).to_contain_text("deleted 0 blobs")

        # The Jobs page lists it, linked to the same page.
        page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
        row = page.locator('#jobs tr[data-kind="blob-collect"]').first
        expect(row.locator(".badge")).to_have_text("completed")
        expect(row.get_by_role("link")).to_have_attribute("href", f"/admin/jobs/{queued}")


def test_the_run_page_shows_a_progress_bar_while_downloading(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    root = build_channel(tmp_path / "slow", [SLOW])
    headwater.add_user("reader", "readers password")
    with (
        serve_directory(root) as upstream,
        headwater.client(token) as client,
        chromium() as browser,
    ):
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD)
        expect(page.get_by_role("link", name=ADMIN)).to_be_visible()
        queued, size = start_slow_run(client, root, upstream)
        wait_for_pace(client, f"/api/runs/{queued['id']}")
        page.goto(f"{headwater.url}/runs/{queued['id']}")
        bar = page.locator("#run progress")
        expect(bar).to_be_visible()
        assert bar.get_attribute("max") == str(size)
        assert 0 < int(bar.get_attribute("value") or 0) < size
        facts = page.locator("#run .progress-facts")
        expect(facts.locator("[data-files]")).to_have_text("0/1 files")
        expect(facts.locator("[data-bytes]")).to_contain_text(" of 4.0 MiB")
        expect(facts.locator("[data-rate]")).to_contain_text("KiB/s")
        expect(facts.locator("[data-eta]")).to_contain_text(" s left")
        # The page follows the run: the bar moves on without a reload.
        first = int(bar.get_attribute("value") or 0)
        expect(bar).not_to_have_attribute("value", str(first))
        # So do the channel's History and All Repository Mirrors, for a reader of the channel
        # too (who sees no upstream and no edit link there).
        client.put("/api/channels/slow/roles/users/reader", json={"role": "read"})
        for path, where in (("/channels/slow/history", "#history"), ("/mirrors", "#all-mirrors")):
            page.goto(headwater.url + path)
            moving = page.locator(f"{where} progress")
            expect(moving).to_be_visible()
            before = moving.get_attribute("value")
            expect(moving).not_to_have_attribute("value", str(before), timeout=15_000)
        reader = browser.new_page()
        reader.set_default_timeout(20_000)
        sign_in(reader, headwater.url, "reader", "readers password", then="/mirrors")
        row = reader.locator("#all-mirrors tr[data-channel='slow']")
        expect(row.locator("[data-state]")).to_have_text("running")
        expect(row.locator("progress")).to_be_visible()
        expect(row.locator(".upstream")).to_have_text("—")
        expect(row.get_by_role("link", name="upstream")).to_have_count(0)
        page.goto(f"{headwater.url}/runs/{queued['id']}")
        stopped = client.post(f"/api/channels/slow/mirrors/{queued['mirror_id']}/stop")
        assert stopped.status_code == 202, stopped.text
        expect(page.locator("#run [data-state]")).to_have_text("failed")
        expect(page.locator("#run [data-stopped-by]")).to_have_text(f"stopped by {ADMIN}")
        expect(page.locator("#run progress")).to_have_count(0)
