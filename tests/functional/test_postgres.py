"""On PostgreSQL: separate worker processes share the queue, and a killed worker's run is reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from headwater.settings import Settings
from tests.conftest import make_settings
from tests.functional.test_conda_client import solve_and_install
from tests.support.conda_packages import CHAIN, build_channel
from tests.support.flows import create_channel, create_mirror, run_mirror, wait_for_run
from tests.support.server import ADMIN, PASSWORD, run_headwater
from tests.support.upstream import Fault, serve_directory

pytestmark = pytest.mark.postgres

MIRRORS = 8


def worker_env(settings: Settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEADWATER_")}
    env.update(
        HEADWATER_DATA_DIR=str(settings.data_dir),
        HEADWATER_DATABASE_URL=str(settings.database_url),
        HEADWATER_ADMIN_USER=ADMIN,
        HEADWATER_ADMIN_PASSWORD=PASSWORD,
        HEADWATER_UPSTREAM_ALLOWLIST="http://127.0.0.1:*",
        HEADWATER_WORKER_POLL_INTERVAL="0.1",
        HEADWATER_HEARTBEAT_INTERVAL="0.3",
        HEADWATER_HEARTBEAT_TIMEOUT=str(settings.heartbeat_timeout),
        HEADWATER_HTTP_ATTEMPTS="1",
        HEADWATER_HTTP_TIMEOUT="60",
    )
    return env


@contextmanager
def workers(settings: Settings, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes, once each has started (cleaned up after crashes and begun to
    poll): a worker still starting would fail the runs of a killed one as orphaned, at once,
    where the test means to see the heartbeat timeout do it."""
    logs = [settings.data_dir / f"worker-{index}.log" for index in range(count)]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for log in logs:
        with log.open("wb") as output:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "headwater", "worker"],
                    env=worker_env(settings),
                    stdout=subprocess.DEVNULL,
                    stderr=output,
                )
            )
    try:
        deadline = time.monotonic() + 60
        while not all("started" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text()[-500:] for log in logs]
            time.sleep(0.05)
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def upstream(tmp_path: Path):
    root = tmp_path / "upstream"
    build_channel(root / "channel", CHAIN)
    for index in range(MIRRORS + 1):
        (root / f"m{index}").symlink_to(root / "channel")
    with serve_directory(root) as server:
        yield server


def test_a_mirror_runs_and_installs_on_postgres(
    tmp_path: Path, postgres_url: str, upstream
) -> None:
    settings = make_settings(tmp_path / "var", database_url=postgres_url)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url + "m0/", mirror_mode="passive")
        run = run_mirror(client, "forge", mirror["id"])
        assert run["state"] == "completed", run["error"]
        installed = solve_and_install(
            f"{headwater.url}/api/repo/forge", "hw-app", tmp_path / "env", tmp_path / "cache"
        )
        assert installed == ["hw-app-1.0", "hw-base-1.0", "hw-lib-2.0"]


def test_two_worker_processes_execute_every_run_exactly_once(
    tmp_path: Path, postgres_url: str, upstream
) -> None:
    settings = make_settings(
        tmp_path / "var", database_url=postgres_url, embedded_worker=False, embedded_scheduler=False
    )
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        mirrors = []
        for index in range(MIRRORS):
            create_channel(client, f"c{index}")
            mirrors.append(
                create_mirror(
                    client,
                    f"c{index}",
                    f"{upstream.url}m{index}/",
                    filters={"subdirs": ["linux-64", "noarch"]},
                )
            )
        with workers(settings, 2):
            queued = [
                client.post(f"/api/channels/c{i}/mirrors/{m['id']}/run").json()
                for i, m in enumerate(mirrors)
            ]
            finished = [wait_for_run(client, run["id"], timeout=120) for run in queued]

        assert all(run["state"] == "completed" for run in finished), [r["error"] for r in finished]
        for index in range(MIRRORS):
            assert upstream.count(f"/m{index}/linux-64/repodata.json.zst") == 1
            assert upstream.count(f"/m{index}/noarch/repodata.json.zst") == 1
        claims = [
            [
                line["message"]
                for line in run["log"]
                if line["message"].startswith("claimed by worker")
            ]
            for run in finished
        ]
        assert all(len(claim) == 1 for claim in claims), claims
        worker_ids = {claim[0].split()[-1] for claim in claims}
        assert len(worker_ids) == 2, "both workers took runs from the shared queue"


def test_a_killed_worker_leaves_its_run_failed_and_the_mirror_runs_again(
    tmp_path: Path, postgres_url: str, upstream
) -> None:
    settings = make_settings(
        tmp_path / "var",
        database_url=postgres_url,
        embedded_worker=False,
        embedded_scheduler=False,
        heartbeat_timeout=3.0,
    )
    upstream.faults["/m0/linux-64/repodata.json.zst"] = Fault(delay=60.0, times=1)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url + "m0/", filters={"subdirs": ["linux-64", "noarch"]}
        )
        with workers(settings, 2) as processes:
            run = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run").json()
            deadline = time.monotonic() + 30
            while (current := client.get(f"/api/runs/{run['id']}").json())[
                "state"
            ] != "running" or "linux-64" not in current["step"]:
                assert time.monotonic() < deadline, current
                time.sleep(0.05)
            claim = next(
                line["message"]
                for line in current["log"]
                if line["message"].startswith("claimed by")
            )
            pid = int(claim.split()[-1].split(":")[1])
            victim = next(process for process in processes if process.pid == pid)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)

            failed = wait_for_run(client, run["id"], timeout=60)
            assert failed["state"] == "failed"
            assert "stopped sending heartbeats" in failed["error"]
            assert "nothing it did was published" in failed["error"]

            again = run_mirror(client, "forge", mirror["id"])
            assert again["state"] == "completed", again["error"]
            assert again["id"] != run["id"]


def test_cve_import_matching_and_curation_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    from tests.functional.test_cves import ADVISORIES, curate, files_of, matched, upload
    from tests.support.advisories import import_zip, zip_of
    from tests.support.python_packages import Dist, build_dist

    wheels = [build_dist(tmp_path / "dist", Dist("scorepkg", v)) for v in ("1.0", "2.0")]
    settings = make_settings(tmp_path / "var", database_url=postgres_url)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        client.post("/api/channels", json={"name": "pg"}).raise_for_status()
        for wheel in wheels:
            upload(client, "pg", wheel.path)
        assert import_zip(client, zip_of(ADVISORIES))["matching"]["added"] == 4
        critical = matched(client, "CVE-2099-0001")
        curate(client, critical[wheels[0].path.name]["id"], "cleared")
        files = files_of(client, "pg", "scorepkg")
        assert files[wheels[0].path.name]["cve_score"] == 5.0
        assert files[wheels[1].path.name]["cve_score"] == 9.8
        assert client.get("/api/channels/pg/cves").json()["total_count"] == 2
        assert import_zip(client, zip_of(ADVISORIES))["unchanged"] == 2
