"""The queue carries more than mirrors' runs: the CVE feeds' refresh is a job, queued by the
scheduler once per firing for the whole deployment, executed by one worker, kept in the
history and shown to administrators."""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.conftest import make_settings
from tests.functional.test_cves import ADVISORIES
from tests.support.advisories import zip_of
from tests.support.cli import signed_in
from tests.support.server import (
    ADMIN,
    PASSWORD,
    Headwater,
    ServeProcess,
    free_port,
    run_headwater,
    serve_process,
)
from tests.support.upstream import Fault, Upstream, serve_directory

NEVER_AGAIN = "0 0 1 1 *"  # after the first firing at start, not within a test


def refreshes(client: httpx.Client) -> list[dict[str, Any]]:
    answer = client.get("/api/jobs", params={"kind": "cve-refresh"})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def jobs_of(client: httpx.Client, kind: str) -> list[dict[str, Any]]:
    answer = client.get("/api/jobs", params={"kind": kind})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def wait_until(
    check: Callable[[], list[dict[str, Any]]], timeout: float = 60
) -> list[dict[str, Any]]:
    """`check()` once it lists a run that ended."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if any(job["state"] in ("completed", "failed") for job in found):
            return found
        assert time.monotonic() < deadline, f"no refresh ended in {timeout}s: {found}"
        time.sleep(0.1)


@pytest.fixture
def feeds(tmp_path: Path) -> Upstream:
    directory = tmp_path / "feeds"
    directory.mkdir()
    (directory / "all.zip").write_bytes(zip_of(ADVISORIES))
    with serve_directory(directory) as server:
        yield server  # type: ignore[misc]


def test_the_feeds_refresh_as_a_job_at_first_start_and_a_failing_feed_is_named(
    tmp_path: Path, feeds: Upstream
) -> None:
    # A feed behind basic auth, whose server is down: its password is for fetching it, not
    # for any message about it.
    host = f"127.0.0.1:{free_port()}"
    missing, present = f"http://reader:feed-secret@{host}/all.zip", feeds.url + "all.zip"
    shown_missing = f"http://reader:***@{host}/all.zip"
    settings = make_settings(
        tmp_path / "var", cve_feeds=(missing, present), cve_refresh_cron=NEVER_AGAIN
    )
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        [refresh] = wait_until(lambda: refreshes(admin))
        assert refresh["state"] == "failed", refresh
        assert refresh["trigger"] == "schedule"
        assert refresh["params"] == {"feeds": [shown_missing, present]}
        assert refresh["error"].startswith(f"1 of 2 CVE feeds failed: {shown_missing}: ")
        # The other feed imported all the same.
        assert admin.get("/api/cves/CVE-2099-0001").json()["score"] == 9.8
        # It is a job, not a mirror's run: the mirrors' history does not list it.
        assert admin.get(f"/api/runs/{refresh['id']}").status_code == 404
        detail = admin.get(f"/api/jobs/{refresh['id']}").json()
        said = [line["message"] for line in detail["log"]]
        assert any(m.startswith(f"CVE feed {shown_missing}: could not fetch") for m in said), said
        assert any(m.startswith(f"CVE feed {present}: 2 advisories") for m in said), said
        assert "feed-secret" not in json.dumps(detail)
        ended = admin.post(f"/api/jobs/{refresh['id']}/stop")
        assert ended.status_code == 409
        assert "only a pending or running run can be stopped" in ended.json()["detail"]
        everything = admin.get("/api/jobs").json()
        # with the deployment's other jobs, pruning revisions and collecting garbage, also
        # fired at the first start
        assert sorted(job["kind"] for job in everything["items"]) == [
            "blob-collect",
            "cve-refresh",
            "revision-prune",
        ]

        # The same from the CLI, and on the administrators' Jobs page.
        cli = signed_in(headwater, tmp_path / "home")
        listed = json.loads(cli("job", "list", "--kind", "cve-refresh", "--json").stdout)
        assert [(job["id"], job["state"]) for job in listed] == [(refresh["id"], "failed")]
        printed = cli("job", "list").stdout
        assert f"#{refresh['id']}" in printed and "cve-refresh" in printed
        shown = cli("job", "show", str(refresh["id"])).stdout
        assert f"CVE feed {present}: 2 advisories" in shown
        printed += shown
        page = admin.get("/admin/jobs", params={"kind": "cve-refresh"})
        assert page.status_code == 200
        assert 'data-kind="cve-refresh" data-state="failed"' in page.text
        assert "1 of 2 CVE feeds failed" in page.text
        assert "feed-secret" not in page.text + printed + json.dumps(everything)


def test_a_running_refresh_stops_after_the_feed_it_is_importing(
    tmp_path: Path, feeds: Upstream
) -> None:
    (feeds.root / "slow.zip").write_bytes(zip_of(ADVISORIES))
    feeds.faults["/slow.zip"] = Fault(delay=2.0, times=1)
    settings = make_settings(
        tmp_path / "var",
        cve_feeds=(feeds.url + "slow.zip", feeds.url + "all.zip"),
        cve_refresh_cron=NEVER_AGAIN,
    )
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        deadline = time.monotonic() + 30
        while feeds.requests["/slow.zip"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        [running] = refreshes(admin)
        assert running["state"] == "running"
        assert admin.post(f"/api/jobs/{running['id']}/stop").status_code == 200
        [stopped] = wait_until(lambda: refreshes(admin))
        assert stopped["state"] == "failed"
        assert stopped["error"] == (
            f"stopped by {ADMIN}; the feeds imported before it stay imported"
        )
        # The feed under way when the stop came finished importing; the next never started,
        # and nothing goes on importing behind the ended run.
        assert admin.get("/api/cves/CVE-2099-0001").json()["score"] == 9.8
        time.sleep(1)
        assert feeds.requests["/all.zip"] == 0


def test_a_bad_refresh_cron_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="must have five fields"):
        make_settings(tmp_path / "var", cve_refresh_cron="0 * * *")


def test_a_pending_refresh_is_stopped_at_once_and_the_stop_is_audited(
    tmp_path: Path, feeds: Upstream
) -> None:
    settings = make_settings(
        tmp_path / "var",
        cve_feeds=(feeds.url + "all.zip",),
        cve_refresh_cron=NEVER_AGAIN,
        embedded_worker=False,  # nobody claims it: it stays pending
    )
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        deadline = time.monotonic() + 30
        while not (queued := refreshes(admin)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        [pending] = queued
        assert pending["state"] == "pending"
        page = admin.get("/admin/jobs")
        assert f'action="/admin/jobs/{pending["id"]}/stop"' in page.text  # a Stop button
        stopped = admin.post(f"/api/jobs/{pending['id']}/stop")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["state"] == "failed"
        assert stopped.json()["error"] == f"stopped by {ADMIN} before it started"
        assert admin.post("/api/jobs/999999/stop").status_code == 404
        [event] = admin.get("/api/audit", params={"action": "job.stop"}).json()["items"]
        assert (event["actor"], event["target"]) == (ADMIN, f"run {pending['id']}")
    assert feeds.requests["/all.zip"] == 0


def test_only_administrators_see_the_jobs(headwater: Headwater) -> None:
    headwater.add_user("bob", "bobs password")
    with headwater.client() as anonymous:
        assert anonymous.get("/api/jobs").status_code == 401
    with headwater.client(headwater.login("bob", "bobs password")) as bob:
        refused = bob.get("/api/jobs")
        assert refused.status_code == 403
        assert "administrators" in refused.json()["detail"]
        assert bob.post("/api/jobs/1/stop").status_code == 403
    with headwater.client(headwater.login()) as admin:
        listed = admin.get("/api/jobs").json()
        # at first start, the deployment jobs that run on their schedule may be queued
        assert {job["kind"] for job in listed["items"]} <= {"revision-prune", "blob-collect"}
        assert admin.get("/api/jobs", params={"kind": "nonsense"}).status_code == 422


@pytest.mark.postgres
def test_two_serve_processes_refresh_the_feeds_once(
    tmp_path: Path, feeds: Upstream, postgres_url: str
) -> None:
    settings = {
        "database_url": postgres_url,
        "upstream_allowlist": "http://127.0.0.1:*",
        "cve_feeds": feeds.url + "all.zip",
        "cve_refresh_cron": NEVER_AGAIN,
        "scheduler_interval": "0.2",
        "worker_poll_interval": "0.1",
        "heartbeat_interval": "0.2",
    }
    with (
        serve_process(tmp_path / "one", **settings) as one,
        serve_process(tmp_path / "two", **settings) as two,
    ):
        servers: list[ServeProcess] = [one, two]
        clients = [httpx.Client(base_url=s.url, headers={"X-Auth": s.login()}) for s in servers]
        wait_until(lambda: refreshes(clients[0]))
        time.sleep(3)  # fifteen more ticks of both schedulers, and polls of both workers
        for client in clients:
            [refresh] = refreshes(client)
            assert refresh["state"] == "completed", refresh
            assert client.get("/api/cves/CVE-2099-0001").json()["score"] == 9.8
            client.close()
    assert feeds.requests["/all.zip"] == 1, feeds.requests


def test_run_now_from_the_pages_is_audited_and_refused_while_one_is_under_way(
    tmp_path: Path,
) -> None:
    """The Jobs page's Run now and the Storage page's Collect garbage now queue a run as POST
    /api/jobs does; nobody claims it here, so a second is refused, naming it."""
    from tests.support.flows import form_proof, sign_in_page

    settings = make_settings(tmp_path / "var", embedded_worker=False, embedded_scheduler=False)
    with run_headwater(settings) as headwater, headwater.client() as browser:
        assert sign_in_page(browser, ADMIN, PASSWORD).status_code == 303
        proof = form_proof(browser, "/admin/storage")
        assert 'action="/admin/jobs"' in browser.get("/admin/jobs").text  # the Run now form
        form = {"kind": "blob-collect", "back": "/admin/storage", "csrf": proof}
        queued = browser.post("/admin/jobs", data=form)
        assert (queued.status_code, queued.headers["location"]) == (303, "/admin/storage")
        page = browser.get("/admin/storage").text
        found = re.search(r"Queued blob-collect run #(\d+)\.", page)
        assert found is not None, page
        run_id = int(found.group(1))
        assert f'<a href="/admin/jobs/{run_id}">run #{run_id}</a>' in page
        assert 'data-state="pending"' in page

        again = browser.post("/admin/jobs", data=form | {"back": "//elsewhere.example/"})
        assert (again.status_code, again.headers["location"]) == (303, "/admin/jobs")
        said = browser.get("/admin/jobs").text
        assert f"Not queued: a blob-collect run is under way (#{run_id})." in said

        shown = browser.get(f"/admin/jobs/{run_id}")
        assert shown.status_code == 200 and 'data-state="pending"' in shown.text
        assert f'action="/admin/jobs/{run_id}/stop"' in shown.text
        assert browser.get("/admin/jobs/999999").status_code == 404
        refused = browser.post("/admin/jobs", data=form | {"kind": "mirror"})
        assert refused.status_code == 422
        assert "is not a job of this deployment" in refused.text

    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        events = admin.get("/api/audit", params={"action": "job.run"}).json()["items"]
        assert [(event["actor"], event["target"]) for event in events] == [(ADMIN, "blob-collect")]


def test_job_run_wait_follows_the_run_and_fails_with_it(tmp_path: Path) -> None:
    missing = f"http://127.0.0.1:{free_port()}/all.zip"  # nothing listens there
    settings = make_settings(tmp_path / "var", cve_feeds=(missing,), cve_refresh_cron=NEVER_AGAIN)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        wait_until(lambda: refreshes(admin))  # the first start's refresh, out of the way
        cli = signed_in(headwater, tmp_path / "home")
        followed = cli("job", "run", "cve-refresh", "--wait", check=False)
        assert followed.returncode == 1, followed.stdout + followed.stderr
        assert re.search(r"run #\d+ \(cve-refresh\): failed", followed.stdout)
        assert "error: 1 of 1 CVE feeds failed" in followed.stdout
        assert f"CVE feed {missing}: could not fetch" in followed.stdout


def test_a_run_queued_through_this_process_is_claimed_without_waiting_for_a_poll(
    tmp_path: Path,
) -> None:
    """The embedded worker polls every ten minutes here, yet a job queued through the API is
    claimed at once: the queueing rings this process's workers when it commits."""
    settings = make_settings(tmp_path / "var", worker_poll_interval=600, embedded_scheduler=False)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        for kind in ("blob-collect", "revision-prune"):  # the second after the worker idled
            queued = admin.post("/api/jobs", json={"kind": kind})
            assert queued.status_code == 202, queued.text
            ended = wait_until(functools.partial(jobs_of, admin, kind))
            assert [job["state"] for job in ended] == ["completed"], ended
