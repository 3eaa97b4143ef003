"""Runs never overlap, can be stopped, are scheduled by cron, and show up in the history."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from headwater.models import Mirror
from tests.conftest import make_settings
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel
from tests.support.flows import (
    create_channel,
    create_mirror,
    filenames,
    repodata,
    run_mirror,
    sign_in_page,
    wait_for_run,
)
from tests.support.server import PASSWORD, Headwater, run_headwater
from tests.support.upstream import Fault, serve_directory


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def wait_for_state(client, run_id: int, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while (run := client.get(f"/api/runs/{run_id}").json())["state"] != state:
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return run


def test_run_now_during_a_run_is_refused_and_runs_never_overlap(
    headwater: Headwater, token: str, upstream
) -> None:
    upstream.faults["/linux-64/repodata.json.zst"] = Fault(delay=1.5, times=1)
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url, filters={"subdirs": ["linux-64", "noarch"]}
        )
        first = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run")
        assert first.status_code == 202
        assert first.json()["state"] == "pending"
        wait_for_state(client, first.json()["id"], "running")

        second = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run")
        assert second.status_code == 409
        assert f"already has a running run (#{first.json()['id']})" in second.json()["detail"]

        finished = wait_for_run(client, first.json()["id"])
        assert finished["state"] == "completed"
        history = client.get(f"/api/channels/forge/mirrors/{mirror['id']}/runs").json()
        assert history["total_count"] == 1

        again = run_mirror(client, "forge", mirror["id"])
        assert again["state"] == "completed"
        runs = client.get("/api/channels/forge/runs").json()["items"]
        assert [run["id"] for run in runs] == [again["id"], first.json()["id"]], "newest first"
        # No two runs of the mirror were ever running at the same time.
        assert runs[1]["finished_at"] <= runs[0]["started_at"]


def test_stopping_a_running_run_publishes_nothing(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client,
            "forge",
            upstream.url,
            mirror_mode="active",
            filters={"subdirs": ["linux-64", "noarch"]},
        )
        upstream.faults["/linux-64/hw-lib-1.0-0.conda"] = Fault(delay=3.0, times=1)
        run = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run").json()
        wait_for_state(client, run["id"], "running")
        deadline = time.monotonic() + 10
        while client.get(f"/api/runs/{run['id']}").json()["step"] != "downloading":
            assert time.monotonic() < deadline
            time.sleep(0.05)

        stop = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/stop")
        assert stop.status_code == 202
        assert stop.json()["stop_requested_by"] == "admin"

        ended = wait_for_run(client, run["id"])
        assert ended["state"] == "failed"
        assert ended["error"].startswith("stopped by admin")
        assert filenames(repodata(client, "forge", "noarch")) == set()
        assert client.get("/api/repo/forge/linux-64/repodata.json").status_code == 404

        # The mirror is free again.
        assert run_mirror(client, "forge", mirror["id"])["state"] == "completed"


def test_stopping_a_pending_run_fails_it_at_once(tmp_path: Path, upstream) -> None:
    settings = make_settings(tmp_path / "var", embedded_worker=False)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url)
        run = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run").json()
        assert (
            client.get(f"/api/channels/forge/mirrors/{mirror['id']}").json()["state"] == "pending"
        )
        # No worker takes runs here: the run says so, in the API and on its page.
        waiting = client.get(f"/api/runs/{run['id']}").json()["pending_reason"]
        ahead = [
            job
            for job in client.get("/api/jobs", params={"limit": 100}).json()["items"]
            if job["state"] == "pending" and job["id"] < run["id"]  # the deployment's jobs
        ]
        assert waiting == (
            f"Queued behind {len(ahead)} run{'s' * (len(ahead) > 1)} "
            f"(run #{ahead[0]['id']} starts just before it)"
            if ahead
            else "First in line, waiting for a worker to take it; if it stays pending, check "
            "that a worker is running (headwater serve with its embedded worker, or headwater "
            "worker)"
        )
        with headwater.client() as browser:
            assert sign_in_page(browser, "admin", PASSWORD).status_code == 303
            for page in (f"/runs/{run['id']}", "/channels/forge/history", "/mirrors"):
                assert waiting in browser.get(page).text, page
            jobs = browser.get("/admin/jobs").text  # every pending job says where it stands
            assert jobs.count("data-pending-reason") == len(ahead) + 1
        stopped = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/stop").json()
        assert stopped["id"] == run["id"]
        assert stopped["state"] == "failed"
        assert stopped["error"] == "stopped by admin before it started"
        nothing = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/stop")
        assert nothing.status_code == 409
        assert "no pending or running run" in nothing.json()["detail"]
        # The pages keep the failed state, and say who stopped it.
        with headwater.client() as browser:
            assert sign_in_page(browser, "admin", PASSWORD).status_code == 303
            for page in ("/channels/forge/history", f"/runs/{run['id']}"):
                shown = browser.get(page).text
                assert 'data-state="failed"' in shown, page
                assert 'data-stopped-by="admin"' in shown and "stopped by admin" in shown, page


def test_cron_fires_runs_and_skips_a_firing_while_one_is_under_way(
    tmp_path: Path, upstream
) -> None:
    settings = make_settings(tmp_path / "var", scheduler_interval=0.1)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, cron="0 3 * * *")
        assert mirror["state"] is None
        assert mirror["warnings"] == []
        next_run = dt.datetime.fromisoformat(mirror["next_run_at"])
        assert (next_run.hour, next_run.minute) == (3, 0)
        assert len(mirror["next_runs"]) == 3

        # Make the mirror due now, as if 03:00 had come.
        db = headwater.resources.db  # type: ignore[attr-defined]
        with db.writing() as session:
            session.execute(
                update(Mirror).values(next_run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        deadline = time.monotonic() + 20
        while not (runs := client.get("/api/channels/forge/runs").json()["items"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        run = wait_for_run(client, runs[0]["id"])
        assert run["trigger"] == "schedule"
        assert run["state"] == "completed"
        moved = client.get(f"/api/channels/forge/mirrors/{mirror['id']}").json()
        assert dt.datetime.fromisoformat(moved["next_run_at"]) > dt.datetime.now(dt.UTC)


def test_a_firing_while_a_run_is_under_way_is_skipped_and_noted(tmp_path: Path, upstream) -> None:
    from headwater.worker.scheduler import enqueue_due_runs

    with (
        run_headwater(
            make_settings(tmp_path / "var", embedded_worker=False, embedded_scheduler=False)
        ) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url)
        pending = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run").json()
        db = headwater.resources.db  # type: ignore[attr-defined]
        with db.writing() as session:
            session.execute(
                update(Mirror).values(next_run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        assert enqueue_due_runs(db) == []
        runs = client.get("/api/channels/forge/runs").json()
        assert runs["total_count"] == 1
        log = [line["message"] for line in client.get(f"/api/runs/{pending['id']}").json()["log"]]
        assert any("scheduled firing" in message and "skipped" in message for message in log)


def test_schedules_are_validated_and_frequent_ones_warned_about(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        bad = client.post(
            "/api/channels/forge/mirrors",
            json={"mirror_name": "m", "source_root": upstream.url, "cron": "61 * * * *"},
        )
        assert bad.status_code == 422
        assert "cron '61 * * * *' is not valid" in bad.json()["detail"]
        short = client.post(
            "/api/channels/forge/mirrors",
            json={"mirror_name": "m", "source_root": upstream.url, "cron": "* *"},
        )
        assert short.status_code == 422
        assert "five fields" in short.json()["detail"]
        assert client.get("/api/channels/forge/mirrors").json()["total_count"] == 0

        hourly = create_mirror(client, "forge", upstream.url, cron="0 * * * *")
        assert hourly["warnings"] and "more often than daily" in hourly["warnings"][0]
        daily = client.put(
            f"/api/channels/forge/mirrors/{hourly['id']}", json={"cron": "30 2 * * *"}
        ).json()
        assert daily["warnings"] == []
        assert daily["cron"] == "30 2 * * *"
        assert "02:30" in daily["cron_description"] or "2:30" in daily["cron_description"]


# A file big enough to be caught downloading: at 16 KiB every 50 ms, about 13 seconds.
SLOW = PackageSpec("hw-slow", "1.0", subdir="noarch", random_bytes=4 << 20)


def start_slow_run(client, upstream_root: Path, upstream) -> tuple[dict, int]:
    """A channel `slow` whose active mirror downloads SLOW slowly; the queued run and the
    file's size."""
    upstream.faults[f"/noarch/{SLOW.filename}"] = Fault(trickle=0.05)
    create_channel(client, "slow")
    mirror = create_mirror(
        client, "slow", upstream.url, mirror_mode="active", filters={"subdirs": ["noarch"]}
    )
    run = client.post(f"/api/channels/slow/mirrors/{mirror['id']}/run")
    assert run.status_code == 202, run.text
    return run.json(), (upstream_root / "noarch" / SLOW.filename).stat().st_size


def wait_for_pace(client, path: str, timeout: float = 30) -> dict:
    """The run at `path` once it is downloading with a measured rate and a time left."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(path).json()
        progress = run["progress"]
        if progress["bytes_done"] and progress["bytes_per_second"] and progress["eta_seconds"]:
            return run
        assert run["state"] in ("pending", "running"), run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def test_a_downloading_run_shows_its_bytes_rate_and_time_left(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    root = build_channel(tmp_path / "slow", [SLOW])
    with serve_directory(root) as upstream, headwater.client(token) as client:
        queued, size = start_slow_run(client, root, upstream)
        run = wait_for_pace(client, f"/api/runs/{queued['id']}")
        progress = run["progress"]
        assert run["state"] == "running" and run["step"] == "downloading"
        assert (progress["done"], progress["total"], progress["bytes_total"]) == (0, 1, size)
        assert 0 < progress["bytes_done"] < size
        assert progress["step_started_at"] >= run["started_at"]
        # the estimate is what is left at the measured rate (about 320 KiB/s here)
        left = (size - progress["bytes_done"]) / progress["bytes_per_second"]
        assert progress["eta_seconds"] == pytest.approx(left)
        assert 50_000 < progress["bytes_per_second"] < 50_000_000

        # Administrators' view of the queue shows the same.
        job = client.get(f"/api/jobs/{queued['id']}").json()
        assert job["progress"]["bytes_total"] == size

        stopped = client.post(f"/api/channels/slow/mirrors/{queued['mirror_id']}/stop")
        assert stopped.status_code == 202, stopped.text
        ended = wait_for_run(client, queued["id"])
        assert ended["state"] == "failed"
        # an ended run goes at no rate and has no time left
        assert ended["progress"]["bytes_per_second"] is None
        assert ended["progress"]["eta_seconds"] is None
