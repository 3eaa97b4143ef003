"""A real OpenID Connect provider on loopback (oidc-provider-mock): its users carry the claims
Headwater reads, a browser signs in on its page, and it checks PKCE as real providers do."""

from __future__ import annotations

import base64
import hashlib
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

import flask
import httpx
from playwright.sync_api import Page

with warnings.catch_warnings():
    # The mock imports parts of authlib that authlib deprecates; nothing to change here.
    # authlib installs an "always" filter for its warnings on import, so it comes first.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore", DeprecationWarning)
    import oidc_provider_mock

CLIENT_ID = "headwater"
CLIENT_SECRET = "headwater's client secret"


@dataclass(frozen=True)
class Person:
    """Someone the provider knows: `sub` is its own name for them."""

    sub: str
    username: str
    email: str
    groups: tuple[str, ...] = ()

    @property
    def claims(self) -> dict[str, object]:
        return {"preferred_username": self.username, "email": self.email, "groups": [*self.groups]}


@dataclass
class Provider:
    issuer: str
    # The PKCE challenge each authorization code was issued for, as the provider keeps it.
    challenges: dict[str, str] = field(default_factory=dict)

    def set_person(self, person: Person) -> None:
        """Change what the provider says about someone (their groups), as an administrator
        of the provider would."""
        response = httpx.put(
            f"{self.issuer}/users/{quote(person.sub, safe='')}", json=person.claims
        )
        assert response.status_code == 204, response.text

    def authorize(self, url: str, sub: str) -> str:
        """Without a browser: the provider's answer to `url` (its authorization endpoint, as
        Headwater sent the browser there) once `sub` signs in; returns the redirect back."""
        response = httpx.post(url, data={"sub": sub})
        assert response.status_code == 302, response.text
        return response.headers["location"]


def sign_in_at_provider(page: Page, sub: str) -> None:
    """On the provider's page, as a person: type who you are and authorize Headwater."""
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize", exact=True).click()


@contextmanager
def oidc_provider(people: Iterable[Person]) -> Iterator[Provider]:
    """The provider on a free loopback port, stopped afterwards. Its issuer is the address it
    is reached at (the mock names itself after the Host header)."""
    users = [oidc_provider_mock.User(sub=p.sub, claims=p.claims) for p in people]
    with oidc_provider_mock.run_server_in_thread(require_nonce=True, user_claims=users) as server:
        provider = Provider(f"http://127.0.0.1:{server.server_port}")
        _require_pkce(server.app, provider.challenges)  # type: ignore[arg-type]
        yield provider


def _require_pkce(app: flask.Flask, challenges: dict[str, str]) -> None:
    """The mock ignores PKCE; real providers refuse an authorization request without an S256
    challenge and a code exchange whose verifier does not match it. Installed before the
    first request, as Flask requires."""

    @app.before_request
    def check_pkce() -> tuple[dict[str, str], int] | None:
        request = flask.request
        authorizing = request.path == "/oauth2/authorize" and request.method == "POST"
        if authorizing and request.args.get("code_challenge_method") != "S256":
            return {"error": "invalid_request", "error_description": "PKCE is required"}, 400
        if request.path == "/oauth2/token" and "code" in request.form:
            digest = hashlib.sha256(request.form.get("code_verifier", "").encode()).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if challenges.get(request.form["code"]) != expected:
                return {"error": "invalid_grant", "error_description": "wrong PKCE verifier"}, 400
        return None

    @app.after_request
    def keep_challenge(response: flask.Response) -> flask.Response:
        request = flask.request
        if request.path == "/oauth2/authorize" and response.location:
            for code in parse_qs(urlsplit(response.location).query).get("code", []):
                challenges[code] = request.args.get("code_challenge", "")
        return response
