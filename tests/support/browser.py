"""Playwright driving Debian's Chromium: no browser download, no network beyond loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Flags from the machine notes: without the background-networking ones, Chromium keeps
# trying to reach Google's hosts through a closed network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium") or CHROMIUM
    if not shutil.which(executable):
        pytest.fail(
            "Chromium is missing: `make test` installs it from Debian's packages "
            "(scripts/ensure-chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, base_url: str, username: str, password: str, *, then: str = "") -> None:
    """Sign in through the login form, landing on `then` (a path) or the channels."""
    page.goto(f"{base_url}/login" + (f"?next={then}" if then else ""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
