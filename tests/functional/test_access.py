"""Who may see and change which channel, through the REST API, the repository URLs and the UI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.conda_packages import PackageSpec, build_package
from tests.support.flows import create_channel
from tests.support.server import Headwater


@pytest.fixture
def bob(headwater: Headwater) -> str:
    """A signed-in user who is not an administrator."""
    headwater.add_user("bob", "bobs password")
    return headwater.login("bob", "bobs password")


@pytest.fixture
def channels(headwater: Headwater, token: str, tmp_path: Path) -> None:
    package = build_package(PackageSpec("secret-tool", "1.0"), tmp_path)
    with headwater.client(token) as admin:
        for name, privacy in (
            ("open", "public"),
            ("members", "authenticated"),
            ("internal", "private"),
        ):
            create_channel(admin, name, privacy=privacy)
            with package.open("rb") as stream:
                response = admin.post(
                    f"/api/channels/{name}/files", files={"file": (package.name, stream)}
                )
                assert response.status_code == 201


def test_what_each_caller_may_read(
    headwater: Headwater, token: str, bob: str, channels: None
) -> None:
    file_path = "linux-64/secret-tool-1.0-0.conda"
    expectations = {
        None: {"open": 200, "members": 401, "internal": 401},
        bob: {"open": 200, "members": 200, "internal": 404},
        token: {"open": 200, "members": 200, "internal": 200},
    }
    for caller, statuses in expectations.items():
        with headwater.client(caller) as client:
            listed = {c["name"] for c in client.get("/api/channels").json()["items"]}
            assert listed == {name for name, status in statuses.items() if status == 200}
            for name, status in statuses.items():
                for path in (
                    f"/api/channels/{name}",
                    f"/api/channels/{name}/packages",
                    f"/api/channels/{name}/packages/secret-tool/files",
                    f"/api/repo/{name}/linux-64/repodata.json",
                    f"/api/repo/{name}/{file_path}",
                ):
                    assert client.get(path).status_code == status, (caller, path)
    with headwater.client(bob) as client:
        assert (
            client.get("/api/channels/internal").json()["detail"]
            == "channel 'internal' does not exist"
        )


def test_only_owners_and_administrators_change_a_channel(
    headwater: Headwater, token: str, bob: str, channels: None, tmp_path: Path
) -> None:
    with headwater.client(bob) as client:
        for method, path, body in (
            ("PUT", "/api/channels/open", {"description": "mine now"}),
            ("DELETE", "/api/channels/open", None),
            ("DELETE", "/api/channels/open/files/linux-64/secret-tool-1.0-0.conda", None),
            ("GET", "/api/channels/open/mirrors", None),
            ("GET", "/api/channels/open/runs", None),
            (
                "POST",
                "/api/channels/open/mirrors",
                {"mirror_name": "m", "source_root": "http://127.0.0.1:1/"},
            ),
        ):
            response = client.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert "(channel 'open'): it needs the " in response.json()["detail"]
        package = build_package(PackageSpec("bobs", "1.0"), tmp_path)
        with package.open("rb") as stream:
            assert (
                client.post(
                    "/api/channels/open/files", files={"file": (package.name, stream)}
                ).status_code
                == 403
            )
        # Bob owns what he creates.
        create_channel(client, "bobs")
        assert client.put("/api/channels/bobs", json={"description": "ok"}).status_code == 200
        assert client.get("/api/mirrors").json()["total_count"] == 0
    with headwater.client(token) as admin:
        assert admin.get("/api/channels/open").json()["description"] == ""
        assert admin.put("/api/channels/bobs", json={"privacy": "private"}).status_code == 200


def test_a_group_of_another_organization_cannot_be_granted_nor_told_apart(
    headwater: Headwater, token: str, bob: str
) -> None:
    """alice is in no organization: acme's groups do not exist for her, exactly as a group
    nobody made. bob, a member of acme, may give acme's groups a role on his own channel."""
    headwater.add_user("alice", "alices password")
    alice = headwater.login("alice", "alices password")
    with headwater.client(token) as admin:
        assert admin.post("/api/organizations", json={"name": "acme"}).status_code == 201
        assert admin.post("/api/organizations/acme/groups", json={"name": "devs"}).is_success
        assert admin.put("/api/organizations/acme/members/bob", json={"role": "member"}).is_success
    with headwater.client(alice) as client:
        create_channel(client, "alices")
        answers = [
            client.put(f"/api/channels/alices/roles/groups/{path}", json={"role": "read"})
            for path in ("acme/devs", "acme/nobody", "nowhere/nobody")
        ]
        assert [answer.status_code for answer in answers] == [404, 404, 404]
        details = [answer.json()["detail"].split("'")[2] for answer in answers]
        assert len(set(details)) == 1, details  # the same words but for the name
        assert client.get("/api/channels/alices/roles").json()["items"] == []
    with headwater.client(bob) as client:
        create_channel(client, "bobs")
        granted = client.put("/api/channels/bobs/roles/groups/acme/devs", json={"role": "read"})
        assert granted.status_code == 200, granted.text
    # A role an administrator gave a group of another organization on alice's channel is
    # hers to take back: she sees every role on what she manages.
    with headwater.client(token) as admin:
        given = admin.put("/api/channels/alices/roles/groups/acme/devs", json={"role": "read"})
        assert given.status_code == 200
    with headwater.client(alice) as client:
        assert client.delete("/api/channels/alices/roles/groups/acme/devs").status_code == 204
        # Taking back a role nobody holds says nothing of whether the group exists.
        answers = [
            client.delete(f"/api/channels/alices/roles/groups/{path}")
            for path in ("acme/devs", "acme/nobody")
        ]
        assert [answer.status_code for answer in answers] == [404, 404]
        assert [answer.json()["detail"].split(" has ")[1] for answer in answers] == [
            "no role on channel 'alices'"
        ] * 2
