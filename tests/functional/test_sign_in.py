"""Signing in cannot be flooded or probed, a password change or a disabled account ends every
token at once, and no token is ever written to a log line."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.cli import signed_in
from tests.support.conda_packages import PackageSpec, build_package
from tests.support.flows import create_channel, sign_in_page
from tests.support.server import ADMIN, PASSWORD, Headwater, run_headwater, serve_process


def attempt(client: httpx.Client, username: str, password: str, address: str) -> httpx.Response:
    """A sign-in from `address` (the test server trusts X-Forwarded-For from loopback, as a
    server behind a reverse proxy does)."""
    return client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


@pytest.fixture
def headwater(tmp_path: Path) -> Iterator[Headwater]:
    with run_headwater(make_settings(tmp_path / "var")) as server:
        server.add_user("bob", "bobs password")
        yield server


def test_three_hundred_wrong_passwords_then_the_right_one_is_refused(
    headwater: Headwater,
) -> None:
    with headwater.client() as client:
        answers = [attempt(client, "bob", f"guess {n}", "10.1.0.7") for n in range(300)]
        right = attempt(client, "bob", "bobs password", "10.1.0.7")
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert {a.status_code for a in answers[10:]} == {429}
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0
    assert "too many sign-in attempts" in right.json()["detail"]


def test_failures_count_per_account_whatever_the_address(headwater: Headwater) -> None:
    with headwater.client() as client:
        for n in range(10):
            assert attempt(client, "bob", "wrong", f"10.2.0.{n}").status_code == 401
        assert attempt(client, "bob", "bobs password", "10.2.0.99").status_code == 429
        # Another account is not held back by bob's, nor is the administrator.
        assert attempt(client, ADMIN, PASSWORD, "10.2.0.98").status_code == 200


def test_attempts_count_per_address_whatever_the_account(headwater: Headwater) -> None:
    with headwater.client() as client:
        for n in range(60):
            assert attempt(client, f"user{n}", "x", "10.3.0.1").status_code == 401
        assert attempt(client, ADMIN, PASSWORD, "10.3.0.1").status_code == 429
        assert attempt(client, ADMIN, PASSWORD, "10.3.0.2").status_code == 200


def test_the_sign_in_page_is_limited_too(headwater: Headwater) -> None:
    with headwater.client() as browser:
        for _ in range(10):
            response = sign_in_page(browser, "bob", "no")
            assert response.status_code == 401
        response = sign_in_page(browser, "bob", "bobs password")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "too many sign-in attempts" in response.text


def test_a_password_change_revokes_every_token(headwater: Headwater, tmp_path: Path) -> None:
    package = build_package(PackageSpec("private-tool", "1.0", subdir="noarch"), tmp_path)
    with headwater.client(headwater.login()) as admin:
        create_channel(admin, "vault", privacy="private")
        with package.open("rb") as stream:
            admin.post("/api/channels/vault/files", files={"file": (package.name, stream)})
        admin.patch("/api/channels/vault", json={"privacy": "authenticated"})
    first, second = headwater.login("bob", "bobs password"), headwater.login("bob", "bobs password")
    repodata = "/api/repo/vault/noarch/repodata.json"
    with headwater.client() as client:
        assert client.get(repodata, headers={"X-Auth": second}).status_code == 200
        changed = client.post(
            "/api/auth/password",
            json={"current_password": "bobs password", "new_password": "a new one"},
            headers={"X-Auth": first},
        )
        assert changed.status_code == 200, changed.text
        fresh = changed.json()["token"]
        for old in (first, second):
            assert client.get("/api/account", headers={"X-Auth": old}).status_code == 401
            assert client.get(repodata, headers={"X-Auth": old}).status_code == 401
            assert client.get(f"/api/repo/t/{old}/vault/noarch/repodata.json").status_code == 401
            pip = base64.b64encode(f"{old}:x-auth-token".encode()).decode()
            assert (
                client.get(repodata, headers={"Authorization": f"Basic {pip}"}).status_code == 401
            )
        assert client.get(repodata, headers={"X-Auth": fresh}).status_code == 200
        wrong = client.post(
            "/api/auth/password",
            json={"current_password": "not it", "new_password": "x"},
            headers={"X-Auth": fresh},
        )
        assert wrong.status_code == 401


def test_a_password_set_by_the_cli_revokes_every_token(
    headwater: Headwater, tmp_path: Path
) -> None:
    token = headwater.login("bob", "bobs password")
    cli = signed_in(headwater, tmp_path / "home")
    cli("user", "set-password", "bob", "--password", "other")
    with headwater.client(token) as client:
        assert client.get("/api/account").status_code == 401
    assert headwater.login("bob", "other")


def test_an_administrator_disables_a_user(headwater: Headwater) -> None:
    token = headwater.login("bob", "bobs password")
    with (
        headwater.client() as browser,
        headwater.client(headwater.login()) as admin,
        headwater.client(token) as client,
    ):
        signed_in = sign_in_page(browser, "bob", "bobs password")
        assert signed_in.status_code == 303
        assert client.patch("/api/users/bob", json={"disabled": True}).status_code == 403
        response = admin.patch("/api/users/bob", json={"disabled": True})
        assert response.json()["disabled"] is True and response.json()["is_admin"] is False
        assert client.get("/api/account").status_code == 401
        assert browser.get("/account").status_code == 303  # the UI session ended too
        refused = attempt(admin, "bob", "bobs password", "10.4.0.1")
        assert refused.status_code == 401
        assert "this account is disabled" in refused.json()["detail"]
        assert attempt(admin, "bob", "not the password", "10.4.0.1").json()["detail"] == (
            "wrong username or password"
        )
        assert admin.patch(f"/api/users/{ADMIN}", json={"disabled": True}).status_code == 409
        admin.patch("/api/users/bob", json={"disabled": False})
        assert attempt(admin, "bob", "bobs password", "10.4.0.2").status_code == 200


def test_no_token_reaches_a_log_line(tmp_path: Path) -> None:
    """`headwater serve` with its access log, asked with tokens in every URL shape."""
    with serve_process(tmp_path / "var", embedded_scheduler="false") as served:
        token = served.login()
        with httpx.Client(base_url=served.url) as client:
            client.post("/api/channels", json={"name": "forge"}, headers={"X-Auth": token})
            for path in (
                f"/api/repo/t/{token}/forge/noarch/repodata.json",
                f"/api/repo//t/{token}/forge/noarch/repodata.json",
                f"/api/repo/t/{token}",
                f"/api/repo/t/{token}/",
                f"/api/channels?token={token}",
                f"/api/channels?{token}",
                f"/api/channels/forge?auth={token}&offset=1",
                f"/api/repo/forge/simple/?x={token}",
            ):
                client.get(path)
        served.process.terminate()
        served.process.wait(timeout=30)
        log = served.log.read_text()
    assert "GET /api/repo/t/***/forge/noarch/repodata.json" in log, log[-3000:]
    assert token not in log
