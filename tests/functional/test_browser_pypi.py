"""The web UI for PyPI mirrors: the type select, project chips, a run, and the packages pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import chromium, sign_in
from tests.support.python_packages import Dist, build_index
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import serve_directory

pytestmark = pytest.mark.browser

DISTS = [
    Dist("web-app", "1.0", requires=("web-lib",), license_expression="MIT"),
    Dist("web-lib", "0.5", license_expression="Apache-2.0"),
    Dist("web-lib", "0.5", kind="sdist"),
    Dist("web-extra", "3.0"),
]


@pytest.fixture
def upstream(tmp_path: Path):
    build_index(tmp_path / "upstream", DISTS, json_pages=True)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_pypi_mirror_with_project_chips_runs_and_lists_projects(
    headwater: Headwater, upstream
) -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD)
        page.get_by_label("Name").fill("py")
        page.get_by_role("button", name="Create channel").click()
        page.get_by_role("link", name="Mirror", exact=True).click()

        projects = page.get_by_label("Projects")
        expect(projects).to_be_hidden()  # a conda mirror has no projects
        page.get_by_label("Type").select_option(label="PyPI (simple index)")
        expect(page.get_by_label("Upstream URL")).to_have_attribute(
            "placeholder", "https://pypi.org/simple/"
        )
        page.get_by_label("Name").fill("pypi")
        page.get_by_label("Upstream URL").fill(upstream.url + "simple/")
        for name in ("web-app", "web-extra", "Web_Lib"):
            projects.fill(name)
            projects.press("Enter")
        chips = page.locator(".chip")
        expect(chips).to_have_count(3)
        page.get_by_role("button", name="Remove web-extra").click()
        expect(chips).to_have_count(2)

        page.get_by_role("button", name="Preview").click()
        preview = page.locator("#preview-result")
        expect(preview).to_contain_text("3 would be taken")
        page.get_by_label("Active: download every file during the run").check()
        page.get_by_role("button", name="Create mirror").click()
        expect(page.get_by_role("status")).to_contain_text("Mirror pypi created.")

        page.locator("tr[data-mirror='pypi']").locator("summary").click()  # the ⋮ menu
        page.locator("tr[data-mirror='pypi']").get_by_role("button", name="Run now").click()
        history = page.locator("#history tbody tr").first
        expect(history.locator(".badge")).to_have_text("completed", timeout=60_000)

        page.get_by_role("link", name="Packages").click()
        table = page.locator("#packages")
        expect(table).to_contain_text("web-app")
        expect(table).to_contain_text("web-lib")
        expect(table).not_to_contain_text("web-extra")
        expect(table.locator("tr", has_text="web-lib")).to_contain_text("PyPI")
        page.get_by_role("link", name="web-lib").click()
        files = page.locator("#files")
        expect(files).to_contain_text("web_lib-0.5-py3-none-any.whl")
        expect(files).to_contain_text("web_lib-0.5.tar.gz")
        expect(files).to_contain_text("Apache-2.0")

        # The saved mirror's form shows its projects as chips again.
        page.goto(headwater.url + "/channels/py/mirrors")
        page.locator("tr[data-mirror='pypi']").locator("summary").click()  # the ⋮ menu
        page.locator("tr[data-mirror='pypi']").get_by_role("link", name="Edit").click()
        expect(page.locator(".chip")).to_have_count(2)
        expect(page.locator(".chip").first).to_contain_text("web-app")
