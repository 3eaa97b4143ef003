"""Every route of the application, for every privacy and every kind of caller: the status each
gets. The routes are taken from the application: a route without a declared rule fails, and so
does a route whose rule differs from the one written here. The expected statuses come from
this file's own reading of the rules (docs/architecture.md, "Access"), not from the code under
test.

Each route is called with a probe that shows whether access was granted without changing the
world: a body the route's validation refuses (422), a thing inside the channel that does not
exist (404 with the route's own words), or, for deleting a channel, the deletion itself, after
which the channel is built again."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater.requires import route_rules
from tests.conftest import make_settings
from tests.functional.test_cves import ADVISORIES
from tests.support.advisories import zip_of
from tests.support.python_packages import Dist, build_dist
from tests.support.server import Headwater, run_headwater

PRIVACIES = ("public", "authenticated", "private")
CHANNEL = {"public": "pub", "authenticated": "auth", "private": "priv"}
USERS = ("member", "reader", "writer", "manager", "owner")
CALLERS = (
    "anonymous",
    "member",  # of the owning organization, without a role on the channel
    "reader",
    "writer",
    "manager",
    "owner",  # of the organization that owns the channel
    "administrator",
    "token_with_channel",  # the manager's personal token, limited to the channel (manage)
    "token_with_other",  # the manager's personal token, limited to another channel
    "expired",
    "revoked",
)
ROLES = {"read": 1, "write": 2, "manage": 3}
UNIDENTIFIED = frozenset({"anonymous", "expired", "revoked"})  # callers no identity comes with
PROBE = {"__probe__": 1}  # no request model takes it: a route that lets the caller in says 422

# What the framework serves besides Headwater's routes: the API's description and the assets.
FRAMEWORK = {
    ("GET", "/openapi.json"): "/openapi.json",
    ("GET", "/docs"): "/docs",
    ("GET", "/docs/assets"): "/docs/assets/swagger-ui.css",
    ("GET", "/redoc"): "/redoc",
    ("GET", "/static"): "/static/headwater.css",
}
# What load balancers and Prometheus ask (headwater/probes.py): they declare no rule, as they
# read no user credential at all; every caller gets the same answer, whatever it sends.
OPERATIONS = {
    ("GET", "/healthz"): 200,
    ("GET", "/readyz"): 200,
    ("GET", "/metrics"): 200,  # no metrics_token set here (test_operations.py sets one)
}


# --- the rules, as this test reads them ----------------------------------------------------


def channel_role(caller: str, privacy: str) -> int:
    anyone = 1 if privacy == "public" else 0
    return {
        "anonymous": anyone,
        "member": 1 if privacy != "private" else 0,
        "reader": 1,
        "writer": 2,
        "manager": 3,
        "owner": 3,
        "administrator": 3,
        "token_with_channel": 3,
        "token_with_other": anyone,
    }[caller]


SESSIONS = {"member", "reader", "writer", "manager", "owner", "administrator"}
TOKENS = {"token_with_channel", "token_with_other"}
ORGANIZATION_ROLE = {"member": "member", "owner": "owner", "administrator": "owner"}


@dataclass(frozen=True)
class Outcome:
    """`allowed`, or the refusal: `sign in` (401, or the sign-in page), `forbidden` (403),
    `hidden` (404, as for something that does not exist)."""

    kind: str


ALLOWED, SIGN_IN, FORBIDDEN, HIDDEN = (Outcome(k) for k in ("allowed", "sign in", "403", "404"))


def expected(action: str, caller: str, privacy: str) -> Outcome:
    if caller in ("expired", "revoked"):  # a credential sent must work, save to sign in
        return ALLOWED if action == "anyone" else SIGN_IN
    if action in ("anyone", "channel:list"):
        return ALLOWED
    channel_actions = {
        "channel:read": 1,
        "file:upload": 2,
        "file:delete": 2,
        "channel:edit": 3,
        "mirror:read": 3,
        "mirror:edit": 3,
        "cve:curate": 3,
    }
    if action in channel_actions:
        role = channel_role(caller, privacy)
        if role >= channel_actions[action]:
            return ALLOWED
        if caller == "anonymous":
            return SIGN_IN
        return FORBIDDEN if role >= 1 else HIDDEN
    if caller == "anonymous":
        return SIGN_IN
    if action in ("organization:read", "organization:manage"):
        role = ORGANIZATION_ROLE.get(caller)
        if role is None:
            return HIDDEN
        return ALLOWED if action == "organization:read" or role == "owner" else FORBIDDEN
    if action in (
        "cve:import",
        "user:admin",
        "organization:create",
        "audit:read",
        "job:read",
        "job:stop",
        "job:run",
        "storage:read",
    ):
        return ALLOWED if caller == "administrator" else FORBIDDEN
    if action == "account:manage":  # sessions, not personal tokens without the admin scope
        return ALLOWED if caller in SESSIONS else FORBIDDEN
    # channel:create (the tokens' role implies channel:edit), cve:read, mirror:list,
    # account:read, organization:list: any signed-in caller
    return ALLOWED


# --- probes: how each route is called ------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    action: str
    status: int  # what the route answers a caller it lets in
    says: str | None = None  # words in that answer, where a refusal could share its status
    json: Any = None
    form: dict[str, str] | None = None
    rebuilds: bool = False  # letting the caller in deletes the channel: build it again
    unidentified: int | None = None  # what it answers a caller it knows no one of, if not `status`


def p(action: str, status: int = 200, **options: Any) -> Probe:
    return Probe(action, status, **options)


NO_MULTIPART = {"note": "not an upload"}  # an upload route answers 422: not multipart

PROBES: dict[tuple[str, str], Probe] = {
    # REST: the account, users, organizations, the audit log
    ("POST", "/api/auth/login"): p("anyone", 422, json=PROBE),
    ("POST", "/api/auth/password"): p("account:manage", 422, json=PROBE),
    ("GET", "/api/account"): p("account:read"),
    ("GET", "/api/account/tokens"): p("account:manage"),
    ("POST", "/api/account/tokens"): p("account:manage", 422, json=PROBE),
    ("DELETE", "/api/account/tokens/{token_id}"): p("account:manage", 404, says="no token"),
    ("GET", "/api/users"): p("user:admin"),
    ("POST", "/api/users"): p("user:admin", 422, json=PROBE),
    ("GET", "/api/users/{username}"): p("user:admin"),
    ("PATCH", "/api/users/{username}"): p("user:admin", 422, json=PROBE),
    ("GET", "/api/organizations"): p("organization:list"),
    ("POST", "/api/organizations"): p("organization:create", 422, json=PROBE),
    ("GET", "/api/organizations/{organization}"): p("organization:read"),
    ("PATCH", "/api/organizations/{organization}"): p("organization:manage", 422, json=PROBE),
    ("DELETE", "/api/organizations/{organization}"): p("organization:manage", 409, says="owns"),
    ("GET", "/api/organizations/{organization}/members"): p("organization:read"),
    ("PUT", "/api/organizations/{organization}/members/{username}"): p(
        "organization:manage", 422, json=PROBE
    ),
    ("DELETE", "/api/organizations/{organization}/members/{username}"): p(
        "organization:manage", 404, says="user 'nobody' does not exist"
    ),
    ("GET", "/api/organizations/{organization}/groups"): p("organization:read"),
    ("POST", "/api/organizations/{organization}/groups"): p("organization:manage", 422, json=PROBE),
    ("PATCH", "/api/organizations/{organization}/groups/{group}"): p(
        "organization:manage", 422, json=PROBE
    ),
    ("DELETE", "/api/organizations/{organization}/groups/{group}"): p(
        "organization:manage", 404, says="has no group"
    ),
    ("PUT", "/api/organizations/{organization}/groups/{group}/members/{username}"): p(
        "organization:manage", 404, says="has no group"
    ),
    ("DELETE", "/api/organizations/{organization}/groups/{group}/members/{username}"): p(
        "organization:manage", 404, says="has no group"
    ),
    ("GET", "/api/audit"): p("audit:read"),
    ("GET", "/api/audit/export"): p("audit:read"),
    ("GET", "/api/jobs"): p("job:read"),
    ("GET", "/api/jobs/{run_id}"): p("job:read"),
    ("POST", "/api/jobs/{run_id}/stop"): p("job:stop", 404, says="does not exist"),
    ("POST", "/api/jobs"): p("job:run", 422, json=PROBE),
    ("GET", "/api/storage"): p("storage:read"),
    # REST: channels and what is in them
    ("GET", "/api/channels"): p("channel:list"),
    ("POST", "/api/channels"): p("channel:create", 422, json=PROBE),
    ("GET", "/api/channels/{channel}"): p("channel:read"),
    ("PATCH", "/api/channels/{channel}"): p("channel:edit", 422, json=PROBE),
    ("PUT", "/api/channels/{channel}"): p("channel:edit", 422, json=PROBE),
    ("DELETE", "/api/channels/{channel}"): p("channel:edit", 204, rebuilds=True),
    ("GET", "/api/channels/{channel}/packages"): p("channel:read"),
    ("GET", "/api/channels/{channel}/packages/{name}/files"): p("channel:read"),
    ("POST", "/api/channels/{channel}/files"): p("file:upload", 422, form=NO_MULTIPART),
    ("DELETE", "/api/channels/{channel}/files/{subdir}/{filename}"): p(
        "file:delete", 404, says="has no file"
    ),
    ("GET", "/api/channels/{channel}/roles"): p("channel:edit"),
    ("PUT", "/api/channels/{channel}/roles/users/{username}"): p("channel:edit", 422, json=PROBE),
    ("DELETE", "/api/channels/{channel}/roles/users/{username}"): p(
        "channel:edit", 404, says="user 'nobody' does not exist"
    ),
    ("PUT", "/api/channels/{channel}/roles/groups/{organization}/{group}"): p(
        "channel:edit", 422, json=PROBE
    ),
    ("DELETE", "/api/channels/{channel}/roles/groups/{organization}/{group}"): p(
        "channel:edit", 404, says="group acme/nothing has no role on channel"
    ),
    ("GET", "/api/channels/{channel}/cves"): p("channel:read"),
    ("GET", "/api/channels/{channel}/revisions"): p("channel:read"),
    ("GET", "/api/channels/{channel}/revisions/{number}"): p(
        "channel:read", 404, says="has no revision"
    ),
    ("PUT", "/api/channels/{channel}/revisions/{number}"): p("channel:edit", 422, json=PROBE),
    ("POST", "/api/channels/{channel}/revisions/{number}/rollback"): p(
        "channel:edit", 404, says="has no revision"
    ),
    ("GET", "/api/channels/{channel}/mirrors"): p("mirror:read"),
    ("POST", "/api/channels/{channel}/mirrors"): p("mirror:edit", 422, json=PROBE),
    ("GET", "/api/channels/{channel}/mirrors/{mirror_id}"): p("mirror:read"),
    ("PATCH", "/api/channels/{channel}/mirrors/{mirror_id}"): p("mirror:edit", 422, json=PROBE),
    ("PUT", "/api/channels/{channel}/mirrors/{mirror_id}"): p("mirror:edit", 422, json=PROBE),
    ("DELETE", "/api/channels/{channel}/mirrors/{mirror_id}"): p(
        "mirror:edit", 404, says="has no mirror"
    ),
    ("POST", "/api/channels/{channel}/mirrors/{mirror_id}/run"): p(
        "mirror:edit", 404, says="has no mirror"
    ),
    ("POST", "/api/channels/{channel}/mirrors/{mirror_id}/stop"): p(
        "mirror:edit", 404, says="has no mirror"
    ),
    ("POST", "/api/channels/{channel}/mirrors/preview"): p("mirror:edit", 422, json=PROBE),
    ("POST", "/api/channels/{channel}/mirrors/{mirror_id}/preview"): p(
        "mirror:read", 422, json=PROBE
    ),
    ("GET", "/api/channels/{channel}/runs"): p("mirror:read"),
    ("GET", "/api/channels/{channel}/mirrors/{mirror_id}/runs"): p("mirror:read"),
    ("GET", "/api/mirrors"): p("mirror:list"),
    ("GET", "/api/runs/{run_id}"): p("mirror:read"),
    ("GET", "/api/cves"): p("cve:read"),
    ("GET", "/api/cves/{cve_id}"): p("cve:read"),
    ("GET", "/api/cves/{cve_id}/files"): p("cve:read"),
    ("PUT", "/api/cves/matches/{match_id}"): p("cve:curate", 422, json=PROBE),
    # many matches at once: any signed-in caller may ask; only channels they curate change
    ("POST", "/api/cves/{cve_id}/curate"): p("cve:read", 422, json=PROBE),
    ("POST", "/api/cves/import"): p("cve:import", 422, form=NO_MULTIPART),
    # the repository URLs: conda and PyPI clients, twine
    ("GET", "/api/repo/{channel}"): p("channel:read", 404, says="serves /api/repo/"),
    ("GET", "/api/repo/{channel}/{rest:path}"): p("channel:read"),
    ("GET", "/api/repo/t/{token}/{channel}"): p("channel:read", 404, says="serves /api/repo/"),
    ("GET", "/api/repo/t/{token}/{channel}/{rest:path}"): p("channel:read"),
    ("GET", "/api/repo/{channel}@{revision}"): p("channel:read", 404, says="has no revision"),
    ("GET", "/api/repo/{channel}@{revision}/{rest:path}"): p(
        "channel:read", 404, says="has no revision"
    ),
    ("GET", "/api/repo/t/{token}/{channel}@{revision}"): p(
        "channel:read", 404, says="has no revision"
    ),
    ("GET", "/api/repo/t/{token}/{channel}@{revision}/{rest:path}"): p(
        "channel:read", 404, says="has no revision"
    ),
    ("POST", "/api/repo/{channel}"): p("file:upload", 422, form=NO_MULTIPART),
    ("POST", "/api/repo/{channel}/{rest:path}"): p("file:upload", 404, says="upload to"),
    ("POST", "/api/repo/t/{token}/{channel}"): p("file:upload", 422, form=NO_MULTIPART),
    ("POST", "/api/repo/t/{token}/{channel}/{rest:path}"): p("file:upload", 404, says="upload to"),
    # the UI
    ("GET", "/"): p("anyone", unidentified=303),  # the home page; not signed in: the channels
    ("GET", "/login"): p("anyone"),
    ("POST", "/login"): p("anyone", 401, says="wrong username or password", form={}),
    ("POST", "/logout"): p("anyone", 303, form={}),
    ("GET", "/auth/oidc/start"): p("anyone", 404, says="not set up"),
    ("GET", "/auth/oidc/callback"): p("anyone", 404, says="not set up"),
    ("GET", "/account"): p("account:manage"),
    ("POST", "/account/tokens"): p("account:manage", 422, form={"name": ""}),
    ("POST", "/account/tokens/{token_id}/revoke"): p(
        "account:manage", 404, says="no token", form={}
    ),
    ("POST", "/account/password"): p(
        "account:manage", 422, says="differ", form={"new_password": "a", "repeat_password": "b"}
    ),
    ("GET", "/channels"): p("channel:list"),
    ("POST", "/channels"): p("channel:create", 422, form={"name": ""}),
    ("GET", "/channels/{channel}"): p("channel:read", 303),
    ("GET", "/channels/{channel}/packages"): p("channel:read"),
    ("GET", "/channels/{channel}/packages/{package}"): p("channel:read"),
    ("GET", "/channels/{channel}/mirrors"): p("mirror:read"),
    ("GET", "/channels/{channel}/history"): p("mirror:read"),
    ("GET", "/channels/{channel}/revisions"): p("channel:read"),
    ("POST", "/channels/{channel}/revisions/{number}/rollback"): p("channel:edit", 303, form={}),
    ("POST", "/channels/{channel}/revisions/{number}/keep"): p("channel:edit", 303, form={}),
    ("GET", "/channels/{channel}/settings"): p("channel:edit"),
    ("POST", "/channels/{channel}/settings"): p("channel:edit", 422, form={"privacy": ""}),
    ("POST", "/channels/{channel}/filters"): p("channel:edit", 303, form={}),
    ("POST", "/channels/{channel}/roles"): p("channel:edit", 422, form={"role": "owner"}),
    ("POST", "/channels/{channel}/roles/remove"): p("channel:edit", 422, form={"kind": "x"}),
    ("POST", "/channels/{channel}/delete"): p("channel:edit", 303, form={}, rebuilds=True),
    ("GET", "/channels/{channel}/cves"): p("channel:read"),
    ("GET", "/channels/{channel}/files/{file_id}/cves"): p("channel:read"),
    ("GET", "/cves"): p("cve:read"),
    ("GET", "/cves/{cve_id}"): p("cve:read"),
    ("POST", "/cves/matches/{match_id}/curate"): p("cve:curate", 422, form={"status": "x"}),
    ("POST", "/cves/{cve_id}/curate"): p("cve:read", 422, form={"status": "x"}),
    ("POST", "/channels/{channel}/cves/curate"): p("cve:curate", 422, form={"status": "x"}),
    ("GET", "/channels/{channel}/mirrors/new"): p("mirror:edit"),
    ("POST", "/channels/{channel}/mirrors/new"): p("mirror:edit", 422, form={}),
    ("GET", "/channels/{channel}/mirrors/{mirror_id}/edit"): p("mirror:edit"),
    ("POST", "/channels/{channel}/mirrors/{mirror_id}/edit"): p("mirror:edit", 422, form={}),
    ("POST", "/channels/{channel}/mirrors/{mirror_id}/run"): p("mirror:edit", 303, form={}),
    ("POST", "/channels/{channel}/mirrors/{mirror_id}/stop"): p("mirror:edit", 303, form={}),
    ("POST", "/channels/{channel}/mirrors/{mirror_id}/delete"): p("mirror:edit", 303, form={}),
    ("GET", "/mirrors"): p("mirror:list"),
    ("POST", "/channels/{channel}/mirrors/preview"): p("mirror:edit", 200, form={}),
    ("POST", "/channels/{channel}/filters/check"): p("mirror:read", 200, form={}),
    ("GET", "/channels/{channel}/mirrors/schedule"): p("mirror:edit", 422),
    ("POST", "/channels/{channel}/mirrors/projects/check"): p("mirror:edit", 422, form={}),
    ("GET", "/runs/{run_id}"): p("mirror:read"),
    ("GET", "/organizations"): p("organization:list"),
    ("POST", "/organizations"): p("organization:create", 422, form={"name": ""}),
    ("GET", "/organizations/{organization}"): p("organization:read"),
    ("POST", "/organizations/{organization}/members"): p(
        "organization:manage", 422, form={"username": "owner", "role": "boss"}
    ),
    ("POST", "/organizations/{organization}/members/remove"): p(
        "organization:manage", 404, says="is not a member", form={"username": "reader"}
    ),
    ("POST", "/organizations/{organization}/groups"): p(
        "organization:manage", 422, form={"name": ""}
    ),
    ("POST", "/organizations/{organization}/groups/remove"): p(
        "organization:manage", 404, says="has no group", form={"group": "nothing"}
    ),
    ("POST", "/organizations/{organization}/groups/members"): p(
        "organization:manage", 404, says="has no group", form={"group": "nothing"}
    ),
    ("POST", "/organizations/{organization}/groups/members/remove"): p(
        "organization:manage", 404, says="has no group", form={"group": "nothing"}
    ),
    ("GET", "/admin/users"): p("user:admin"),
    ("POST", "/admin/users"): p("user:admin", 422, form={"username": ""}),
    ("POST", "/admin/users/{username}"): p("user:admin", 422, form={"change": "x"}),
    ("GET", "/admin/audit"): p("audit:read"),
    ("GET", "/admin/jobs"): p("job:read"),
    ("POST", "/admin/jobs"): p("job:run", 422, says="not a job", form={"kind": "nothing"}),
    ("GET", "/admin/jobs/{run_id}"): p("job:read"),
    ("POST", "/admin/jobs/{run_id}/stop"): p("job:stop", 303, form={}),
    ("GET", "/admin/storage"): p("storage:read"),
}


# --- the world the callers act in --------------------------------------------------------------


@dataclass
class Targets:
    """What a channel holds that routes name: a mirror, its run, a file, a CVE match."""

    mirror_id: int = 0
    run_id: int = 0
    file_id: int = 0
    match_id: int = 0


@dataclass
class World:
    headwater: Headwater
    admin: httpx.Client
    wheel: Path
    sessions: dict[str, str] = field(default_factory=dict)  # caller → token
    targets: dict[str, Targets] = field(default_factory=dict)  # channel → its targets
    clients: dict[str, httpx.Client] = field(default_factory=dict)  # caller → their browser

    def client(self, caller: str) -> httpx.Client:
        """One client per caller, holding the form cookie every page gives (sent back with
        each form, as a browser would)."""
        if caller not in self.clients:
            client = self.headwater.client()
            client.get("/login")
            self.clients[caller] = client
        return self.clients[caller]

    def build_channel(self, privacy: str) -> None:
        name = CHANNEL[privacy]
        created = self.admin.post(
            "/api/channels", json={"name": name, "privacy": privacy, "organization": "acme"}
        )
        assert created.status_code == 201, created.text
        for user, role in (("reader", "read"), ("writer", "write"), ("manager", "manage")):
            granted = self.admin.put(
                f"/api/channels/{name}/roles/users/{user}", json={"role": role}
            )
            assert granted.status_code == 200, granted.text
        with self.wheel.open("rb") as stream:
            sent = self.admin.post(
                f"/api/channels/{name}/files", files={"file": (self.wheel.name, stream)}
            )
        assert sent.status_code == 201, sent.text
        mirror = self.admin.post(
            f"/api/channels/{name}/mirrors",
            json={"mirror_name": "m", "source_root": "http://127.0.0.1:9/", "run_now": True},
        ).json()
        matches = self.admin.get("/api/cves/CVE-2099-0001/files").json()["items"]
        self.targets[name] = Targets(
            mirror_id=mirror["id"],
            run_id=mirror["run"]["id"],
            file_id=next(m["file_id"] for m in matches if m["channel"] == name),
            match_id=next(m["id"] for m in matches if m["channel"] == name),
        )
        self.issue_channel_token()

    def issue_channel_token(self) -> None:
        """The manager's token limited to the three channels (made anew when one is)."""
        resources = [{"channel": name, "role": "manage"} for name in CHANNEL.values()]
        existing = [name for name in CHANNEL.values() if name in self.targets]
        if len(existing) < len(CHANNEL):
            return
        with self.headwater.client(self.sessions["manager"]) as manager:
            made = manager.post(
                "/api/account/tokens", json={"name": "channel", "resources": resources}
            )
            assert made.status_code == 201, made.text
            self.sessions["token_with_channel"] = made.json()["token"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("matrix")
    settings = make_settings(
        tmp / "var",
        embedded_worker=False,  # runs stay pending: the probes find them as they were left
        sign_in_limit_per_account="100000 per minute",
        sign_in_limit_per_address="100000 per minute",
    )
    wheel = build_dist(tmp / "dist", Dist("scorepkg", "1.0")).path
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        world = World(headwater, admin, wheel, sessions={"administrator": admin.headers["X-Auth"]})
        imported = admin.post("/api/cves/import", files={"file": ("a.zip", zip_of(ADVISORIES))})
        assert imported.status_code == 200, imported.text
        for user in USERS:
            headwater.add_user(user, f"{user}'s password")
            world.sessions[user] = headwater.login(user, f"{user}'s password")
        assert admin.post("/api/organizations", json={"name": "acme"}).status_code == 201
        for user, role in (("member", "member"), ("owner", "owner")):
            put = admin.put(f"/api/organizations/acme/members/{user}", json={"role": role})
            assert put.status_code == 200, put.text
        assert admin.post("/api/channels", json={"name": "else", "privacy": "private"}).is_success
        for privacy in PRIVACIES:
            world.build_channel(privacy)
        with headwater.client(world.sessions["manager"]) as manager:
            other = manager.post(
                "/api/account/tokens",
                json={"name": "other", "resources": [{"channel": "else", "role": "read"}]},
            )
            assert other.status_code == 404  # the manager may not even see `else` yet
            admin.put("/api/channels/else/roles/users/manager", json={"role": "manage"})
            other = manager.post(
                "/api/account/tokens",
                json={"name": "other", "resources": [{"channel": "else", "role": "manage"}]},
            )
            world.sessions["token_with_other"] = other.json()["token"]
            soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
            expiring = manager.post(
                "/api/account/tokens",
                json={"name": "expiring", "scopes": ["admin"], "expires_at": soon.isoformat()},
            )
            world.sessions["expired"] = expiring.json()["token"]
            revoked = manager.post(
                "/api/account/tokens", json={"name": "revoked", "scopes": ["admin"]}
            ).json()
            assert manager.delete(f"/api/account/tokens/{revoked['id']}").status_code == 204
            world.sessions["revoked"] = revoked["token"]
        time.sleep(max(0.0, (soon - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
        yield world
        for client in world.clients.values():
            client.close()


# --- the matrix --------------------------------------------------------------------------------


def _rules(world: World) -> dict[tuple[str, str], str | None]:
    app = world.headwater.app
    declared = {}
    for rule in route_rules(app.routes):  # type: ignore[attr-defined]
        for method in rule.methods - {"HEAD"} or {"GET"}:
            declared[(method, rule.path)] = (
                rule.requirement.action.value if rule.requirement is not None else None
            )
    return declared


def test_every_route_declares_the_rule_written_here(world: World) -> None:
    declared = _rules(world)
    missing = sorted(
        key
        for key, action in declared.items()
        if action is None and key not in FRAMEWORK and key not in OPERATIONS
    )
    assert missing == [], f"routes without an access rule: {missing}"
    ruled = sorted(key for key in OPERATIONS if declared.get(key))
    assert ruled == [], f"probes that read credentials: {ruled}"
    unprobed = sorted(set(declared) - set(PROBES) - set(FRAMEWORK) - set(OPERATIONS))
    assert unprobed == [], f"routes this test does not know: {unprobed}"
    gone = sorted((set(PROBES) | set(OPERATIONS)) - set(declared))
    assert gone == [], f"routes this test expects that the application lacks: {gone}"
    differing = {
        key: (declared[key], probe.action)
        for key, probe in PROBES.items()
        if declared[key] != probe.action
    }
    assert differing == {}, differing


def test_ui_forms_prove_they_come_from_headwater(world: World) -> None:
    from headwater.web.session import prove_form

    app = world.headwater.app
    for rule in route_rules(app.routes):  # type: ignore[attr-defined]
        if rule.path.startswith("/api/") or not rule.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            continue
        assert prove_form in rule.dependencies, rule.path


def _fill(path: str, world: World, privacy: str, caller: str) -> str:
    channel = CHANNEL[privacy]
    targets = world.targets[channel]
    values = {
        "channel": channel,
        "organization": "acme",
        "group": "nothing",
        "username": "nobody",
        "token_id": "999999",
        "mirror_id": str(targets.mirror_id),
        "run_id": str(targets.run_id),
        "match_id": str(targets.match_id),
        "file_id": str(targets.file_id),
        "cve_id": "CVE-2099-0001",
        "name": "scorepkg",
        "package": "scorepkg",
        "subdir": "noarch",
        "filename": "nothing-1.0-0.conda",
        "rest:path": "noarch/repodata.json",
        "number": "999999",  # no revision: nothing is rolled back or kept
        "revision": "999999",
        "token": world.sessions.get(caller, "not-a-token"),
    }
    if path in ("/api/users/{username}", "/admin/users/{username}"):
        values["username"] = "owner"
    return re.sub(r"\{([^}]+)\}", lambda found: values[found.group(1)], path)


def _destructive_ids(method: str, path: str) -> bool:
    """Routes whose probe names a mirror or a run that does not exist (so that nothing is
    deleted, run or stopped)."""
    return (method == "DELETE" and path.endswith("/mirrors/{mirror_id}")) or path.endswith(
        (
            "/mirrors/{mirror_id}/run",
            "/mirrors/{mirror_id}/stop",
            "/mirrors/{mirror_id}/delete",
            "/jobs/{run_id}/stop",
        )
    )


def _refusal(outcome: Outcome, method: str, path: str) -> tuple[int, str | None]:
    ui = not path.startswith("/api/") and path not in FRAMEWORK.values()
    if outcome is SIGN_IN:
        return (303 if method == "GET" else 401) if ui else 401, None
    return (403, None) if outcome is FORBIDDEN else (404, None)


def _call(
    world: World, method: str, path: str, probe: Probe, privacy: str, caller: str
) -> httpx.Response:
    url = _fill(path, world, privacy, caller)
    if _destructive_ids(method, path) and "{run_id}" in path:
        url = url.replace(f"/{world.targets[CHANNEL[privacy]].run_id}/stop", "/999999/stop", 1)
    elif _destructive_ids(method, path):
        url = url.replace(f"/{world.targets[CHANNEL[privacy]].mirror_id}", "/999999", 1)
    if path.startswith("/api/repo/") and method == "POST" and path.endswith("{rest:path}"):
        url = url.replace("/noarch/repodata.json", "/elsewhere")
    client = world.client(caller)
    headers = {}
    token = world.sessions.get(caller)
    if token and "{token}" not in path:
        headers["X-Auth"] = token
    if probe.form is not None and not path.startswith("/api/"):
        data = {**probe.form, "csrf": client.cookies.get("headwater_form", "")}
        return client.request(method, url, data=data, headers=headers)
    if probe.form is not None:
        return client.request(method, url, data=probe.form, headers=headers)
    return client.request(method, url, json=probe.json, headers=headers)


@pytest.mark.parametrize("privacy", PRIVACIES)
def test_every_route_privacy_and_caller(world: World, privacy: str) -> None:
    wrong = []
    for (method, path), probe in PROBES.items():
        for caller in CALLERS:
            outcome = expected(probe.action, caller, privacy)
            if "{token}" in path and caller == "anonymous":
                outcome = SIGN_IN  # a token that is none at all
            response = _call(world, method, path, probe, privacy, caller)
            if outcome is ALLOWED:
                status, says = probe.status, probe.says
                if caller in UNIDENTIFIED and probe.unidentified is not None:
                    status = probe.unidentified
            else:
                status, says = _refusal(outcome, method, path)
            text = response.text
            if response.status_code != status or (says is not None and says not in text):
                wrong.append(
                    f"{method} {path} {privacy} {caller}: {response.status_code} "
                    f"(expected {status} {says or ''}): {text[:160]!r}"
                )
            elif outcome is not ALLOWED and status == 404 and probe.says and probe.says in text:
                wrong.append(f"{method} {path} {privacy} {caller}: let in, then not found")
            if outcome is ALLOWED and probe.rebuilds:
                world.build_channel(privacy)
    assert wrong == [], "\n".join(wrong)


def test_probes_answer_every_caller_alike(world: World) -> None:
    wrong = []
    with world.headwater.client() as client:
        for (method, path), status in OPERATIONS.items():
            for caller in CALLERS:
                token = world.sessions.get(caller)
                for headers in (
                    ({"X-Auth": token}, {"Authorization": f"Bearer {token}"}) if token else ({},)
                ):
                    response = client.request(method, path, headers=headers)
                    if response.status_code != status:
                        wrong.append(f"{method} {path} {caller}: {response.status_code}")
    assert wrong == [], "\n".join(wrong)


def test_lists_show_what_one_by_one_checks_allow(world: World) -> None:
    for caller in CALLERS:
        readable = {
            CHANNEL[privacy]
            for privacy in PRIVACIES
            if expected("channel:read", caller, privacy) is ALLOWED
        }
        managed = {
            CHANNEL[privacy]
            for privacy in PRIVACIES
            if expected("mirror:read", caller, privacy) is ALLOWED
        }
        token = world.sessions.get(caller)
        with world.headwater.client(token) as client:
            listed = client.get("/api/channels", params={"limit": 1000})
            if caller in ("expired", "revoked"):
                assert listed.status_code == 401, caller
                continue
            names = {c["name"] for c in listed.json()["items"]} - {"else"}
            assert names == readable, caller
            mirrors = client.get("/api/mirrors", params={"limit": 1000})
            if caller == "anonymous":
                assert mirrors.status_code == 401
                continue
            channels = {m["channel"] for m in mirrors.json()["items"]} - {"else"}
            assert channels == managed, caller
