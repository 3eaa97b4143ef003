"""Single sign-on against real providers on loopback: an OpenID Connect provider
(oidc-provider-mock) and an OpenLDAP directory (slapd). Users come into being at their first
sign-in, in the groups their provider reports, and read what those groups are granted."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, expect

from headwater.credentials import SESSION_COOKIE
from headwater.settings import Settings
from tests.conftest import REQUIRE_POSTGRES, make_settings
from tests.support import ldap, oidc
from tests.support.browser import chromium, sign_in
from tests.support.conda_packages import PackageSpec, build_package
from tests.support.flows import create_channel, sign_in_page
from tests.support.server import ADMIN, PASSWORD, Headwater, free_port, run_headwater

# OpenID Connect: the provider's name for each person (sub) is not their username.
ALICE = oidc.Person("0001-alice", "alice", "alice@example.org", ("data-team", "staff"))
BOB = oidc.Person("0002-bob", "bob", "bob@example.org", ("staff",))
# LDAP: data-team keeps a member when alice leaves it (groupOfNames needs one).
ANN = ldap.Person("ann", "ann's directory password", "ann@example.org", ("data-team",))
CAROL = ldap.Person("carol", "carol's directory password", "carol@example.org", ("data-team",))
DAN = ldap.Person("dan", "dan's directory password", "dan@example.org", ("staff",))
PROVIDER_LABEL = "Example ID"

# The mock provider signs ID tokens through an authlib interface that authlib deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")


def grant_team_data(headwater: Headwater, packages: Path) -> None:
    """What an administrator sets up: acme/readers stands for the provider's data-team and may
    read the private team-data; the private `other` is granted to no one."""
    package = build_package(PackageSpec("team-tool", "1.0"), packages)
    with headwater.client(headwater.login()) as admin:
        assert admin.post("/api/organizations", json={"name": "acme"}).status_code == 201
        group = admin.post(
            "/api/organizations/acme/groups", json={"name": "readers", "sso_group": "data-team"}
        )
        assert group.status_code == 201, group.text
        for name in ("team-data", "other"):
            create_channel(admin, name, privacy="private")
            with package.open("rb") as stream:
                uploaded = admin.post(
                    f"/api/channels/{name}/files", files={"file": (package.name, stream)}
                )
            assert uploaded.status_code == 201, uploaded.text
        granted = admin.put(
            "/api/channels/team-data/roles/groups/acme/readers", json={"role": "read"}
        )
        assert granted.status_code == 200, granted.text


def channels_listed(page: Page, headwater: Headwater) -> set[str]:
    page.goto(headwater.url + "/channels")
    return set(page.locator("#channels tbody td:first-child a").all_inner_texts())


def sees_only_team_data(page: Page, headwater: Headwater) -> None:
    """The signed-in user lists, opens and reads team-data, and `other` does not exist for
    them; their account shows the group the provider put them in."""
    assert channels_listed(page, headwater) == {"team-data"}
    page.get_by_role("link", name="team-data", exact=True).click()
    expect(page).to_have_url(headwater.url + "/channels/team-data/packages")
    expect(page.locator("#packages")).to_contain_text("team-tool")
    other = page.goto(headwater.url + "/channels/other/packages")
    assert other is not None and other.status == 404
    page.goto(headwater.url + "/account")
    expect(page.locator("[data-group='acme/readers']")).to_be_visible()


def sees_no_team_data(page: Page, headwater: Headwater) -> None:
    assert channels_listed(page, headwater) == set()
    for name in ("team-data", "other"):
        answer = page.goto(f"{headwater.url}/channels/{name}/packages")
        assert answer is not None and answer.status == 404
    page.goto(headwater.url + "/account")
    expect(page.get_by_text("Groups: none")).to_be_visible()


def api_channels(headwater: Headwater, token: str) -> set[str]:
    with headwater.client(token) as client:
        return {channel["name"] for channel in client.get("/api/channels").json()["items"]}


# --- OpenID Connect ---------------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[oidc.Provider]:
    with oidc.oidc_provider([ALICE, BOB]) as server:
        yield server


@pytest.fixture
def oidc_headwater(tmp_path: Path, provider: oidc.Provider) -> Iterator[Headwater]:
    settings = make_settings(
        tmp_path / "var",
        oidc_issuer=provider.issuer,
        oidc_client_id=oidc.CLIENT_ID,
        oidc_client_secret=oidc.CLIENT_SECRET,
        oidc_label=PROVIDER_LABEL,
    )
    with run_headwater(settings) as server:
        grant_team_data(server, tmp_path / "packages")
        yield server


def sign_in_with_provider(page: Page, headwater: Headwater, person: oidc.Person) -> None:
    page.goto(headwater.url + "/login")
    page.get_by_role("link", name=f"Sign in with {PROVIDER_LABEL}").click()
    sign_in_at_provider_page(page, person)
    expect(page).to_have_url(headwater.url + "/channels")
    expect(page.locator("form.signout")).to_be_visible()


def sign_in_at_provider_page(page: Page, person: oidc.Person) -> None:
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/oauth2/authorize\?"))
    oidc.sign_in_at_provider(page, person.sub)


def new_page(browser: Browser) -> Page:
    """A browser of its own (no cookies shared with other pages)."""
    page = browser.new_context().new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.mark.browser
def test_oidc_sign_in_gives_the_channels_of_the_provider_groups(
    oidc_headwater: Headwater,
) -> None:
    with chromium() as browser:
        alice = new_page(browser)
        sign_in_with_provider(alice, oidc_headwater, ALICE)
        sees_only_team_data(alice, oidc_headwater)
        expect(alice.get_by_role("heading", name="Account · alice")).to_be_visible()
        expect(alice.get_by_text("signs in through OIDC")).to_contain_text("alice@example.org")

        # bob's groups at the provider do not include data-team.
        bob = new_page(browser)
        sign_in_with_provider(bob, oidc_headwater, BOB)
        sees_no_team_data(bob, oidc_headwater)


@pytest.mark.browser
def test_oidc_groups_follow_the_provider_at_each_sign_in(
    oidc_headwater: Headwater, provider: oidc.Provider
) -> None:
    with chromium() as browser:
        first = new_page(browser)
        sign_in_with_provider(first, oidc_headwater, ALICE)
        assert channels_listed(first, oidc_headwater) == {"team-data"}

        provider.set_person(replace(ALICE, groups=("staff",)))  # alice leaves data-team
        again = new_page(browser)
        sign_in_with_provider(again, oidc_headwater, ALICE)
        sees_no_team_data(again, oidc_headwater)
        # The same account, whose earlier session reads no more than it does now.
        assert channels_listed(first, oidc_headwater) == set()

        provider.set_person(ALICE)  # and back in
        sign_in_with_provider(again, oidc_headwater, ALICE)
        sees_only_team_data(again, oidc_headwater)


def test_oidc_sign_in_needs_the_state_and_the_pkce_verifier_of_its_start(
    oidc_headwater: Headwater, provider: oidc.Provider
) -> None:
    """Without a browser, each step as the browser takes it: a code is worth nothing without
    the verifier kept in the cookie of the browser that started, nor with another state."""

    def start(client: httpx.Client) -> tuple[str, str]:
        started = client.get("/auth/oidc/start?next=/account")
        assert started.status_code == 303
        back = provider.authorize(started.headers["location"], ALICE.sub)
        assert back.startswith(oidc_headwater.url + "/auth/oidc/callback?")
        return back, client.cookies["headwater_oidc"]

    with oidc_headwater.client() as client:
        back, pending = start(client)
        state, nonce, verifier, next_url = orjson.loads(base64.urlsafe_b64decode(pending))
        forged = orjson.dumps([state, nonce, verifier[::-1], next_url])
        client.cookies.set("headwater_oidc", base64.urlsafe_b64encode(forged).decode())
        refused = client.get(back)
        assert refused.status_code == 401
        assert "the identity provider did not accept the sign-in" in refused.text
        assert SESSION_COOKIE not in client.cookies

    with oidc_headwater.client() as client:
        back, _ = start(client)
        refused = client.get(back.replace("state=", "state=x"))
        assert refused.status_code == 401
        assert "this sign-in was not started here" in refused.text

    with oidc_headwater.client() as client:
        back, _ = start(client)
        signed_in = client.get(back)
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/account"
        account = client.get("/api/account", headers={"X-Auth": client.cookies[SESSION_COOKIE]})
        assert account.json()["username"] == "alice"
        assert account.json()["source"] == "oidc"
        assert account.json()["groups"] == ["acme/readers"]


# --- LDAP -------------------------------------------------------------------------------------


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[ldap.Slapd]:
    if ldap.find_slapd() is None:
        if REQUIRE_POSTGRES:  # how CI is marked: there a missing slapd is a failure
            pytest.fail(ldap.MISSING)
        pytest.skip(ldap.MISSING)
    with ldap.run_slapd(tmp_path / "slapd", [ANN, CAROL, DAN]) as server:
        yield server


def ldap_settings(tmp_path: Path, slapd: ldap.Slapd, **overrides: object) -> Settings:
    return make_settings(
        tmp_path / "var", ldap_url=slapd.url, ldap_group_search_base=ldap.GROUPS, **overrides
    )


@pytest.fixture
def bound_by_template(tmp_path: Path, slapd: ldap.Slapd) -> Iterator[Headwater]:
    """Users bound directly as uid=<name>,ou=people,…"""
    settings = ldap_settings(tmp_path, slapd, ldap_user_dn_template=ldap.USER_DN_TEMPLATE)
    with run_headwater(settings) as server:
        grant_team_data(server, tmp_path / "packages")
        yield server


@pytest.fixture
def found_by_search(tmp_path: Path, slapd: ldap.Slapd) -> Iterator[Headwater]:
    """Users found by a service account's search, then bound as themselves."""
    settings = ldap_settings(
        tmp_path,
        slapd,
        ldap_bind_dn=ldap.SERVICE_DN,
        ldap_bind_password=ldap.SERVICE_PASSWORD,
        ldap_user_search_base=ldap.PEOPLE,
    )
    with run_headwater(settings) as server:
        grant_team_data(server, tmp_path / "packages")
        yield server


def login(headwater: Headwater, username: str, password: str) -> httpx.Response:
    with headwater.client() as client:
        return client.post("/api/auth/login", json={"username": username, "password": password})


def account(headwater: Headwater, token: str) -> dict[str, object]:
    with headwater.client(token) as client:
        answer = client.get("/api/account")
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.mark.browser
def test_ldap_sign_in_on_the_form_gives_the_channels_of_the_directory_groups(
    bound_by_template: Headwater,
) -> None:
    headwater = bound_by_template
    with chromium() as browser:
        ann = new_page(browser)
        sign_in(ann, headwater.url, ANN.uid, "not ann's password")
        expect(ann.get_by_role("alert")).to_have_text("wrong username or password")
        sign_in(ann, headwater.url, ANN.uid, ANN.password)
        expect(ann).to_have_url(headwater.url + "/channels")
        sees_only_team_data(ann, headwater)
        expect(ann.get_by_text("signs in through LDAP")).to_contain_text("ann@example.org")

        dan = new_page(browser)  # in the directory, not in data-team
        sign_in(dan, headwater.url, DAN.uid, DAN.password)
        expect(dan.locator("form.signout")).to_be_visible()
        sees_no_team_data(dan, headwater)

        # The local administrator signs in with their own password, LDAP or not.
        admin = new_page(browser)
        sign_in(admin, headwater.url, ADMIN, PASSWORD)
        expect(admin).to_have_url(headwater.url + "/channels")
        assert channels_listed(admin, headwater) == {"team-data", "other"}


def test_ldap_an_empty_password_never_signs_in(bound_by_template: Headwater) -> None:
    for username in (ANN.uid, "nobody", ADMIN):
        assert login(bound_by_template, username, "").status_code == 401
    with bound_by_template.client() as client:
        page = sign_in_page(client, ANN.uid, "")
        assert page.status_code == 401
        assert "wrong username or password" in page.text
        assert SESSION_COOKIE not in client.cookies


def test_ldap_search_with_a_service_account(found_by_search: Headwater) -> None:
    headwater = found_by_search
    signed_in = login(headwater, ANN.uid, ANN.password)
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["token"]
    assert account(headwater, token) | {"organizations": None} == {
        "username": "ann",
        "is_admin": False,
        "source": "ldap",
        "email": "ann@example.org",
        "organizations": None,
        "groups": ["acme/readers"],
        "token_kind": "session",
        "token_scopes": None,
    }
    assert api_channels(headwater, token) == {"team-data"}
    with headwater.client(token) as client:
        assert client.get("/api/channels/team-data/packages").status_code == 200
        assert client.get("/api/channels/other/packages").status_code == 404

    dan = login(headwater, DAN.uid, DAN.password).json()["token"]
    assert api_channels(headwater, dan) == set()
    for username, password in ((ANN.uid, DAN.password), ("nobody", ANN.password)):
        refused = login(headwater, username, password)
        assert refused.status_code == 401
        assert refused.json()["detail"] == "wrong username or password"


def test_ldap_groups_follow_the_directory_at_each_sign_in(
    bound_by_template: Headwater, slapd: ldap.Slapd
) -> None:
    headwater = bound_by_template
    first = login(headwater, ANN.uid, ANN.password).json()["token"]
    assert api_channels(headwater, first) == {"team-data"}

    slapd.remove_from_group(ANN, "data-team")
    again = login(headwater, ANN.uid, ANN.password).json()["token"]
    assert account(headwater, again)["groups"] == []
    assert api_channels(headwater, again) == set()
    assert api_channels(headwater, first) == set()  # the same account, whatever the session

    slapd.add_to_group(ANN, "data-team")
    back = login(headwater, ANN.uid, ANN.password).json()["token"]
    assert api_channels(headwater, back) == {"team-data"}


def test_ldap_a_local_account_keeps_its_own_password(bound_by_template: Headwater) -> None:
    """carol is both a local user and a directory user: here she is the local one, and the
    directory's password for that name signs no one in."""
    headwater = bound_by_template
    headwater.add_user(CAROL.uid, "carol's local password")
    assert login(headwater, CAROL.uid, CAROL.password).status_code == 401
    signed_in = login(headwater, CAROL.uid, "carol's local password")
    assert signed_in.status_code == 200
    assert account(headwater, signed_in.json()["token"])["source"] == "local"
    assert account(headwater, signed_in.json()["token"])["groups"] == []


def test_ldap_a_name_typed_in_another_case_is_the_same_account(
    bound_by_template: Headwater,
) -> None:
    """The directory matches names without regard to case; so must the account it signs in,
    or a disabled user would come back as `ANN`."""
    headwater = bound_by_template
    assert login(headwater, ANN.uid, ANN.password).status_code == 200
    upper = login(headwater, "ANN", ANN.password)
    assert upper.status_code == 200
    assert account(headwater, upper.json()["token"])["username"] == "ann"

    with headwater.client(headwater.login()) as admin:
        disabled = admin.patch("/api/users/ann", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
    for typed in ("ann", "ANN", "Ann"):
        refused = login(headwater, typed, ANN.password)
        assert refused.status_code == 401
        assert "disabled" in refused.json()["detail"]


def test_ldap_an_unreachable_directory_is_a_refusal_not_an_error(tmp_path: Path) -> None:
    closed = f"ldap://127.0.0.1:{free_port()}"
    settings = make_settings(
        tmp_path / "var", ldap_url=closed, ldap_user_dn_template=ldap.USER_DN_TEMPLATE
    )
    with run_headwater(settings) as headwater:
        refused = login(headwater, ANN.uid, ANN.password)
        assert refused.status_code == 401
        assert "the directory could not be asked" in refused.json()["detail"]
        assert login(headwater, ADMIN, PASSWORD).status_code == 200
