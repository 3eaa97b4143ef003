"""The audit log: every administrative action is recorded with who did it and from where; an
administrator reads it paged and filtered, in the UI, or exports it as JSON lines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.functional.test_cves import ADVISORIES
from tests.support.advisories import zip_of
from tests.support.flows import create_channel, create_mirror, wait_for_run
from tests.support.python_packages import Dist, build_dist
from tests.support.server import ADMIN, Headwater

FORWARDED = {"X-Forwarded-For": "10.9.8.7"}  # as a trusted reverse proxy would say


def test_each_kind_of_action_is_recorded_with_its_actor(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    wheel = build_dist(tmp_path / "dist", Dist("scorepkg", "1.0"))
    headwater.add_user("carol", "carols password")
    with headwater.client(token) as admin:
        admin.headers.update(FORWARDED)
        assert admin.post("/api/organizations", json={"name": "acme"}).status_code == 201
        admin.put("/api/organizations/acme/members/carol", json={"role": "owner"})
        admin.post("/api/organizations/acme/groups", json={"name": "devs", "sso_group": "dev"})
        admin.put("/api/organizations/acme/groups/devs/members/carol")
        admin.patch("/api/users/carol", json={"disabled": True})
        admin.patch("/api/users/carol", json={"disabled": False})
        admin.patch("/api/users/carol", json={"is_admin": True})
        admin.patch("/api/users/carol", json={"is_admin": False})
        admin.post("/api/cves/import", files={"file": ("a.zip", zip_of(ADVISORIES))})
    with headwater.client(headwater.login("carol", "carols password")) as carol:
        create_channel(carol, "tools", organization="acme")
        carol.patch("/api/channels/tools", json={"description": "ours", "privacy": "private"})
        carol.patch("/api/channels/tools", json={"filters": {"subdirs": ["noarch"]}})
        carol.put("/api/channels/tools/roles/groups/acme/devs", json={"role": "read"})
        carol.delete("/api/channels/tools/roles/groups/acme/devs")
        with wheel.path.open("rb") as stream:
            carol.post("/api/channels/tools/files", files={"file": (wheel.path.name, stream)})
        mirror = create_mirror(carol, "tools", "http://127.0.0.1:9/")
        carol.patch(f"/api/channels/tools/mirrors/{mirror['id']}", json={"cron": "0 3 * * *"})
        carol.patch(
            f"/api/channels/tools/mirrors/{mirror['id']}", json={"filters": {"subdirs": ["noarch"]}}
        )
        run = carol.post(f"/api/channels/tools/mirrors/{mirror['id']}/run").json()
        carol.post(f"/api/channels/tools/mirrors/{mirror['id']}/stop")
        wait_for_run(carol, run["id"])  # a running run ends at its next step; only then delete
        match = carol.get("/api/cves/CVE-2099-0001/files").json()["items"][0]
        carol.put(f"/api/cves/matches/{match['id']}", json={"status": "disputed", "note": "n/a"})
        made = carol.post(
            "/api/account/tokens", json={"name": "ci", "scopes": ["artifact:view"]}
        ).json()
        carol.delete(f"/api/account/tokens/{made['id']}")
        carol.delete(f"/api/channels/tools/files/{match['subdir']}/{match['filename']}")
        assert carol.delete(f"/api/channels/tools/mirrors/{mirror['id']}").status_code == 204
        assert carol.delete("/api/channels/tools").status_code == 204

    with headwater.client(token) as admin:
        events = admin.get("/api/audit", params={"limit": 1000}).json()["items"]
    done = {(e["actor"], e["action"], e["target"]) for e in events}
    for actor, action, target in [
        (ADMIN, "organization.create", "acme"),
        (ADMIN, "organization.member", "acme"),
        (ADMIN, "group.create", "acme/devs"),
        (ADMIN, "group.member", "acme/devs"),
        (ADMIN, "user.create", "carol"),
        (ADMIN, "user.disable", "carol"),
        (ADMIN, "user.enable", "carol"),
        (ADMIN, "user.admin", "carol"),
        (ADMIN, "user.unadmin", "carol"),
        (ADMIN, "cve.import", "upload a.zip"),
        ("carol", "channel.create", "tools"),
        ("carol", "channel.update", "tools"),
        ("carol", "channel.filters", "tools"),
        ("carol", "channel.role", "tools"),
        ("carol", "channel.role_remove", "tools"),
        ("carol", "file.upload", "tools"),
        ("carol", "mirror.create", "tools/upstream"),
        ("carol", "mirror.update", "tools/upstream"),
        ("carol", "mirror.filters", "tools/upstream"),
        ("carol", "mirror.run", "tools/upstream"),
        ("carol", "mirror.stop", "tools/upstream"),
        ("carol", "cve.curate", "tools"),
        ("carol", "token.create", "carol"),
        ("carol", "token.revoke", "carol"),
        ("carol", "file.delete", "tools"),
        ("carol", "mirror.delete", "tools/upstream"),
        ("carol", "channel.delete", "tools"),
    ]:
        assert (actor, action, target) in done, (actor, action, target)
    by_action = {e["action"]: e for e in events}
    assert by_action["organization.create"]["address"] == "10.9.8.7"
    assert by_action["channel.update"]["details"] == {"description": "ours", "privacy": "private"}
    assert by_action["cve.curate"]["details"]["status"] == "disputed"
    assert by_action["token.create"]["details"]["scopes"] == ["artifact:view"]
    assert "token" not in json.dumps(by_action["token.create"]["details"]).replace(
        '"token_id"', ""
    ).replace("token.", "")  # the token itself is never recorded
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)


def test_the_log_is_filtered_paged_exported_and_shown(headwater: Headwater, token: str) -> None:
    with headwater.client(token) as admin:
        for name in ("one", "two", "three"):
            create_channel(admin, name)
            admin.patch(f"/api/channels/{name}", json={"description": f"about {name}"})
        family = admin.get("/api/audit", params={"action": "channel"}).json()
        assert family["total_count"] == 6
        updates = admin.get("/api/audit", params={"action": "channel.update"}).json()
        assert [e["target"] for e in updates["items"]] == ["three", "two", "one"]
        page = admin.get("/api/audit", params={"action": "channel", "limit": 2, "offset": 2})
        assert [(e["target"], e["action"]) for e in page.json()["items"]] == [
            ("two", "channel.update"),
            ("two", "channel.create"),
        ]
        assert admin.get("/api/audit", params={"target": "two"}).json()["total_count"] == 2
        assert admin.get("/api/audit", params={"actor": "nobody"}).json()["total_count"] == 0
        tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
        assert admin.get("/api/audit", params={"since": tomorrow}).json()["total_count"] == 0
        assert admin.get("/api/audit", params={"until": tomorrow}).json()["total_count"] >= 6

        exported = admin.get("/api/audit/export", params={"action": "channel"})
        assert exported.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in exported.text.splitlines()]
        assert [line["target"] for line in lines] == ["three", "three", "two", "two", "one", "one"]
        assert {"id", "at", "actor", "address", "action", "target", "details"} <= set(lines[0])

        page = admin.get("/admin/audit", params={"action": "channel.update", "target": "two"})
        assert page.status_code == 200
        assert page.text.count('data-action="channel.update"') == 1
        assert "/api/audit/export?action=channel.update&amp;target=two" in page.text
