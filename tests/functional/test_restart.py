"""A server killed mid-run (`kill -9`) leaves nothing behind once it starts again: its run is
failed at once, not after the heartbeat timeout, the mirror can run again, and the partial
download is gone from the staging area."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.support.conda_packages import PackageSpec, build_channel
from tests.support.flows import create_channel, create_mirror
from tests.support.server import serve_process
from tests.support.upstream import Fault, serve_directory

BIG = PackageSpec("hw-big", "1.0", subdir="noarch", random_bytes=4 << 20)
SETTINGS = {
    "embedded_scheduler": "false",
    "upstream_allowlist": "http://127.0.0.1:*",
    "worker_poll_interval": "0.1",
}


def staged(data_dir: Path) -> list[Path]:
    return [path for path in (data_dir / "blobs" / ".staging").rglob("*") if path.is_file()]


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def test_a_restart_after_kill_fails_the_orphaned_run_at_once_and_leaves_no_staging_file(
    tmp_path: Path,
) -> None:
    build_channel(tmp_path / "upstream", [BIG])
    data_dir = tmp_path / "var"
    with serve_directory(tmp_path / "upstream") as upstream:
        # The big file arrives slowly: the run is caught with part of it in the staging area.
        upstream.faults[f"/noarch/{BIG.filename}"] = Fault(trickle=0.05)
        with serve_process(data_dir, **SETTINGS) as first:
            client = httpx.Client(base_url=first.url, headers={"X-Auth": first.login()})
            create_channel(client, "forge")
            mirror = create_mirror(
                client, "forge", upstream.url, mirror_mode="active", filters={"subdirs": ["noarch"]}
            )
            run = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run").json()
            wait_for(lambda: staged(data_dir), 30, "the download never reached the staging area")
            assert client.get(f"/api/runs/{run['id']}").json()["state"] == "running"
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
        assert staged(data_dir), "the killed process left its partial download"

        upstream.faults.clear()
        with serve_process(data_dir, **SETTINGS) as second:
            client = httpx.Client(base_url=second.url, headers={"X-Auth": second.login()})
            # The heartbeat timeout is 120 s; the restarted worker fails the run as it starts.
            failed = wait_for(
                lambda: (
                    (r := client.get(f"/api/runs/{run['id']}").json())["state"] == "failed" and r
                ),
                15,
                "the orphaned run was not failed at start",
            )
            assert "ended while the run was under way" in failed["error"]
            assert "nothing it did was published" in failed["error"]
            assert staged(data_dir) == []
            again = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run")
            assert again.status_code == 202, again.text
            done = wait_for(
                lambda: (
                    (r := client.get(f"/api/runs/{again.json()['id']}").json())["state"]
                    in ("completed", "failed")
                    and r
                ),
                60,
                "the new run did not end",
            )
            assert done["state"] == "completed", done["error"]
            assert client.get(f"/api/repo/forge/noarch/{BIG.filename}").status_code == 200
