"""Curating many CVE matches at once through the REST API: by the matches named, by a package
and a version range, by a subdir, by a whole channel; who may; what is refused and why; the
one audit event; and the scores and counts that follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.functional.test_cves import ADVISORIES, files_of
from tests.support.advisories import import_zip, zip_of
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.many_records import write_upstream
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import serve_directory

CRITICAL, MEDIUM = "CVE-2099-0001", "CVE-2099-0002"  # 9.8 and 5.0, both of every scorepkg
LINUX = [("scorepkg", f"{major}.0") for major in range(55, 75)]  # 20 files, 10 in >=60,<70
NOARCH = [("scorepkg", "61.1"), ("scorepkg", "80.0"), ("otherpkg", "1.0")]


def matches(client: httpx.Client, cve_id: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/cves/{cve_id}/files")
    assert response.status_code == 200, response.text
    return {f"{m['channel']}/{m['subdir']}/{m['filename']}": m for m in response.json()["items"]}


def curate(client: httpx.Client, cve_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/cves/{cve_id}/curate", json=body)


def statuses(client: httpx.Client, cve_id: str, channel: str) -> dict[str, str]:
    return {
        key.split("/", 1)[1]: m["status"]
        for key, m in matches(client, cve_id).items()
        if m["channel"] == channel
    }


@pytest.fixture
def channels(headwater: Headwater, token: str, tmp_path: Path) -> str:
    return build_channels(headwater, token, tmp_path)


def build_channels(headwater: Headwater, token: str, tmp_path: Path) -> str:
    """Two private channels mirroring one upstream of 23 records (the same bytes in both),
    matched against two CVEs; the token of a user who manages both (not an administrator,
    whose curations follow the bytes into every channel)."""
    write_upstream(tmp_path / "upstream", {"linux-64": LINUX, "noarch": NOARCH})
    headwater.add_user("triager", "triager's password")
    with serve_directory(tmp_path / "upstream") as upstream, headwater.client(token) as client:
        import_zip(client, zip_of(ADVISORIES))
        for name in ("bulk", "other"):
            create_channel(client, name, privacy="private")
            mirror = create_mirror(client, name, upstream.url, mirror_mode="passive")
            run = run_mirror(client, name, mirror["id"])
            assert run["state"] == "completed", run["error"]
            granted = client.put(
                f"/api/channels/{name}/roles/users/triager", json={"role": "manage"}
            )
            assert granted.status_code == 200, granted.text
    return headwater.login("triager", "triager's password")


def test_a_package_version_range_a_subdir_and_a_channel_in_one_action_each(
    headwater: Headwater, token: str, channels: str
) -> None:
    scopes_in_one_action_each(headwater, token, channels)


@pytest.mark.postgres
def test_on_postgresql_too(tmp_path: Path, postgres_url: str) -> None:
    settings = make_settings(tmp_path / "var", database_url=postgres_url)
    with run_headwater(settings) as headwater:
        token = headwater.login()
        scopes_in_one_action_each(headwater, token, build_channels(headwater, token, tmp_path))


def scopes_in_one_action_each(headwater: Headwater, token: str, triager: str) -> None:
    with headwater.client(triager) as client:
        assert len(statuses(client, CRITICAL, "bulk")) == 22  # otherpkg is not affected
        ranged = curate(
            client,
            CRITICAL,
            status="cleared",
            note="not reachable in 6x",
            channel="bulk",
            package="scorepkg",
            versions=">=60,<70",
        )
        assert ranged.status_code == 200, ranged.text
        assert ranged.json()["curated"] == 11  # 60.0 … 69.0 in linux-64, 61.1 in noarch
        assert (ranged.json()["channels"], ranged.json()["carried"]) == (["bulk"], 0)
        after = statuses(client, CRITICAL, "bulk")
        cleared = {key for key, status in after.items() if status == "cleared"}
        assert cleared == {f"linux-64/scorepkg-{m}.0-0.conda" for m in range(60, 70)} | {
            "noarch/scorepkg-61.1-0.conda"
        }
        assert set(statuses(client, CRITICAL, "other").values()) == {"reported"}
        # Scores follow: a cleared 9.8 leaves the reported 5.0 of the other CVE.
        files = files_of(client, "bulk", "scorepkg")
        assert files["scorepkg-65.0-0.conda"]["cve_score"] == 5.0
        assert files["scorepkg-70.0-0.conda"]["cve_score"] == 9.8
        listed = client.get("/api/channels/bulk/cves").json()
        by_id = {c["id"]: c for c in listed["items"]}
        assert by_id[CRITICAL]["statuses"] == {"cleared": 11, "reported": 11}
        assert listed["total_count"] == 2 and listed["unresolved_count"] == 2

        # A subdir.
        subdir = curate(client, CRITICAL, status="mitigated", channel="bulk", subdir="noarch")
        assert subdir.json()["curated"] == 2
        assert statuses(client, CRITICAL, "bulk")["noarch/scorepkg-80.0-0.conda"] == "mitigated"

        # The whole channel, for both CVEs: the channel has nothing left to triage.
        for cve_id in (CRITICAL, MEDIUM):
            whole = curate(client, cve_id, status="disputed", note="vendor says no", channel="bulk")
            assert whole.json()["curated"] == 22
        assert set(statuses(client, CRITICAL, "bulk").values()) == {"disputed"}
        listed = client.get("/api/channels/bulk/cves").json()
        assert (listed["total_count"], listed["unresolved_count"]) == (2, 0)
        files = files_of(client, "bulk", "scorepkg")
        assert files["scorepkg-70.0-0.conda"]["cve_score"] == 9.8  # all curated: the highest
        assert client.get("/api/channels/other/cves").json()["unresolved_count"] == 2

        # Named matches, across channels: each is curated once.
        named = [
            m["id"]
            for key, m in matches(client, MEDIUM).items()
            if key.startswith("other/linux-64/scorepkg-5")
        ]
        picked = curate(client, MEDIUM, status="active", match_ids=named + named[:1])
        assert picked.status_code == 200, picked.text
        assert picked.json()["curated"] == len(named) == 5
        active = {k for k, s in statuses(client, MEDIUM, "other").items() if s == "active"}
        assert active == {f"linux-64/scorepkg-{m}.0-0.conda" for m in range(55, 60)}

    with headwater.client(token) as admin:
        # One audit event per action, naming the scope and the count.
        events = admin.get("/api/audit", params={"action": "cve.curate_bulk"}).json()
        assert events["total_count"] == 5
        first = events["items"][-1]
        assert first["target"] == "bulk"
        assert first["details"]["count"] == 11
        assert first["details"]["scope"] == {
            "cves": [CRITICAL],
            "package": "scorepkg",
            "versions": ">=60,<70",
        }
        assert first["details"]["status"] == "cleared"
        assert events["items"][0]["details"]["scope"] == {"cves": [MEDIUM], "matches": 6}
        assert {e["actor"] for e in events["items"]} == {"triager"}

        # An administrator's curation follows the bytes into every channel (docs/cves.md).
        done = curate(admin, MEDIUM, status="mitigated", channel="bulk", subdir="noarch")
        assert (done.json()["curated"], done.json()["carried"]) == (2, 2)
        assert statuses(admin, MEDIUM, "other")["noarch/scorepkg-80.0-0.conda"] == "mitigated"


def test_only_channels_the_caller_manages_change(
    headwater: Headwater, token: str, channels: str
) -> None:
    headwater.add_user("reader", "reader's password")
    headwater.add_user("keeper", "keeper's password")
    with headwater.client(token) as admin:
        admin.put("/api/channels/bulk/roles/users/reader", json={"role": "read"})
        admin.put("/api/channels/other/roles/users/keeper", json={"role": "manage"})
        admin.put("/api/channels/bulk/roles/users/keeper", json={"role": "read"})
        in_bulk = [m["id"] for k, m in matches(admin, CRITICAL).items() if k.startswith("bulk/")]
    with headwater.client(headwater.login("reader", "reader's password")) as reader:
        refused = curate(reader, CRITICAL, status="cleared", channel="bulk")
        assert refused.status_code == 403, refused.text
        assert "curate" in refused.json()["detail"]
        refused = curate(reader, CRITICAL, status="cleared", match_ids=in_bulk)
        assert refused.status_code == 403 and "manage" in refused.json()["detail"]
        hidden = curate(reader, CRITICAL, status="cleared", channel="other")
        assert hidden.status_code == 404  # a channel the reader may not see at all
    with headwater.client(headwater.login("keeper", "keeper's password")) as keeper:
        # Everything of the package, in the channels the keeper manages: `other` only.
        done = curate(keeper, CRITICAL, status="cleared", package="scorepkg")
        assert done.status_code == 200, done.text
        assert (done.json()["curated"], done.json()["channels"]) == (22, ["other"])
        none = curate(keeper, CRITICAL, status="cleared", match_ids=in_bulk)
        assert none.status_code == 404
        assert "in a channel you may curate" in none.json()["detail"]
        assert curate(keeper, CRITICAL, status="cleared", channel="bulk").status_code == 403
    with headwater.client(token) as admin:
        assert set(statuses(admin, CRITICAL, "bulk").values()) == {"reported"}
        assert set(statuses(admin, CRITICAL, "other").values()) == {"cleared"}


BAD_BODIES = [
    ({"status": "fine", "channel": "bulk"}, "status"),
    ({"status": "cleared", "channel": "bulk", "package": "scorepkg", "versions": "@@"}, "@@"),
    ({"status": "cleared", "channel": "bulk", "versions": ">=1"}, "name the package too"),
    ({"status": "cleared", "channel": "bulk", "match_ids": [1]}, "not both"),
    ({"status": "cleared"}, "say which matches"),
    ({"status": "cleared", "match_ids": []}, "match_ids"),
    ({"status": "cleared", "match_ids": list(range(1, 1002))}, "match_ids"),
    ({"status": "cleared", "match_ids": [0]}, "match_ids"),
    ({"status": "cleared", "match_ids": [True]}, "not true or false"),
    ({"status": "cleared", "channel": "bulk", "note": "x" * 10_001}, "note"),
    ({"status": "cleared", "channel": "bulk", "note": "bell \x07"}, "note"),
    ({"status": "cleared", "channel": "bulk", "scope": "all"}, "unknown field 'scope'"),
    ({"status": "cleared", "channel": "bulk", "versions": "v" * 201}, "versions"),
    ({"status": "cleared", "channel": "bulk", "package": "score\x07pkg"}, "control character"),
    ({"status": "cleared", "channel": "b\x1f", "subdir": "noarch"}, "control character"),
]


def test_bad_input_is_refused_with_what_was_wrong(
    headwater: Headwater, token: str, channels: str
) -> None:
    with headwater.client(token) as client:
        for body, says in BAD_BODIES:
            refused = curate(client, CRITICAL, **body)
            assert refused.status_code == 422, (body, refused.text)
            assert says in refused.json()["detail"], (body, refused.text)
        assert set(statuses(client, CRITICAL, "bulk").values()) == {"reported"}


def test_unknown_channels_and_cves_are_not_found(
    headwater: Headwater, token: str, channels: str
) -> None:
    with headwater.client(token) as client:
        missing = curate(client, CRITICAL, status="cleared", channel="nowhere")
        assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]
        missing = curate(client, "CVE-1999-0000", status="cleared", channel="bulk")
        assert missing.status_code == 404 and "CVE-1999-0000" in missing.json()["detail"]
        nothing = curate(client, CRITICAL, status="cleared", channel="bulk", package="nopkg")
        assert nothing.status_code == 200 and nothing.json()["curated"] == 0
        sent = client.post(f"/api/cves/{CRITICAL}/curate", content=b"[1, 2", headers={
            "Content-Type": "application/json"})  # fmt: skip
        assert sent.status_code == 422


def test_the_cve_pages_page_and_sort(headwater: Headwater, token: str, channels: str) -> None:
    with headwater.client(channels) as client:
        for path in (
            "/cves?sort=-id",
            f"/cves/{CRITICAL}?sort=-size&offset=20",
            "/channels/bulk/cves?sort=published",
        ):
            shown = client.get(path)
            assert shown.status_code == 200, (path, shown.text[:300])
        page = client.get(f"/cves/{CRITICAL}?sort=status").text
        assert page.index('id="cve-affected"') < page.index('id="cve-files"')
        assert "22" in page and 'name="match_id"' in page
        refused = client.get(f"/cves/{CRITICAL}?sort=nonsense")
        assert refused.status_code == 422 and "sort by one of" in refused.text
        assert client.get("/cves?offset=-1").status_code == 422


def test_the_api_pages_a_cves_files(headwater: Headwater, token: str, channels: str) -> None:
    with headwater.client(channels) as client:
        every = client.get(f"/api/cves/{CRITICAL}/files", params={"limit": 1000}).json()
        assert every["total_count"] == len(every["items"]) == 44  # 22 in each of two channels
        pages = [
            client.get(f"/api/cves/{CRITICAL}/files", params={"offset": start, "limit": 20}).json()
            for start in (0, 20, 40)
        ]
        assert [len(page["items"]) for page in pages] == [20, 20, 4]
        assert {page["total_count"] for page in pages} == {44}
        paged = [match["id"] for page in pages for match in page["items"]]
        assert paged == [match["id"] for match in every["items"]], "pages neither overlap nor skip"
        too_many = client.get(f"/api/cves/{CRITICAL}/files", params={"limit": 1001})
        assert too_many.status_code == 422
