"""Every page a signed-in administrator can reach, at 1280 px wide and at a phone's width, holds
together: nothing wider than the window (a wide table scrolls inside its own box), dates on one
line, empty tables said with the `.empty` cell.

The pages come from the web routers' GET routes, their path parameters filled from the sample
content of tests/support/sample_site.py (a channel whose mirror ran, with long package and file
names; an uploaded wheel; CVE matches; a failed run; an organization; a token; a garbage
collection), so a new page is checked without being added here; a route that cannot be filled
is listed in SKIPPED with why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import Page

from headwater import web
from tests.conftest import make_settings
from tests.support.browser import chromium, sign_in
from tests.support.sample_site import CHANNEL, EMPTY, LONG_NAME, LONG_WHEEL, Site, sample_site
from tests.support.server import ADMIN, PASSWORD

pytestmark = pytest.mark.browser

PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}

# Routes of the web routers that are not pages to look at, each with why.
SKIPPED = {
    "/auth/oidc/start": "redirects to the identity provider (none is configured here)",
    "/auth/oidc/callback": "the identity provider's answer, not a page one visits",
    "/channels/{channel}": "redirects to the channel's packages, checked as such",
    "/channels/{channel}/mirrors/schedule": "the mirror form's JSON answer on a cron, not a page",
}
# Pages beyond one per route (the sample fills /admin/jobs/{run_id} with its garbage collection,
# /runs/{run_id} with its mirror run): a PyPI package, a search, and the empty states of a
# channel without content.
EXTRA = [
    f"/channels/{CHANNEL}/packages/{LONG_WHEEL}",
    f"/channels/{CHANNEL}/packages?q=hw",
    f"/channels/{EMPTY}/packages",
    f"/channels/{EMPTY}/revisions",
    f"/channels/{EMPTY}/mirrors",
    f"/channels/{EMPTY}/history",
    f"/channels/{EMPTY}/cves",
    f"/channels/{EMPTY}/settings",
]
# The error page, as a page that is not there shows it.
MISSING = f"/channels/{CHANNEL}/packages/{LONG_NAME}-that-is-not-there"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("layout")
    with sample_site(root, make_settings(root / "var")) as running:
        yield running


def web_get_routes() -> list[APIRoute]:
    """The GET routes of the routers web.install includes (they are mounted without prefix)."""
    return [
        route
        for module in web.PAGES
        for route in module.router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    ]


def fill(path: str, values: dict[str, str]) -> str:
    return PARAMETER.sub(lambda found: values[found.group(1)], path)


def page_paths(site: Site) -> list[str]:
    """A path for every GET page of the web routers, its parameters filled in, then EXTRA."""
    paths: list[str] = []
    for route in web_get_routes():
        if route.path in SKIPPED:
            continue
        values = {**site.params, **site.overrides.get(route.path, {})}
        names = PARAMETER.findall(route.path)
        unknown = [name for name in names if name not in values] + [
            f"?{query.name}"
            for query in route.dependant.query_params
            if query.field_info.is_required()
        ]
        assert not unknown, (
            f"{route.path}: no value for {unknown}; fill it in the fixture or list the route "
            "in SKIPPED with a reason"
        )
        paths.append(fill(route.path, values))
    assert f"/channels/{CHANNEL}/packages" in paths and "/admin/storage" in paths
    return [*paths, *EXTRA]


# The widest offender: among the elements reaching past the window, the outermost ones (whose
# parent does not), widest first.
OVERFLOW = """() => {
  const limit = window.innerWidth;
  const scroll = document.documentElement.scrollWidth;
  if (scroll <= limit) return null;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + [...e.classList].map((c) => '.' + c).join('');
  const past = (e) => e.getBoundingClientRect().right > limit + 0.5;
  const offenders = [...document.body.querySelectorAll('*')]
    .filter((e) => past(e) && !(e.parentElement && past(e.parentElement)))
    .map((e) => ({e, width: e.getBoundingClientRect().width}))
    .sort((a, b) => b.width - a.width)
    .slice(0, 3)
    .map(({e, width}) => name(e) + ' (' + Math.round(width) + ' px, right edge at '
      + Math.round(e.getBoundingClientRect().right) + ': "'
      + e.textContent.trim().replace(/\\s+/g, ' ').slice(0, 60) + '")');
  return {scroll, limit, offenders};
}"""

# Dates (the `when` macro's <time>) that wrap, or whose style lets them wrap.
WRAPPED_DATES = """() => [...document.querySelectorAll('main time')]
  .filter((t) => getComputedStyle(t).whiteSpace !== 'nowrap' || t.getClientRects().length > 1)
  .map((t) => t.textContent.trim())"""

# A table's single row saying there is nothing, without the `.empty` cell.
BARE_EMPTY_ROWS = """() => [...document.querySelectorAll('main table tbody tr')]
  .filter((tr) => tr.parentElement.rows.length === 1 && tr.cells.length === 1
    && tr.cells[0].tagName === 'TD' && tr.cells[0].colSpan > 1
    && !tr.cells[0].classList.contains('empty'))
  .map((tr) => tr.textContent.trim().replace(/\\s+/g, ' ').slice(0, 60))"""


def check(page: Page, url: str, label: str, status: int = 200) -> list[str]:
    response = page.goto(url)
    assert response is not None and response.status == status, f"{label}: {response}"
    problems = []
    overflow = page.evaluate(OVERFLOW)
    if overflow:
        problems.append(
            f"{label}: the page is {overflow['scroll']} px wide in a {overflow['limit']} px "
            f"window; widest offenders: {'; '.join(overflow['offenders'])}"
        )
    if wrapped := page.evaluate(WRAPPED_DATES):
        problems.append(f"{label}: dates not on one line: {wrapped[:3]}")
    if bare := page.evaluate(BARE_EMPTY_ROWS):
        problems.append(f"{label}: empty-table rows without the .empty cell: {bare[:3]}")
    return problems


def menu_opens_unclipped(page: Page, base: str, label: str) -> list[str]:
    """A row's ⋮ menu, opened in a table that scrolls in its own box, is not cut off by it (the
    box would have to be scrolled down to reach the menu's items)."""
    page.goto(f"{base}/channels/{CHANNEL}/mirrors")
    menus = page.locator("#mirrors details.menu")
    if not menus.count():
        return []
    menus.last.locator("summary").click()
    clipped = page.locator("#mirrors").evaluate(
        "t => getComputedStyle(t).overflowY !== 'visible' && t.scrollHeight > t.clientHeight + 1"
    )
    return [f"the mirrors tab's ⋮ menu {label}: cut off by its table's box"] if clipped else []


def test_every_page_fits_at_1280_px_and_on_a_phone(site: Site) -> None:
    base = site.headwater.url
    paths = page_paths(site)
    problems: list[str] = []
    with chromium() as browser:
        for width_name, (width, height) in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(20_000)
            problems += check(page, base + "/login", f"/login at {width_name} ({width} px)")
            sign_in(page, base, ADMIN, PASSWORD, then="/account")
            page.wait_for_url(base + "/account")
            for path in paths:
                problems += check(page, base + path, f"{path} at {width_name} ({width} px)")
            problems += check(page, base + MISSING, f"{MISSING} at {width_name}", status=404)
            problems += menu_opens_unclipped(page, base, f"at {width_name} ({width} px)")
            context.close()
    assert not problems, "\n".join(problems)


def test_the_page_list_covers_every_web_route(site: Site) -> None:
    """Each GET route of the web routers is visited or skipped with a reason; nothing else."""
    visited = set(page_paths(site))
    routes = {route.path for route in web_get_routes()}
    assert set(SKIPPED) <= routes, f"SKIPPED names routes that are gone: {set(SKIPPED) - routes}"
    assert len(visited) >= len(routes) - len(SKIPPED)
