"""The API's reference pages in a real browser with no network but the server's: Swagger UI at
/docs and ReDoc at /redoc render every operation from Headwater's own assets, and nothing the
pages do is refused by their Content-Security-Policy."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.support.browser import chromium
from tests.support.server import Headwater

pytestmark = pytest.mark.browser


def offline_page(page: Page, headwater: Headwater) -> tuple[list[str], list[str]]:
    """Every request to another host is refused, as on an air-gapped site; returns the URLs
    that were asked for elsewhere and the console's errors, filled as the page runs."""
    elsewhere: list[str] = []
    errors: list[str] = []
    server = urlsplit(headwater.url).netloc

    def only_the_server(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == server or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    page.route("**/*", only_the_server)
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    return elsewhere, errors


def test_swagger_ui_renders_every_operation_offline(headwater: Headwater) -> None:
    operations = sum(
        len(methods) for methods in headwater.client().get("/openapi.json").json()["paths"].values()
    )
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        elsewhere, errors = offline_page(page, headwater)
        page.goto(headwater.url + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Headwater")
        expect(page.locator(".opblock")).to_have_count(operations)
        page.locator(".opblock-summary-path", has_text="/api/channels").first.click()
        expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
        assert elsewhere == [] and errors == [], (elsewhere, errors)


def test_redoc_renders_the_operations_offline(headwater: Headwater) -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        elsewhere, errors = offline_page(page, headwater)
        page.goto(headwater.url + "/redoc")
        expect(page.locator("h1").first).to_contain_text("Headwater")
        expect(page.get_by_text("/api/channels/{channel}/mirrors").first).to_be_attached()
        # ReDoc's sidebar credits Redocly with a logo from its CDN: the page's policy refuses
        # it before any request is made, and ReDoc hides the image.
        refused = [error for error in errors if "cdn.redoc.ly" in error and "violates" in error]
        assert elsewhere == [] and errors == refused, (elsewhere, errors)
        expect(page.get_by_alt_text("redocly logo")).to_have_count(0)
