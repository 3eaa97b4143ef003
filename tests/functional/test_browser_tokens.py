"""A personal token made on the Account page in a real browser works with pip, and stops
working once revoked on that page."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.functional.test_tokens_clients import (
    BOB,
    BOB_PASSWORD,
    built_wheels,
    pip_index,
    pip_refused,
    private_channel,
)
from tests.support.browser import chromium, sign_in
from tests.support.pypi_clients import installed, pip_install
from tests.support.server import Headwater

pytestmark = pytest.mark.browser


def test_a_token_made_on_the_account_page_installs_with_pip_until_revoked(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    headwater.add_user(BOB, BOB_PASSWORD)
    private_channel(headwater, token, "internal", built_wheels(tmp_path / "dist"), bob="read")
    # Nobody gets in without credentials, and the channel answers as if it did not exist.
    assert pip_refused(pip_index(headwater, "internal"), tmp_path / "anonymous") == 401

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, BOB, BOB_PASSWORD)
        page.get_by_role("link", name=BOB).click()
        expect(page).to_have_url(headwater.url + "/account")
        expect(page.get_by_role("heading", name=f"Account · {BOB}")).to_be_visible()

        page.get_by_label("Name", exact=True).fill("pip on laptop")
        page.get_by_label("artifact:view").check()
        page.get_by_label("Lasts (days").fill("7")
        page.get_by_role("button", name="Make token").click()
        shown = page.locator("#token-value")
        expect(shown).to_be_visible()
        secret = shown.inner_text().strip()
        row = page.locator('#tokens tr[data-token="pip on laptop"]')
        expect(row).to_contain_text("personal")
        expect(row).to_contain_text("artifact:view")
        assert secret not in row.inner_text(), "the table never shows the token itself"

        pip = pip_install(pip_index(headwater, "internal", secret), tmp_path / "pip", "demo-app")
        assert pip.returncode == 0, pip.stdout + pip.stderr
        assert installed(tmp_path / "pip") == {"demo-app": "1.0", "demo-lib": "1.0"}

        # Shown once: the page reloaded no longer has it.
        page.goto(headwater.url + "/account")
        expect(page.locator("#token-value")).to_have_count(0)
        expect(page.locator("#tokens")).not_to_contain_text(secret)

        row.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("status")).to_contain_text("Token revoked")
        expect(page).to_have_url(headwater.url + "/account")
        expect(row).to_have_count(0)

    assert pip_refused(pip_index(headwater, "internal", secret), tmp_path / "revoked") == 401
