"""The `headwater` command, run as a user would, against the same database as a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import serve_directory


def headwater_cli(
    server: Headwater, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEADWATER_")}
    env.update(
        HEADWATER_DATA_DIR=str(server.settings.data_dir),
        HEADWATER_ADMIN_USER=ADMIN,
        HEADWATER_ADMIN_PASSWORD=PASSWORD,
        HEADWATER_UPSTREAM_ALLOWLIST="http://127.0.0.1:*",
        COLUMNS="200",
    )
    done = subprocess.run(
        [sys.executable, "-m", "headwater", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_channels_uploads_and_mirrors_from_the_command_line(
    headwater: Headwater, upstream, tmp_path: Path
) -> None:
    created = json.loads(
        headwater_cli(
            headwater, "channel", "create", "cli", "--description", "from the shell", "--json"
        ).stdout
    )
    assert created["name"] == "cli" and created["owner"] == ADMIN
    assert "cli" in headwater_cli(headwater, "channel", "list").stdout

    package = build_package(PackageSpec("cli-tool", "1.0"), tmp_path)
    uploaded = json.loads(
        headwater_cli(headwater, "channel", "upload", "cli", str(package), "--json").stdout
    )
    assert uploaded[0]["filename"] == "cli-tool-1.0-0.conda"
    with headwater.client() as client:
        assert (
            client.get("/api/repo/cli/linux-64/cli-tool-1.0-0.conda").content
            == package.read_bytes()
        )

    broken = tmp_path / "broken-1.0-0.conda"
    broken.write_bytes(b"not a zip")
    refused = headwater_cli(headwater, "channel", "upload", "cli", str(broken), check=False)
    assert refused.returncode == 1
    assert "error: broken-1.0-0.conda is not a readable conda package" in refused.stderr

    mirror = json.loads(
        headwater_cli(
            headwater,
            "mirror",
            "create",
            "cli",
            "--name",
            "up",
            "--source",
            upstream.url,
            "--mode",
            "active",
            "--filters",
            '{"subdirs": ["linux-64", "noarch"]}',
            "--cron",
            "0 * * * *",
            "--json",
        ).stdout
    )
    assert mirror["mirror_mode"] == "active" and mirror["filters"] == {
        "subdirs": ["linux-64", "noarch"]
    }
    assert mirror["warnings"], "an hourly schedule is warned about"

    preview = json.loads(
        headwater_cli(
            headwater,
            "mirror",
            "preview",
            "cli",
            str(mirror["id"]),
            "--show",
            "all",
            "--json",
            "--channel-filters",
            '{"exclude_licenses": ["gpl3"]}',
        ).stdout
    )
    assert preview["counts"]["by_reason"] == {"channel filter": 1}  # hw-tool is GPL-3
    assert preview["files"]["total_count"] == len(CHAIN)
    draft = headwater_cli(
        headwater,
        "mirror",
        "preview",
        "cli",
        "--source",
        upstream.url,
        "--filters",
        '{"subdirs": ["noarch"]}',
    ).stdout
    assert "1 records upstream: 1 taken, 0 dropped" in draft

    # The server's embedded worker executes the run the CLI queues; --wait follows it.
    run = json.loads(
        headwater_cli(
            headwater, "mirror", "run", "cli", str(mirror["id"]), "--wait", "--json"
        ).stdout
    )
    assert run["state"] == "completed", run["error"]
    assert run["counters"]["downloaded"] == len(CHAIN)
    assert "claimed by worker" in " ".join(line["message"] for line in run["log"])

    history = headwater_cli(headwater, "mirror", "runs", "cli", str(mirror["id"])).stdout
    assert "completed" in history
    listed = json.loads(headwater_cli(headwater, "mirror", "list", "--json").stdout)
    assert [(m["channel"], m["state"]) for m in listed] == [("cli", "completed")]

    edited = json.loads(
        headwater_cli(
            headwater, "mirror", "edit", "cli", str(mirror["id"]), "--cron", "0 2 * * *", "--json"
        ).stdout
    )
    assert edited["cron"] == "0 2 * * *" and edited["warnings"] == []
    bad = headwater_cli(
        headwater, "mirror", "edit", "cli", str(mirror["id"]), "--cron", "every day", check=False
    )
    assert bad.returncode == 1 and "cron 'every day'" in bad.stderr

    headwater_cli(headwater, "mirror", "delete", "cli", str(mirror["id"]), "--yes")
    headwater_cli(headwater, "channel", "delete", "cli", "--yes")
    with headwater.client() as client:
        assert client.get("/api/channels/cli").status_code == 404


def test_pypi_upload_and_mirror_from_the_command_line(headwater: Headwater, tmp_path: Path) -> None:
    from tests.support.python_packages import Dist, build_dist, build_index

    wheel = build_dist(tmp_path / "dist", Dist("zeta", "1.0", license_expression="MIT"))
    headwater_cli(headwater, "channel", "create", "mixed")
    uploaded = headwater_cli(headwater, "channel", "upload", "mixed", str(wheel.path))
    assert f"uploaded simple/zeta/{wheel.path.name}" in uploaded.stdout
    again = headwater_cli(headwater, "channel", "upload", "mixed", str(wheel.path), check=False)
    assert again.returncode != 0 and "already in channel 'mixed'" in again.stderr

    build_index(tmp_path / "index", [Dist("eta", "2.0"), Dist("eta", "2.1b1")])
    with serve_directory(tmp_path / "index") as upstream:
        source = upstream.url + "simple/"
        previewed = json.loads(
            headwater_cli(
                headwater, "mirror", "preview", "mixed", "--source", source,
                "--type", "python_simple", "--filters", '{"projects": ["eta"]}', "--json",
            ).stdout
        )  # fmt: skip
        assert previewed["counts"] == {
            "seen": 2,
            "taken": 1,
            "dropped": 1,
            "by_reason": {"spec": 1},
        }
        created = json.loads(
            headwater_cli(
                headwater, "mirror", "create", "mixed", "--name", "pypi", "--source", source,
                "--type", "python_simple", "--project", "ETA", "--project", "missing", "--json",
            ).stdout
        )  # fmt: skip
        assert created["filters"]["projects"] == ["eta", "missing"]
        assert created["warnings"] == [f"project 'missing' was not found at {source}"]
        run = json.loads(
            headwater_cli(
                headwater, "mirror", "run", "mixed", str(created["id"]), "--wait", "--json"
            ).stdout
        )
        assert run["state"] == "completed", run["error"]
    listing = headwater_cli(headwater, "channel", "packages", "mixed", "--json").stdout
    assert {(p["name"], tuple(p["package_types"])) for p in json.loads(listing)["items"]} == {
        ("eta", ("python",)),
        ("zeta", ("python",)),
    }
