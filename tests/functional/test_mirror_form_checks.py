"""The mirror form's live checks, through HTTP: a project chip judged as it is entered, the
frequency's sentence as it is typed, and Save with Run now linking to the queued run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.flows import create_channel, create_mirror, form_proof, sign_in_page
from tests.support.python_packages import Dist, build_index
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import Upstream, serve_directory

CHECK = "/channels/py/mirrors/projects/check"
SCHEDULE = "/channels/py/mirrors/schedule"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    build_index(tmp_path / "index", [Dist("web-lib", "0.5")])
    with serve_directory(tmp_path / "index") as server:
        yield server


@pytest.fixture
def browser(headwater: Headwater) -> Iterator[httpx.Client]:
    with headwater.client(headwater.login()) as api:
        create_channel(api, "py")
    with headwater.client() as client:
        assert sign_in_page(client, ADMIN, PASSWORD).status_code == 303
        yield client


def ask(client: httpx.Client, **fields: str) -> httpx.Response:
    proof = form_proof(client, "/channels/py/mirrors/new")
    return client.post(CHECK, data={"csrf": proof, **fields})


def test_a_project_is_accepted_normalized_or_refused_with_its_reason(
    browser: httpx.Client, upstream: Upstream
) -> None:
    index = {"mirror_type": "python_simple", "source_root": upstream.url + "simple/"}
    found = ask(browser, project="Web_Lib", **index)
    assert found.status_code == 200, found.text
    assert found.json() == {
        "project": "Web_Lib",
        "name": "web-lib",
        "accepted": True,
        "reason": None,
        "upstream": "found",
    }
    missing = ask(browser, project="no-such-project", **index).json()
    assert missing["accepted"] is False
    assert missing["upstream"] == "missing"
    assert missing["reason"] == f"not found on {upstream.url}simple/"

    invalid = ask(browser, project="bad name!", **index).json()
    assert invalid["accepted"] is False and invalid["name"] is None
    assert "not a valid project name" in invalid["reason"]
    assert upstream.count("/simple/bad name!/") == 0  # an invalid name is never asked about

    # A conda form, or a PyPI form without an upstream yet: the name alone is judged.
    assert ask(browser, project="Django").json()["name"] == "django"
    alone = ask(browser, project="Django", mirror_type="python_simple", source_root="").json()
    assert alone["accepted"] is True and alone["upstream"] == "unchecked"


def test_an_upstream_that_cannot_be_asked_leaves_the_name_accepted(
    browser: httpx.Client,
) -> None:
    # Outside HEADWATER_UPSTREAM_ALLOWLIST: never fetched, and said so.
    outside = ask(
        browser,
        project="requests",
        mirror_type="python_simple",
        source_root="http://169.254.169.254/simple/",
    ).json()
    assert outside["accepted"] is True and outside["upstream"] == "unknown"
    assert "not allowed" in outside["reason"]
    # Allowed but closed: "could not ask", still within the check's few seconds.
    closed = ask(
        browser, project="requests", mirror_type="python_simple", source_root="http://127.0.0.1:9/"
    ).json()
    assert closed["accepted"] is True and closed["upstream"] == "unknown"
    # A proxy outside HEADWATER_PROXY_ALLOWLIST is refused, and the index not asked.
    unknown_proxy = ask(
        browser,
        project="requests",
        mirror_type="python_simple",
        source_root="http://127.0.0.1:9/",
        proxy="http://proxy.example:3128",
    ).json()
    assert unknown_proxy["accepted"] is True and unknown_proxy["upstream"] == "unchecked"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "project is required"),
        ({"project": "   "}, "project is required"),
        ({"project": "a" * 201}, "at most 200 characters"),
    ],
)
def test_a_project_check_without_a_usable_name_is_refused(
    browser: httpx.Client, fields: dict[str, str], words: str
) -> None:
    refused = ask(browser, **fields)
    assert refused.status_code == 422, refused.text
    assert words in refused.json()["detail"]


def test_a_project_check_with_a_control_character_is_refused(browser: httpx.Client) -> None:
    refused = ask(browser, project="web\x00lib")
    assert refused.status_code == 422


def test_a_project_check_needs_the_forms_proof(browser: httpx.Client) -> None:
    assert browser.post(CHECK, data={"project": "requests"}).status_code == 403


def test_the_schedule_sentence_follows_the_cron(browser: httpx.Client) -> None:
    daily = browser.get(SCHEDULE, params={"cron": "30 2 * * *"})
    assert daily.status_code == 200, daily.text
    body = daily.json()
    assert body["description"] == "At 02:30 AM (UTC)"
    assert len(body["next_runs"]) == 3
    assert all(run["text"].endswith("02:30:00 UTC") for run in body["next_runs"])
    assert body["warnings"] == []
    hourly = browser.get(SCHEDULE, params={"cron": "0 * * * *"}).json()
    assert "more often than daily" in hourly["warnings"][0]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"cron": "61 * * * *"}, "is not valid"),
        ({"cron": "* * *"}, "must have five fields"),
        ({"cron": "<script>alert(1)</script> * * * *"}, "is not valid"),
    ],
)
def test_a_bad_cron_is_refused_with_what_is_wrong(
    browser: httpx.Client, params: dict[str, str], words: str
) -> None:
    refused = browser.get(SCHEDULE, params=params)
    assert refused.status_code == 422, refused.text
    assert words in refused.json()["error"]


def test_a_missing_or_overlong_cron_is_refused(browser: httpx.Client) -> None:
    assert browser.get(SCHEDULE).status_code == 422
    assert browser.get(SCHEDULE, params={"cron": "0 " * 101}).status_code == 422


def test_a_rare_or_overlong_cron_cannot_tie_up_the_server(browser: httpx.Client) -> None:
    # A fifth Friday in February comes once in 28 years: judged from its first firing days,
    # not by walking 200 firings (5600 years) on every keystroke.
    rare = browser.get(SCHEDULE, params={"cron": "0 0 * 2 5#5"})
    assert rare.status_code == 200, rare.text
    assert len(rare.json()["next_runs"]) == 3 and rare.json()["warnings"] == []
    # A form's cron as long as the body allows is refused unparsed, in the preview too.
    proof = form_proof(browser, "/channels/py/mirrors/new")
    overlong = ",".join(["0"] * 200_000) + " 0 * * *"  # 800 KB as the form sends it
    saved = browser.post(
        "/channels/py/mirrors/new",
        data={"csrf": proof, "mirror_name": "m", "mirror_type": "conda", "cron": overlong},
    )
    assert saved.status_code == 422, saved.text[:300]
    assert "at most 200 characters" in saved.text


def test_saving_with_run_now_links_to_the_queued_run(
    headwater: Headwater, browser: httpx.Client
) -> None:
    with headwater.client(headwater.login()) as api:
        mirror = create_mirror(api, "py", "http://127.0.0.1:9/", mirror_name="closed")
    edit = f"/channels/py/mirrors/{mirror['id']}/edit"
    form = {
        "csrf": form_proof(browser, edit),
        "mirror_name": "closed",
        "mirror_type": "conda",
        "source_root": "http://127.0.0.1:9/",
        "cron": "0 0 * * *",
        "run_now": "on",
    }
    saved = browser.post(edit, data=form)
    assert saved.status_code == 303, saved.text
    target = saved.headers["location"]
    found = re.fullmatch(r"/channels/py/mirrors\?queued=(\d+)", target)
    assert found, target
    page = browser.get(target).text
    run_id = found.group(1)
    assert f'<a href="/runs/{run_id}">follow it</a>' in page
    assert browser.get(f"/runs/{run_id}").status_code == 200
    # Only a run of this channel's mirrors is linked; anything else in the address is not shown.
    for forged in ("999999", "<script>x</script>", "../admin"):
        shown = browser.get("/channels/py/mirrors", params={"queued": forged}).text
        assert "data-queued" not in shown and "<script>x" not in shown
