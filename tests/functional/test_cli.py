"""The `headwater` command, run as a user would: signed in to a running server over HTTP, with
the rights of whoever signed in; and the commands that run on the server itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.cli import Cli, signed_in
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.server import ADMIN, PASSWORD, Headwater
from tests.support.upstream import serve_directory


@pytest.fixture
def cli(headwater: Headwater, tmp_path: Path) -> Cli:
    return signed_in(headwater, tmp_path / "home")


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def test_channels_uploads_and_mirrors_from_the_command_line(
    headwater: Headwater, cli: Cli, upstream, tmp_path: Path
) -> None:
    created = json.loads(
        cli("channel", "create", "cli", "--description", "from the shell", "--json").stdout
    )
    assert created["name"] == "cli" and created["owner"] == ADMIN
    assert "cli" in cli("channel", "list").stdout

    package = build_package(PackageSpec("cli-tool", "1.0"), tmp_path)
    uploaded = json.loads(cli("channel", "upload", "cli", str(package), "--json").stdout)
    assert uploaded[0]["filename"] == "cli-tool-1.0-0.conda"
    with headwater.client() as client:
        assert (
            client.get("/api/repo/cli/linux-64/cli-tool-1.0-0.conda").content
            == package.read_bytes()
        )

    broken = tmp_path / "broken-1.0-0.conda"
    broken.write_bytes(b"not a zip")
    refused = cli("channel", "upload", "cli", str(broken), check=False)
    assert refused.returncode == 1
    assert "error: broken-1.0-0.conda is not a readable conda package" in refused.stderr

    mirror = json.loads(
        cli(
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
        cli(
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
    draft = cli(
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
    run = json.loads(cli("mirror", "run", "cli", str(mirror["id"]), "--wait", "--json").stdout)
    assert run["state"] == "completed", run["error"]
    assert run["counters"]["downloaded"] == len(CHAIN)
    assert "claimed by worker" in " ".join(line["message"] for line in run["log"])

    history = cli("mirror", "runs", "cli", str(mirror["id"])).stdout
    assert "completed" in history
    listed = json.loads(cli("mirror", "list", "--json").stdout)
    assert [(m["channel"], m["state"]) for m in listed] == [("cli", "completed")]

    edited = json.loads(
        cli("mirror", "edit", "cli", str(mirror["id"]), "--cron", "0 2 * * *", "--json").stdout
    )
    assert edited["cron"] == "0 2 * * *" and edited["warnings"] == []
    bad = cli("mirror", "edit", "cli", str(mirror["id"]), "--cron", "every day", check=False)
    assert bad.returncode == 1 and "cron 'every day'" in bad.stderr

    cli("mirror", "delete", "cli", str(mirror["id"]), "--yes")
    cli("channel", "delete", "cli", "--yes")
    with headwater.client(headwater.login()) as client:
        assert client.get("/api/channels/cli").status_code == 404


def test_pypi_upload_and_mirror_from_the_command_line(
    headwater: Headwater, cli: Cli, tmp_path: Path
) -> None:
    from tests.support.python_packages import Dist, build_dist, build_index

    wheel = build_dist(tmp_path / "dist", Dist("zeta", "1.0", license_expression="MIT"))
    cli("channel", "create", "mixed")
    uploaded = cli("channel", "upload", "mixed", str(wheel.path))
    assert f"uploaded /api/repo/mixed/simple/zeta/{wheel.path.name}" in uploaded.stdout
    again = cli("channel", "upload", "mixed", str(wheel.path), check=False)
    assert again.returncode != 0 and "already in channel 'mixed'" in again.stderr

    build_index(tmp_path / "index", [Dist("eta", "2.0"), Dist("eta", "2.1b1")])
    with serve_directory(tmp_path / "index") as upstream:
        source = upstream.url + "simple/"
        previewed = json.loads(
            cli(
                "mirror", "preview", "mixed", "--source", source,
                "--type", "python_simple", "--filters", '{"projects": ["eta"]}', "--json",
            ).stdout
        )  # fmt: skip
        assert previewed["counts"] == {
            "seen": 2,
            "taken": 1,
            "dropped": 1,
            "by_reason": {"spec": 1},
            "dependencies": 0,
        }
        created = json.loads(
            cli(
                "mirror", "create", "mixed", "--name", "pypi", "--source", source,
                "--type", "python_simple", "--project", "ETA", "--project", "missing", "--json",
            ).stdout
        )  # fmt: skip
        assert created["filters"]["projects"] == ["eta", "missing"]
        assert created["warnings"] == [f"project 'missing' was not found at {source}"]
        run = json.loads(
            cli("mirror", "run", "mixed", str(created["id"]), "--wait", "--json").stdout
        )
        assert run["state"] == "completed", run["error"]
    listing = cli("channel", "packages", "mixed", "--json").stdout
    assert {(p["name"], tuple(p["package_types"])) for p in json.loads(listing)["items"]} == {
        ("eta", ("python",)),
        ("zeta", ("python",)),
    }


def test_login_keeps_the_token_for_its_owner_only_and_logout_ends_the_session(
    headwater: Headwater, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "home")
    refused = cli("login", headwater.url, "--username", ADMIN, input="wrong\n", check=False)
    assert refused.returncode == 1 and "wrong username or password" in refused.stderr
    assert not cli.credentials.exists()
    not_yet = cli("channel", "list", check=False)
    assert not_yet.returncode == 1 and "headwater login" in not_yet.stderr

    cli("login", headwater.url, "--username", ADMIN, input=PASSWORD + "\n")
    assert cli.credentials.stat().st_mode & 0o777 == 0o600
    assert cli.credentials.parent.stat().st_mode & 0o077 == 0
    token = json.loads(cli.credentials.read_text())["token"]
    assert f"{ADMIN} on {headwater.url}" in cli("whoami").stdout

    cli("logout")
    assert not cli.credentials.exists()
    with headwater.client(token) as client:
        assert client.get("/api/account").status_code == 401  # revoked on the server too


def test_the_cli_acts_with_the_rights_of_whoever_signed_in(
    headwater: Headwater, cli: Cli, tmp_path: Path
) -> None:
    cli("channel", "create", "open")
    cli("channel", "create", "vault", "--privacy", "private")
    headwater.add_user("bob", "bobs password")
    bob = signed_in(headwater, tmp_path / "bob", "bob", "bobs password")

    listed = json.loads(bob("channel", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["open"]
    hidden = bob("channel", "show", "vault", check=False)
    assert hidden.returncode == 1 and "channel 'vault' does not exist" in hidden.stderr
    edit = bob("channel", "edit", "open", "--description", "mine", check=False)
    assert edit.returncode == 1 and "it needs the manage role" in edit.stderr
    admin_only = bob("user", "create", "eve", "--password", "x", check=False)
    assert (
        admin_only.returncode == 1 and "only administrators may manage users" in admin_only.stderr
    )

    cli("channel", "role", "grant", "vault", "read", "--user", "bob")
    assert [c["name"] for c in json.loads(bob("channel", "list", "--json").stdout)] == [
        "open",
        "vault",
    ]


def test_personal_tokens_from_the_command_line(headwater: Headwater, cli: Cli) -> None:
    cli("channel", "create", "vault", "--privacy", "private")
    created = json.loads(
        cli("token", "create", "ci", "--channel", "vault:read", "--days", "7", "--json").stdout
    )
    assert created["resources"] == [{"channel": "vault", "role": "read"}]
    with headwater.client(created["token"]) as client:
        assert client.get("/api/repo/vault/noarch/repodata.json").status_code == 200
        assert client.get("/api/channels/vault/mirrors").status_code == 403
    listing = cli("token", "list").stdout
    assert "ci" in listing and "vault:read" in listing and "(this one)" in listing
    cli("token", "revoke", str(created["id"]))
    with headwater.client(created["token"]) as client:
        assert client.get("/api/repo/vault/noarch/repodata.json").status_code == 401


def test_following_a_run_shows_files_and_bytes(
    headwater: Headwater, cli: Cli, upstream, tmp_path: Path
) -> None:
    cli("channel", "create", "active")
    mirror = json.loads(
        cli(
            "mirror", "create", "active", "--name", "up", "--source", upstream.url,
            "--mode", "active", "--json",
        ).stdout
    )  # fmt: skip
    followed = cli("mirror", "run", "active", str(mirror["id"]), "--wait")
    assert "None" not in followed.stdout
    assert f"downloaded {len(CHAIN)} (" in followed.stdout
    from headwater.cli.runs import progress_line

    run = {
        "state": "running",
        "step": "downloading",
        "progress": {"done": 2, "total": 5, "bytes_total": 3 << 20},
        "counters": {"downloaded": 2, "bytes": 1 << 20},
    }
    assert progress_line(run) == ("running: downloading", 2, 5, "2 files, 1.0 MiB of 3.0 MiB")
    run["progress"] |= {"bytes_per_second": 524_288.4, "eta_seconds": 64.6}
    assert progress_line(run)[3] == "2 files, 1.0 MiB of 3.0 MiB, 512.0 KiB/s, 1 min 5 s left"
    run["progress"] = {"done": 0, "total": 0, "bytes_total": 0}
    assert progress_line(run)[2] is None  # a step that counts nothing has no total, not "None"
    job = {"state": "running", "step": "deleting unreferenced blobs", "progress": {"done": 3}}
    assert progress_line(job) == ("running: deleting unreferenced blobs", 3, None, "")


def test_a_run_under_way_shows_its_rate_and_time_left(
    headwater: Headwater, cli: Cli, tmp_path: Path
) -> None:
    from tests.functional.test_runs import SLOW, start_slow_run, wait_for_pace

    root = build_channel(tmp_path / "slow", [SLOW])
    with serve_directory(root) as upstream, headwater.client(headwater.login()) as client:
        queued, _ = start_slow_run(client, root, upstream)
        wait_for_pace(client, f"/api/runs/{queued['id']}")
        shown = cli("run", "show", str(queued["id"])).stdout
        client.post(f"/api/channels/slow/mirrors/{queued['mirror_id']}/stop")
    (line,) = [line for line in shown.splitlines() if line.startswith("progress: ")]
    assert re.fullmatch(
        r"progress: 0/1, [\d.]+ [KM]iB of 4\.0 MiB, [\d.]+ KiB/s, (\d+ min )?\d+ s left", line
    ), line
    watched = cli("run", "watch", str(queued["id"]), check=False)
    assert watched.returncode == 1, "the stopped run failed"
    assert "stopped by" in watched.stdout


def test_storage_and_running_a_job_from_the_command_line(headwater: Headwater, cli: Cli) -> None:
    usage = json.loads(cli("storage", "--json").stdout)
    assert usage["backend"] == "local" and usage["grace_hours"] == 24
    assert json.loads(cli("storage", "show", "--json").stdout)["blobs"] == usage["blobs"]
    printed = cli("storage").stdout
    assert "backend local:" in printed and "Channels" in printed and "Mirrors" in printed

    queued = json.loads(cli("job", "run", "blob-collect", "--json").stdout)
    assert (queued["kind"], queued["trigger"]) == ("blob-collect", "manual")
    followed = cli("job", "run", "blob-collect", "--wait", check=False)
    if followed.returncode == 1:  # the first was still under way: refused, as the API does
        assert "a blob-collect run is under way" in followed.stderr
        followed = cli("job", "run", "blob-collect", "--wait")
    ran = re.search(r"run #(\d+) \(blob-collect\): completed", followed.stdout)
    assert ran is not None, followed.stdout
    assert re.search(r"collected: listed \d+ blobs .*deleted 0, reclaimed 0 B", followed.stdout)
    assert f"last collection: run #{ran.group(1)} completed" in cli("storage").stdout

    refused = cli("job", "run", "nothing", check=False)
    assert refused.returncode == 1 and "'blob-collect'" in refused.stderr
    refused = cli("job", "run", "mirror", check=False)  # mirrors run from their own command
    assert refused.returncode == 1
    assert "'mirror' is not a job of this deployment to run now" in refused.stderr


def test_the_commands_that_run_on_the_server(headwater: Headwater, tmp_path: Path) -> None:
    on_server = Cli(
        tmp_path / "server-home", {"HEADWATER_DATA_DIR": str(headwater.settings.data_dir)}
    )
    for command in ("migrate", "create-admin", "rematch-cves"):
        assert "On the server" in on_server(command, "--help").stdout
    on_server("create-admin", "root", input="a new password\na new password\n")
    assert headwater.login("root", "a new password")
    headwater.add_user("bob", "bobs password")
    bob = headwater.login("bob", "bobs password")
    on_server("create-admin", "bob", input="bobs new one\nbobs new one\n")
    with headwater.client(bob) as client:
        assert client.get("/api/account").status_code == 401  # the old password's tokens end
    with headwater.client(headwater.login("bob", "bobs new one")) as client:
        assert client.get("/api/account").json()["is_admin"] is True
