"""Personal tokens with the real clients: rattler with the token in the conda path, pip and uv
with basic auth, twine uploading; and what a token limited to one channel, an expired one and
a revoked one get."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from rattler.exceptions import GatewayError

from tests.functional.test_conda_client import solve_and_install
from tests.support.conda_packages import CHAIN, build_package
from tests.support.flows import create_channel
from tests.support.pypi_clients import installed, pip_install, twine_upload, uv_install
from tests.support.python_packages import Dist, build_dist
from tests.support.server import Headwater

BOB = "bob"
BOB_PASSWORD = "bobs own password"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
WHEELS = [Dist("demo-app", "1.0", requires=("demo-lib>=1.0",)), Dist("demo-lib", "1.0")]


@pytest.fixture
def bob(headwater: Headwater) -> str:
    """A user who is not an administrator, signed in: his session."""
    headwater.add_user(BOB, BOB_PASSWORD)
    return headwater.login(BOB, BOB_PASSWORD)


def upload(client: httpx.Client, channel: str, path: Path) -> None:
    with path.open("rb") as stream:
        response = client.post(
            f"/api/channels/{channel}/files", files={"file": (path.name, stream)}
        )
    assert response.status_code == 201, response.text


def private_channel(
    headwater: Headwater, admin: str, name: str, files: list[Path], **roles: str
) -> None:
    """A private channel holding `files`, with a role on it for each user named."""
    with headwater.client(admin) as client:
        create_channel(client, name, privacy="private")
        for path in files:
            upload(client, name, path)
        for username, role in roles.items():
            granted = client.put(
                f"/api/channels/{name}/roles/users/{username}", json={"role": role}
            )
            assert granted.status_code == 200, granted.text


def make_token(headwater: Headwater, session: str, name: str, **fields: Any) -> dict[str, Any]:
    """A personal token made with the REST API; its answer carries the token, this once."""
    with headwater.client(session) as client:
        response = client.post("/api/account/tokens", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def revoke(headwater: Headwater, session: str, token_id: int) -> None:
    with headwater.client(session) as client:
        assert client.delete(f"/api/account/tokens/{token_id}").status_code == 204
        assert token_id not in {t["id"] for t in client.get("/api/account/tokens").json()["items"]}


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def pip_index(headwater: Headwater, channel: str, token: str | None = None) -> str:
    """The simple index URL as pip takes it: the token as user, x-auth-token as password."""
    host = headwater.url.removeprefix("http://")
    credentials = f"{token}:x-auth-token@" if token else ""
    return f"http://{credentials}{host}/api/repo/{channel}/simple/"


def built_wheels(directory: Path) -> list[Path]:
    return [build_dist(directory, dist).path for dist in WHEELS]


def pip_refused(index_url: str, target: Path) -> int:
    """Run pip where it must fail; the HTTP status its project page request got (from pip's
    debug log, which is the only place pip names it)."""
    result = pip_install(index_url, target, "-vv", "demo-app")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "No matching distribution found for demo-app" in output
    assert installed(target) == {}
    found = re.search(r"Could not fetch URL \S+/simple/demo-app/: (\d{3}) Client Error", output)
    assert found, output
    return int(found.group(1))


def test_rattler_installs_from_a_private_channel_with_the_token_in_its_path(
    headwater: Headwater, token: str, bob: str, tmp_path: Path
) -> None:
    packages = [build_package(spec, tmp_path / "pkgs" / spec.subdir) for spec in CHAIN[:4]]
    private_channel(headwater, token, "vault", packages, bob="read")
    made = make_token(headwater, bob, "conda on ci", scopes=["artifact:view"])

    with_token = f"{headwater.url}/api/repo/t/{made['token']}/vault"
    assert solve_and_install(with_token, "hw-app", tmp_path / "env", tmp_path / "cache") == [
        "hw-app-1.0",
        "hw-base-1.0",
        "hw-lib-2.0",
    ]
    assert (tmp_path / "env" / "share" / "hw-app" / "1.0.txt").read_text() == "hw-app 1.0 0\n"

    # Without a token rattler is challenged (401), not told the channel is missing or broken.
    anonymous = f"{headwater.url}/api/repo/vault"
    with pytest.raises(GatewayError, match=r"\(401 Unauthorized\) for url \(http://[^)]*/vault/"):
        solve_and_install(anonymous, "hw-app", tmp_path / "env2", tmp_path / "cache2")
    assert not (tmp_path / "env2").exists()

    revoke(headwater, bob, made["id"])
    with pytest.raises(GatewayError, match=r"\(401 Unauthorized\) for url \(http://[^)]*/vault/"):
        solve_and_install(with_token, "hw-app", tmp_path / "env3", tmp_path / "cache3")
    assert not (tmp_path / "env3").exists()


def test_pip_and_uv_install_from_a_private_channel_with_basic_auth(
    headwater: Headwater, token: str, bob: str, tmp_path: Path
) -> None:
    private_channel(headwater, token, "wheels", built_wheels(tmp_path / "dist"), bob="read")
    made = make_token(headwater, bob, "laptop", resources=[{"channel": "wheels", "role": "read"}])
    secret = made["token"]

    pip = pip_install(pip_index(headwater, "wheels", secret), tmp_path / "pip", "demo-app")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert installed(tmp_path / "pip") == {"demo-app": "1.0", "demo-lib": "1.0"}

    host = headwater.url.removeprefix("http://")
    uv_index = f"http://__token__:{secret}@{host}/api/repo/wheels/simple/"
    uv = uv_install(uv_index, tmp_path / "uv", "demo-app")
    assert uv.returncode == 0, uv.stdout + uv.stderr
    assert installed(tmp_path / "uv") == {"demo-app": "1.0", "demo-lib": "1.0"}

    assert pip_refused(pip_index(headwater, "wheels"), tmp_path / "anonymous") == 401

    revoke(headwater, bob, made["id"])
    assert pip_refused(pip_index(headwater, "wheels", secret), tmp_path / "revoked") == 401
    refused_uv = uv_install(uv_index, tmp_path / "revoked-uv", "demo-app")
    assert refused_uv.returncode != 0
    assert "lack of valid authentication credentials (401 Unauthorized)" in refused_uv.stderr, (
        refused_uv.stdout + refused_uv.stderr
    )
    assert installed(tmp_path / "revoked-uv") == {}


@pytest.mark.parametrize(
    "writer",
    [
        {"resources": [{"channel": "drop", "role": "write"}]},
        {"scopes": ["artifact:create"]},
    ],
    ids=["write-resource", "artifact-create-scope"],
)
def test_twine_uploads_with_a_token_that_may_write_and_not_with_a_read_only_one(
    headwater: Headwater, token: str, bob: str, tmp_path: Path, writer: dict[str, Any]
) -> None:
    private_channel(headwater, token, "drop", [], bob="write")
    wheel = build_dist(tmp_path / "dist", Dist("drop-tool", "2.0"))
    reader = make_token(headwater, bob, "reader", resources=[{"channel": "drop", "role": "read"}])
    repository = f"{headwater.url}/api/repo/drop/"
    page = "/api/repo/drop/simple/drop-tool/"

    refused = twine_upload(repository, "__token__", reader["token"], wheel.path)
    assert refused.returncode != 0
    assert "HTTPError: 403 Forbidden" in refused.stdout + refused.stderr, refused.stdout
    with headwater.client(token) as admin:
        assert admin.get(page).status_code == 404
        assert admin.get("/api/channels/drop/packages").json()["total_count"] == 0

    uploader = make_token(headwater, bob, "uploader", **writer)
    accepted = twine_upload(repository, "__token__", uploader["token"], wheel.path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    with headwater.client(token) as admin:
        listed = admin.get(page, headers=JSON)
        assert listed.status_code == 200, listed.text
        assert [(f["filename"], f["hashes"]["sha256"]) for f in listed.json()["files"]] == [
            (wheel.path.name, wheel.sha256)
        ]
        served = admin.get(page + wheel.path.name)
        assert hashlib.sha256(served.content).hexdigest() == wheel.sha256


def test_a_token_for_one_channel_reads_no_other_private_one(
    headwater: Headwater, token: str, bob: str, tmp_path: Path
) -> None:
    private_channel(headwater, token, "alpha", built_wheels(tmp_path / "a"), bob="read")
    private_channel(headwater, token, "beta", built_wheels(tmp_path / "b"), bob="read")
    with headwater.client(token) as admin:
        create_channel(admin, "open")
    limited = make_token(
        headwater, bob, "alpha only", resources=[{"channel": "alpha", "role": "read"}]
    )
    secret = limited["token"]

    def status(channel: str, credential: dict[str, str]) -> tuple[int, str]:
        with httpx.Client(base_url=headwater.url, headers=credential) as client:
            response = client.get(f"/api/repo/{channel}/simple/", headers=JSON)
        return response.status_code, response.text

    for credential in (
        {"X-Auth": secret},
        basic(secret, "x-auth-token"),
        basic("__token__", secret),
    ):
        assert status("alpha", credential)[0] == 200
        assert status("open", credential)[0] == 200  # the privacy floor: public stays readable
        # Beta answers as a channel that does not exist, for this token and nobody else.
        assert status("beta", credential) == (404, '{"detail":"channel \'beta\' does not exist"}')
        assert status("gamma", credential) == (404, '{"detail":"channel \'gamma\' does not exist"}')
        assert status("beta", {"X-Auth": bob})[0] == 200
    with httpx.Client(base_url=headwater.url) as client:
        assert client.get(f"/api/repo/t/{secret}/beta/noarch/repodata.json").status_code == 404
        assert client.get(f"/api/repo/t/{secret}/alpha/noarch/repodata.json").status_code == 200
        assert client.get(f"/api/repo/t/{bob}/beta/noarch/repodata.json").status_code == 200

    assert (
        pip_install(pip_index(headwater, "alpha", secret), tmp_path / "a-ok", "demo-app").returncode
        == 0
    )
    assert installed(tmp_path / "a-ok") == {"demo-app": "1.0", "demo-lib": "1.0"}
    assert pip_refused(pip_index(headwater, "beta", secret), tmp_path / "b-no") == 404


def test_an_expired_or_revoked_token_is_challenged(
    headwater: Headwater, token: str, bob: str, tmp_path: Path
) -> None:
    private_channel(headwater, token, "alpha", built_wheels(tmp_path / "a"), bob="read")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    short = make_token(
        headwater, bob, "short", scopes=["artifact:view"], expires_at=soon.isoformat()
    )
    kept = make_token(headwater, bob, "kept", scopes=["artifact:view"])

    def answers(secret: str) -> list[httpx.Response]:
        with httpx.Client(base_url=headwater.url) as client:
            return [
                client.get("/api/repo/alpha/simple/", headers={"X-Auth": secret}),
                client.get(
                    "/api/repo/alpha/simple/", headers={"Authorization": f"Bearer {secret}"}
                ),
                client.get("/api/repo/alpha/simple/", headers=basic(secret, "x-auth-token")),
                client.get("/api/repo/alpha/simple/", headers=basic("__token__", secret)),
                client.get(f"/api/repo/t/{secret}/alpha/simple/"),
            ]

    for secret in (short["token"], kept["token"]):
        assert [response.status_code for response in answers(secret)] == [200] * 5
    while dt.datetime.now(dt.UTC) <= soon:
        time.sleep(0.1)
    revoke(headwater, bob, kept["id"])

    for secret in (short["token"], kept["token"]):
        for response in answers(secret):
            assert response.status_code == 401, (response.request.url, response.text)
            assert response.headers["www-authenticate"] == 'Basic realm="headwater"'
    with headwater.client(bob) as client:
        assert client.get("/api/repo/alpha/simple/").status_code == 200  # the session still works

    assert pip_refused(pip_index(headwater, "alpha", short["token"]), tmp_path / "x") == 401


def test_the_simple_index_redirects_keep_the_token_in_the_path(
    headwater: Headwater, token: str, bob: str, tmp_path: Path
) -> None:
    private_channel(headwater, token, "wheels", built_wheels(tmp_path / "dist"), bob="read")
    secret = make_token(headwater, bob, "in path", scopes=["artifact:view"])["token"]
    index = f"/api/repo/t/{secret}/wheels/simple/"
    with httpx.Client(base_url=headwater.url) as client:
        for asked, target in (
            (index.removesuffix("/"), index),
            (index + "Demo_App/", index + "demo-app/"),
            (index + "demo-app", index + "demo-app/"),
        ):
            response = client.get(asked)
            assert (response.status_code, response.headers["location"]) == (301, target)
            followed = client.get(asked, headers=JSON, follow_redirects=True)
            assert followed.status_code == 200, followed.text
        plain = client.get("/api/repo/wheels/simple", headers={"X-Auth": bob})
        assert (plain.status_code, plain.headers["location"]) == (301, "/api/repo/wheels/simple/")
        listed = client.get(index.removesuffix("/"), headers=JSON, follow_redirects=True)
        assert {p["name"] for p in listed.json()["projects"]} == {"demo-app", "demo-lib"}
