"""Channel revisions as clients and administrators see them: pinned URLs serve a revision
exactly as it was, rollback brings older contents back, and changes that overlap all land."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import make_settings
from tests.functional.test_conda_client import solve_and_install
from tests.functional.test_cves import RULE_ADVISORIES, curate, files_of
from tests.functional.test_postgres import workers
from tests.support.advisories import import_zip, zip_of
from tests.support.browser import chromium, sign_in
from tests.support.cli import signed_in
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, run_mirror, wait_for_run
from tests.support.pypi_clients import installed, pip_install
from tests.support.python_packages import Dist, build_index
from tests.support.server import ADMIN, PASSWORD, Headwater, run_headwater
from tests.support.upstream import Fault, serve_directory

NEWER = [
    PackageSpec("hw-lib", "3.0", depends=("hw-base >=1.0",)),
    PackageSpec("hw-app", "2.0", depends=("hw-lib >=3",)),
]
LINUX = "/api/repo/forge/linux-64/repodata.json"


def _files(document: dict) -> set[str]:
    return set(document["packages"]) | set(document["packages.conda"])


def _index(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def _add_upstream(upstream, specs: list[PackageSpec]) -> None:
    build_channel(upstream.root, specs)


def test_a_pinned_revision_serves_the_first_index_byte_for_byte_and_installs_from_it(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active")
        assert run_mirror(client, "forge", mirror["id"])["state"] == "completed"
        first = {
            f"{subdir}/{name}": _index(client, f"/api/repo/forge/{subdir}/{name}").content
            for subdir in ("noarch", "linux-64")
            for name in ("repodata.json", "repodata.json.zst")
        }
        _add_upstream(upstream, NEWER)
        second_run = run_mirror(client, "forge", mirror["id"])
        assert second_run["state"] == "completed", second_run["error"]
        head = _index(client, LINUX)
        assert head.headers["X-Headwater-Revision"] == "2"
        assert b"hw-app-2.0" in head.content
        for name, content in first.items():
            pinned = _index(client, f"/api/repo/forge@1/{name}")
            assert pinned.content == content, f"{name} of revision 1 changed"
            assert pinned.headers["X-Headwater-Revision"] == "1"
            assert "immutable" in pinned.headers["Cache-Control"]
        behind_token = client.get(f"/api/repo/t/{token}/forge@1/linux-64/repodata.json")
        assert behind_token.status_code == 200
        assert behind_token.content == first["linux-64/repodata.json"]
        revisions = client.get("/api/channels/forge/revisions").json()
        assert [r["number"] for r in revisions["items"]] == [2, 1]
        assert revisions["items"][0]["run_id"] == second_run["id"]
        detail = client.get("/api/channels/forge/revisions/2").json()
        assert sorted(f["filename"] for f in detail["files_added"]) == [
            "hw-app-2.0-0.conda",
            "hw-lib-3.0-0.conda",
        ]
        assert detail["files_removed"] == []

    latest = solve_and_install(
        f"{headwater.url}/api/repo/forge", "hw-app", tmp_path / "new", tmp_path / "c1"
    )
    assert "hw-app-2.0" in latest
    pinned = solve_and_install(
        f"{headwater.url}/api/repo/forge@1", "hw-app", tmp_path / "old", tmp_path / "c2"
    )
    assert pinned == ["hw-app-1.0", "hw-base-1.0", "hw-lib-2.0"]
    assert (tmp_path / "old" / "share" / "hw-app" / "1.0.txt").exists()


def test_a_pruned_or_unknown_revision_says_which_ones_exist(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url)
        run_mirror(client, "forge", mirror["id"])
        response = client.get("/api/repo/forge@7/noarch/repodata.json")
        assert response.status_code == 404
        assert "revisions available: 1 to 1" in response.json()["detail"]
        kept = client.put("/api/channels/forge/revisions/1", json={"keep": "2026-q4-release"})
        assert kept.status_code == 200, kept.text
        assert kept.json()["keep"] == "2026-q4-release"
        by_name = _index(client, "/api/repo/forge@2026-q4-release/noarch/repodata.json")
        assert by_name.headers["X-Headwater-Revision"] == "1"
        bad = client.put("/api/channels/forge/revisions/1", json={"keep": "12"})
        assert bad.status_code == 422 and "not a number" in bad.json()["detail"]


def test_rollback_of_a_conda_channel_serves_the_older_contents_and_their_files(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active")
        run_mirror(client, "forge", mirror["id"])
        first = _index(client, LINUX).json()
        for spec in CHAIN:
            if spec.name in ("hw-app", "hw-lib"):
                (upstream.root / spec.subdir / spec.filename).unlink()
        _add_upstream(upstream, NEWER)
        # upstream dropped hw-app 1.0 and hw-lib 1.x: a rollback still brings and serves them
        assert run_mirror(client, "forge", mirror["id"])["state"] == "completed"
        assert "hw-app-1.0-0.tar.bz2" not in _files(_index(client, LINUX).json())

        response = client.post("/api/channels/forge/revisions/1/rollback")
        assert response.status_code == 200, response.text
        landed = response.json()
        assert (landed["number"], landed["rolled_back_to"], landed["cause"]) == (3, 1, "rollback")
        now = _index(client, LINUX)
        assert now.headers["X-Headwater-Revision"] == "3"
        assert now.json() == first
        for filename in _files(first):
            assert client.get(f"/api/repo/forge/linux-64/{filename}").status_code == 200
        history = client.get("/api/channels/forge/revisions").json()["items"]
        assert history[0]["rolled_back_to"] == 1
    installed_now = solve_and_install(
        f"{headwater.url}/api/repo/forge", "hw-app", tmp_path / "env", tmp_path / "cache"
    )
    assert installed_now == ["hw-app-1.0", "hw-base-1.0", "hw-lib-2.0"]


PY_FIRST = [Dist("demo-lib", "1.0")]
PY_SECOND = [Dist("demo-lib", "1.0"), Dist("demo-lib", "2.0")]


def test_pip_installs_the_old_version_from_a_pinned_simple_url_and_after_a_rollback(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    build_index(tmp_path / "py", PY_FIRST)
    with serve_directory(tmp_path / "py") as upstream, headwater.client(token) as client:
        create_channel(client, "py")
        mirror = create_mirror(
            client,
            "py",
            upstream.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="active",
            filters={"projects": ["demo-lib"]},
        )
        assert run_mirror(client, "py", mirror["id"])["state"] == "completed"
        build_index(tmp_path / "py", PY_SECOND)
        assert run_mirror(client, "py", mirror["id"])["state"] == "completed"
        page = _index(client, "/api/repo/py/simple/demo-lib/")
        assert page.headers["X-Headwater-Revision"] == "2"

        pinned = pip_install(f"{headwater.url}/api/repo/py@1/simple/", tmp_path / "a", "demo-lib")
        assert pinned.returncode == 0, pinned.stderr
        assert installed(tmp_path / "a") == {"demo-lib": "1.0"}
        latest = pip_install(f"{headwater.url}/api/repo/py/simple/", tmp_path / "b", "demo-lib")
        assert latest.returncode == 0, latest.stderr
        assert installed(tmp_path / "b") == {"demo-lib": "2.0"}

        rolled = client.post("/api/channels/py/revisions/1/rollback")
        assert rolled.status_code == 200, rolled.text
        removed = [file["filename"] for file in rolled.json()["files_removed"]]
        assert "demo_lib-2.0-py3-none-any.whl" in removed
        _until_anonymous_readers_see(headwater, "/api/repo/py/simple/demo-lib/", "3")
        after = pip_install(f"{headwater.url}/api/repo/py/simple/", tmp_path / "c", "demo-lib")
        assert after.returncode == 0, after.stderr
        assert installed(tmp_path / "c") == {"demo-lib": "1.0"}


def _until_anonymous_readers_see(headwater: Headwater, path: str, revision: str) -> None:
    """Anonymous readers of a public channel are answered from cache for up to a second
    after a change (repo/fast_path.py)."""
    with httpx.Client(base_url=headwater.url) as anonymous:
        for _ in range(100):
            if anonymous.get(path).headers.get("X-Headwater-Revision") == revision:
                return
            threading.Event().wait(0.1)
    raise AssertionError(f"{path} never showed revision {revision}")


def test_an_upload_during_a_mirror_run_and_the_run_both_land(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    extra = build_package(PackageSpec("in-house", "1.0", subdir="noarch"), tmp_path / "own")
    upstream.faults["/noarch/repodata.json.zst"] = Fault(delay=2.0)
    upstream.faults["/linux-64/repodata.json.zst"] = Fault(delay=2.0)
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url)
        started = client.post(f"/api/channels/forge/mirrors/{mirror['id']}/run")
        assert started.status_code == 202
        run_id = started.json()["id"]
        while client.get(f"/api/runs/{run_id}").json()["state"] != "running":
            threading.Event().wait(0.05)
        with extra.open("rb") as handle:
            uploaded = client.post(
                "/api/channels/forge/files", files={"file": (extra.name, handle)}
            )
        assert uploaded.status_code in (200, 201), uploaded.text
        assert client.get(f"/api/runs/{run_id}").json()["state"] == "running", (
            "the upload landed while the run was under way"
        )
        run = wait_for_run(client, run_id)
        assert run["state"] == "completed", run["error"]
        head = _index(client, "/api/repo/forge/noarch/repodata.json").json()["packages.conda"]
        assert "in-house-1.0-0.conda" in head
        assert {spec.filename for spec in CHAIN if spec.subdir == "noarch"} <= set(head)
        causes = [r["cause"] for r in client.get("/api/channels/forge/revisions").json()["items"]]
        assert causes == ["run", "upload"]


def test_pruning_keeps_the_last_n_and_the_kept_revisions(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    packages = [
        build_package(PackageSpec("own", f"{n}.0", subdir="noarch"), tmp_path / "own")
        for n in range(1, 5)
    ]
    with headwater.client(token) as client:
        create_channel(client, "own")
        kept = client.patch("/api/channels/own", json={"revisions_kept": 2})
        assert kept.status_code == 200 and kept.json()["revisions_kept"] == 2, kept.text
        for package in packages:
            with package.open("rb") as handle:
                response = client.post(
                    "/api/channels/own/files", files={"file": (package.name, handle)}
                )
            assert response.status_code in (200, 201), response.text
        assert (
            client.put("/api/channels/own/revisions/1", json={"keep": "first"}).status_code == 200
        )
        # revision 1 held own-1.0 alone; later ones deleted nothing, so 1.0 stays in the head
        assert client.delete("/api/channels/own/files/noarch/own-1.0-0.conda").status_code == 204

        job = client.post("/api/jobs", json={"kind": "revision-prune"})
        if job.status_code == 409:  # the one the first start queued is still under way
            for earlier in client.get("/api/jobs", params={"kind": "revision-prune"}).json()[
                "items"
            ]:
                _wait_for_job(client, earlier["id"])
            job = client.post("/api/jobs", json={"kind": "revision-prune"})
        assert job.status_code == 202, job.text
        done = _wait_for_job(client, job.json()["id"])
        assert done["state"] == "completed", done

        numbers = [r["number"] for r in client.get("/api/channels/own/revisions").json()["items"]]
        assert numbers == [5, 4, 1]
        gone = client.get("/api/repo/own@2/noarch/repodata.json")
        assert gone.status_code == 404
        assert "revisions available: 1, 4, 5; kept: first (1)" in gone.json()["detail"]
        first = _index(client, "/api/repo/own@first/noarch/repodata.json").json()
        assert set(first["packages.conda"]) == {"own-1.0-0.conda"}
        file = client.get("/api/repo/own@1/noarch/own-1.0-0.conda")
        assert file.status_code == 200 and file.content == packages[0].read_bytes()
        fourth = _index(client, "/api/repo/own@4/noarch/repodata.json").json()
        assert len(fourth["packages.conda"]) == 4


def _wait_for_job(client: httpx.Client, run_id: int) -> dict:
    for _ in range(600):
        job = client.get(f"/api/jobs/{run_id}").json()
        if job["state"] in ("completed", "failed"):
            return job
        threading.Event().wait(0.1)
    raise AssertionError(f"job {run_id} did not end: {job}")


def test_a_curation_belongs_to_the_file_and_follows_it(
    headwater: Headwater, token: str, upstream
) -> None:
    """An administrator's curation survives the mirror running again and shows on the same
    bytes in another channel, mirrored after it was made."""
    with headwater.client(token) as client:
        import_zip(client, zip_of(RULE_ADVISORIES))
        create_channel(client, "first")
        mirror = create_mirror(client, "first", upstream.url, mirror_mode="active")
        assert run_mirror(client, "first", mirror["id"])["state"] == "completed"
        match = _matches(client, "CVE-2099-0101", "first")["hw-base-1.0-0.conda"]
        curate(client, match["id"], "mitigated", "we patch hw-base at build time")

        _add_upstream(upstream, NEWER)
        assert run_mirror(client, "first", mirror["id"])["state"] == "completed"
        again = _matches(client, "CVE-2099-0101", "first")["hw-base-1.0-0.conda"]
        assert (again["status"], again["note"]) == ("mitigated", "we patch hw-base at build time")

        create_channel(client, "second")
        other = create_mirror(client, "second", upstream.url, mirror_mode="active")
        assert run_mirror(client, "second", other["id"])["state"] == "completed"
        elsewhere = _matches(client, "CVE-2099-0101", "second")["hw-base-1.0-0.conda"]
        assert elsewhere["status"] == "mitigated"
        assert elsewhere["curated_by"] == "admin"
        # and it counts in another channel's CVE rules: only hw-lib 1.0's match is uncurated
        create_channel(client, "strict")
        strict = create_mirror(
            client,
            "strict",
            upstream.url,
            mirror_mode="active",
            filters={"exclude_non_curated_cve": True},
        )
        run = run_mirror(client, "strict", strict["id"])
        assert run["state"] == "completed", run["error"]
        assert run["excluded_reasons"] == {"cve": 1}
        assert "hw-base-1.0-0.conda" in files_of(client, "strict", "hw-base")


def _matches(client: httpx.Client, cve_id: str, channel: str) -> dict[str, dict]:
    response = client.get(f"/api/cves/{cve_id}/files")
    assert response.status_code == 200, response.text
    return {m["filename"]: m for m in response.json()["items"] if m["channel"] == channel}


OTHER = [
    PackageSpec("in-house-base", "1.0", subdir="noarch"),
    PackageSpec("in-house-tool", "1.0", depends=("in-house-base",)),
]


@pytest.mark.postgres
def test_two_mirrors_of_one_channel_finishing_together_lose_nothing_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    build_channel(tmp_path / "up" / "forge", CHAIN)
    build_channel(tmp_path / "up" / "own", OTHER)
    settings = make_settings(
        tmp_path / "var", database_url=postgres_url, embedded_worker=False, embedded_scheduler=False
    )
    with (
        serve_directory(tmp_path / "up") as upstream,
        run_headwater(settings) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        for path in ("forge", "own"):
            for subdir in ("linux-64", "noarch"):
                # both runs read for a second, then publish at about the same moment
                upstream.faults[f"/{path}/{subdir}/repodata.json.zst"] = Fault(delay=1.0)
        create_channel(client, "both")
        mirrors = [
            create_mirror(
                client,
                "both",
                f"{upstream.url}{path}/",
                mirror_name=path,
                filters={"subdirs": ["linux-64", "noarch"]},
            )
            for path in ("forge", "own")
        ]
        with workers(settings, 2):
            queued = [
                client.post(f"/api/channels/both/mirrors/{m['id']}/run").json() for m in mirrors
            ]
            finished = [wait_for_run(client, run["id"], timeout=120) for run in queued]
        assert [run["state"] for run in finished] == ["completed", "completed"], finished
        held = _files(_index(client, "/api/repo/both/linux-64/repodata.json").json()) | _files(
            _index(client, "/api/repo/both/noarch/repodata.json").json()
        )
        assert held == {spec.filename for spec in CHAIN + OTHER}
        revisions = client.get("/api/channels/both/revisions").json()["items"]
        assert sorted(r["run_id"] for r in revisions) == sorted(run["id"] for run in queued)
        assert revisions[0]["file_count"] == len(CHAIN) + len(OTHER)


def _large_channel(root: Path, records: int) -> None:
    """A passive mirror's upstream with `records` linux-64 records (no files: nothing fetches
    them) in a few hundred names."""
    packages = {}
    for index in range(records):
        name = f"pkg-{index % 400}"
        filename = f"{name}-1.{index}-0.conda"
        packages[filename] = {
            "name": name,
            "version": f"1.{index}",
            "build": "0",
            "build_number": 0,
            "depends": [],
            "license": "MIT",
            "sha256": hashlib.sha256(filename.encode()).hexdigest(),
            "md5": hashlib.md5(filename.encode()).hexdigest(),
            "size": 1000 + index,
            "subdir": "linux-64",
            "timestamp": 1700000000000 + index,
        }
    for subdir, content in (("linux-64", packages), ("noarch", {})):
        document = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": content}
        (root / subdir).mkdir(parents=True, exist_ok=True)
        (root / subdir / "repodata.json").write_bytes(json.dumps(document).encode())


def test_on_sqlite_the_database_stays_writable_while_a_large_revision_is_built(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    """Before revisions, a run held SQLite's write lock through writing, rendering and
    matching: an edit made meanwhile waited for the whole publish. Now it lands at once, while
    the run is still building its revision."""
    _large_channel(tmp_path / "large", 60_000)
    answered: list[tuple[float, int]] = []
    with serve_directory(tmp_path / "large") as upstream, headwater.client(token) as client:
        create_channel(client, "large")
        mirror = create_mirror(client, "large", upstream.url, filters={"subdirs": ["linux-64"]})
        run_id = client.post(f"/api/channels/large/mirrors/{mirror['id']}/run").json()["id"]
        done = threading.Event()

        def edit_meanwhile() -> None:
            with headwater.client(token) as editor:
                for attempt in range(10_000):
                    if done.is_set():
                        return
                    created = editor.post("/api/channels", json={"name": f"meanwhile-{attempt}"})
                    edited = editor.patch(
                        f"/api/channels/large/mirrors/{mirror['id']}",
                        json={"cron": f"{attempt % 60} 3 * * *"},
                    )
                    answered.append((time.time(), created.status_code + edited.status_code))
                    time.sleep(0.02)

        editor = threading.Thread(target=edit_meanwhile)
        editor.start()
        try:
            run = wait_for_run(client, run_id, timeout=300)
        finally:
            done.set()
            editor.join()
        assert run["state"] == "completed", run["error"]
        assert run["counters"]["added"] == 60_000
        assert all(status == 201 + 200 for _, status in answered), answered
        log = {line["message"].split(" ")[0]: line["at"] for line in run["log"]}
    assert "publishing" in log, "the run's log lost the line that starts its publishing step"
    publishing = dt.datetime.fromisoformat(log["publishing"]).timestamp()
    finished = dt.datetime.fromisoformat(run["finished_at"]).timestamp()
    during = [at for at, _ in answered if publishing < at < finished]
    assert during, (
        f"no edit was answered while the run built its revision ({finished - publishing:.2f} s; "
        f"{len(answered)} edits in all)"
    )


def test_revisions_keep_and_rollback_from_the_command_line(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    packages = [
        build_package(PackageSpec("cli-pkg", f"{n}.0", subdir="noarch"), tmp_path / "own")
        for n in (1, 2)
    ]
    with headwater.client(token) as client:
        create_channel(client, "cli")
    cli = signed_in(headwater, tmp_path / "home")
    for package in packages:
        cli("channel", "upload", "cli", str(package))
    listed = cli("channel", "revisions", "cli").stdout
    assert "2 (head)" in listed and "upload" in listed
    kept = cli("channel", "keep", "cli", "1", "first-release")
    assert "revision 1 of cli is kept as first-release" in kept.stdout
    rolled = cli("channel", "rollback", "cli", "1")
    assert "channel cli is at revision 3, with the contents of revision 1" in rolled.stdout
    history = json.loads(cli("channel", "revisions", "cli", "--json").stdout)["items"]
    assert [(r["number"], r["rolled_back_to"], r["keep"]) for r in history] == [
        (3, 1, None),
        (2, None, None),
        (1, None, "first-release"),
    ]
    refused = cli("channel", "rollback", "cli", "9", check=False)
    assert refused.returncode != 0 and "has no revision 9" in refused.stderr + refused.stdout


@pytest.mark.browser
def test_the_revisions_tab_shows_the_history_and_rolls_back(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    packages = [
        build_package(PackageSpec("ui-pkg", f"{n}.0", subdir="noarch"), tmp_path / "own")
        for n in (1, 2)
    ]
    with headwater.client(token) as client:
        create_channel(client, "ui")
        for package in packages:
            with package.open("rb") as handle:
                client.post("/api/channels/ui/files", files={"file": (package.name, handle)})
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, headwater.url, ADMIN, PASSWORD, then="/channels/ui/revisions")
        rows = page.locator("#revisions tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("head")
        page.locator("tr[data-revision='1']").get_by_role(
            "button", name="Roll back to this"
        ).click()
        expect(page.get_by_role("status")).to_contain_text(
            "Rolled back: revision 3 holds what revision 1 held."
        )
        expect(page.locator("tr[data-revision='3']")).to_contain_text("rollback to 1")
        page.get_by_label("keep revision 1 as").fill("ui-release")
        page.locator("tr[data-revision='1']").get_by_role("button", name="Keep").click()
        expect(page.get_by_role("status")).to_contain_text("Revision 1 is kept as ui-release.")
    with headwater.client(token) as client:
        now = _index(client, "/api/repo/ui/noarch/repodata.json").json()["packages.conda"]
        assert set(now) == {"ui-pkg-1.0-0.conda"}


def test_hostile_revision_inputs_get_a_clear_4xx(
    headwater: Headwater, token: str, upstream
) -> None:
    """What a caller may type where a revision, a kept name or a retention goes: never a 5xx,
    never an alias of a revision, and a channel nobody may read says nothing."""
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active")
        run_mirror(client, "forge", mirror["id"])
        for text in ("%C2%B2", "%EF%BC%91", "%D9%A1", "99999999999999999999", "0", "-1", "1@2"):
            response = client.get(f"/api/repo/forge@{text}/noarch/repodata.json")
            assert response.status_code == 404, (text, response.text)
            said = "does not exist" if "@" in text else "has no revision"  # forge@1 is a name
            assert said in response.json()["detail"], (text, response.text)
        file = client.get("/api/repo/forge@1/noarch/hw-base-1.0-0.conda")
        assert file.status_code == 200 and file.headers["X-Headwater-Revision"] == "1"
        for keep in ("a/b", "a@b", "x" * 65, "é", "", "7", 7):
            refused = client.put("/api/channels/forge/revisions/1", json={"keep": keep})
            assert refused.status_code == 422, (keep, refused.text)
        for kept in (True, "5", 2.0, 0, 100_001):
            refused = client.patch("/api/channels/forge", json={"revisions_kept": kept})
            assert refused.status_code == 422, (kept, refused.text)
        too_far = client.get("/api/channels/forge/revisions/99999999999")
        assert too_far.status_code == 422
    with httpx.Client(base_url=headwater.url) as anonymous:
        create = {"name": "hidden", "privacy": "private"}
        with headwater.client(token) as client:
            assert client.post("/api/channels", json=create).status_code == 201
        hidden = anonymous.get("/api/repo/hidden@1/noarch/repodata.json")
        nobody = anonymous.get("/api/repo/nobody-uses-this@1/noarch/repodata.json")
        assert hidden.status_code == nobody.status_code == 401
        assert hidden.json()["detail"].replace("hidden", "X") == nobody.json()["detail"].replace(
            "nobody-uses-this", "X"
        )
