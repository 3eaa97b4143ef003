"""Dependency-aware mirroring from the command line: the channel's dependency check, the
mirror's dependency filters, and a run's dependency report as `headwater run show` prints it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Cli, signed_in
from tests.support.conda_packages import PackageSpec, build_channel
from tests.support.server import Headwater
from tests.support.upstream import serve_directory

# hw-gui needs hw-base (MIT) and hw-gpl, which the channel's license filter keeps out.
PACKAGES = [
    PackageSpec("hw-base", "1.0", subdir="noarch"),
    PackageSpec("hw-gpl", "1.0", license="GPL-3.0-only", license_family="GPL3"),
    PackageSpec("hw-gui", "1.0", depends=("hw-base >=1.0", "hw-gpl")),
]


@pytest.fixture
def cli(headwater: Headwater, tmp_path: Path) -> Cli:
    return signed_in(headwater, tmp_path / "home")


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", PACKAGES)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_channel_dependency_check_from_the_command_line(cli: Cli, upstream) -> None:
    cli("channel", "create", "deps")
    helped = cli("channel", "edit", "--help").stdout
    for option in ("--must-install", "--also-available", "--on-unsolvable", "SPEC[@PLATFORM]"):
        assert option in helped

    edited = json.loads(
        cli(
            "channel",
            "edit",
            "deps",
            "--must-install",
            "hw-gui >=1.0@linux-64",
            "--must-install",
            "hw-base",
            "--also-available",
            upstream.url,
            "--on-unsolvable",
            "warn",
            "--include-dependencies",
            "--dependencies",
            "newest",
            "--json",
        ).stdout
    )
    assert edited["must_install"] == [
        {"spec": "hw-gui >=1.0", "platform": "linux-64"},
        {"spec": "hw-base", "platform": None},
    ]
    assert [url.rstrip("/") for url in edited["also_available"]] == [upstream.url.rstrip("/")]
    assert edited["on_unsolvable"] == "warn"
    assert edited["filters"] == {"include_dependencies": True, "dependencies": "newest"}

    # The service's refusals come back as one red line.
    refused = cli("channel", "edit", "deps", "--must-install", "hw-gui@linux-65", check=False)
    assert refused.returncode == 1
    assert "unknown platform 'linux-65'" in refused.stderr
    refused = cli("channel", "edit", "deps", "--on-unsolvable", "shrug", check=False)
    assert refused.returncode == 1 and "not one of fail, warn" in refused.stderr
    refused = cli("channel", "edit", "deps", "--dependencies", "some", check=False)
    assert refused.returncode == 2 and "not one of all, newest, default" in refused.stderr

    cleared = json.loads(
        cli(
            "channel",
            "edit",
            "deps",
            "--clear-must-install",
            "--clear-also-available",
            "--no-include-dependencies",
            "--dependencies",
            "default",
            "--json",
        ).stdout
    )
    assert cleared["must_install"] == [] and cleared["also_available"] == []
    assert cleared["filters"] == {}
    assert cleared["on_unsolvable"] == "warn"


def test_mirror_dependency_flags_and_the_run_report(cli: Cli, upstream) -> None:
    cli("channel", "create", "deps", "--filters", '{"exclude_licenses": ["gpl3"]}')
    cli(
        "channel",
        "edit",
        "deps",
        "--must-install",
        "hw-gui@linux-64",
        "--on-unsolvable",
        "fail",
    )
    mirror = json.loads(
        cli(
            "mirror",
            "create",
            "deps",
            "--name",
            "up",
            "--source",
            upstream.url,
            "--filters",
            '{"subdirs": ["linux-64", "noarch"]}',
            "--include-dependencies",
            "--dependencies",
            "all",
            "--json",
        ).stdout
    )
    assert mirror["filters"] == {
        "subdirs": ["linux-64", "noarch"],
        "include_dependencies": True,
        "dependencies": "all",
    }
    edited = json.loads(
        cli(
            "mirror", "edit", "deps", str(mirror["id"]), "--dependencies", "newest", "--json"
        ).stdout
    )
    assert edited["filters"]["dependencies"] == "newest"
    assert edited["filters"]["include_dependencies"] is True
    edited = json.loads(
        cli(
            "mirror", "edit", "deps", str(mirror["id"]), "--no-include-dependencies", "--json"
        ).stdout
    )
    assert "include_dependencies" not in edited["filters"]
    cli("mirror", "edit", "deps", str(mirror["id"]), "--include-dependencies")

    # must_install cannot be solved without hw-gpl and on_unsolvable is fail: the run fails,
    # and both `mirror run --wait` and `run show` print the report.
    followed = cli("mirror", "run", "deps", str(mirror["id"]), "--wait", check=False)
    assert followed.returncode == 1, followed.stdout + followed.stderr
    assert "broken packages: 1" in followed.stdout
    run_id = json.loads(cli("mirror", "runs", "deps", str(mirror["id"]), "--json").stdout)[0]["id"]
    shown = cli("run", "show", str(run_id)).stdout
    assert "taken as dependencies: 0 files" in shown
    assert "1 need hw-gpl: removed by the channel's exclude_licenses" in shown
    assert "linux-64/hw-gui-1.0-0.conda needs 'hw-gpl'" in shown
    assert "must_install on linux-64 (hw-gui): cannot be solved" in shown
    detail = json.loads(cli("run", "show", str(run_id), "--json").stdout)
    assert detail["state"] == "failed"
    assert detail["report"]["broken"]["groups"][0]["dependency"] == "hw-gpl"
