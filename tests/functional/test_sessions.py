"""The browser's session: its cookie's flags, the proof every form carries, and the headers
every page is sent with."""

from __future__ import annotations

import re

from tests.support.flows import form_proof, sign_in_page
from tests.support.server import ADMIN, PASSWORD, Headwater


def _cookie_header(response_headers: list[str], name: str) -> str:
    found = [header for header in response_headers if header.startswith(f"{name}=")]
    assert found, response_headers
    return found[0]


def test_the_session_cookie_is_httponly_samesite_and_secure_behind_tls(
    headwater: Headwater,
) -> None:
    with headwater.client() as browser:
        signed_in = sign_in_page(browser, ADMIN, PASSWORD)
        cookie = _cookie_header(signed_in.headers.get_list("set-cookie"), "headwater_session")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be lost
    # Behind a TLS-terminating proxy (trusted: loopback), the scheme it reports counts.
    # The client here speaks plain http to it, so it keeps no Secure cookie: it sends the
    # form's cookie back itself, as a browser on the https side would.
    with headwater.client() as browser:
        browser.headers["X-Forwarded-Proto"] = "https"
        page = browser.get("/login")
        form = _cookie_header(page.headers.get_list("set-cookie"), "headwater_form")
        assert "Secure" in form and "HttpOnly" in form
        proof = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert proof is not None
        signed_in = browser.post(
            "/login",
            data={"username": ADMIN, "password": PASSWORD, "csrf": proof.group(1)},
            headers={"Cookie": form.split(";", 1)[0]},
        )
        assert signed_in.status_code == 303, signed_in.text
        cookie = _cookie_header(signed_in.headers.get_list("set-cookie"), "headwater_session")
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_every_form_needs_its_proof_the_sign_in_form_too(headwater: Headwater) -> None:
    with headwater.client() as browser:
        forged = browser.post("/login", data={"username": ADMIN, "password": PASSWORD})
        assert forged.status_code == 403
        assert "headwater_session" not in forged.headers.get("set-cookie", "")
        assert sign_in_page(browser, ADMIN, PASSWORD).status_code == 303
        # Signed in, a form another site makes the browser send carries no proof.
        for proof in (None, "wrong", form_proof(headwater.client())):
            data = {"name": "made-elsewhere"}
            if proof is not None:
                data["csrf"] = proof
            assert browser.post("/channels", data=data).status_code == 403
        assert browser.post("/logout", data={}).status_code == 403
        # Nor do the API's scripts get in on the cookie without the CSRF header.
        assert browser.post("/api/channels", json={"name": "scripted"}).status_code == 401
        made = browser.post(
            "/channels", data={"name": "real", "csrf": form_proof(browser, "/channels")}
        )
        assert made.status_code == 303
        listed = {c["name"] for c in browser.get("/api/channels").json()["items"]}
        assert listed == {"real"}


def test_every_page_forbids_framing_and_inline_code(headwater: Headwater) -> None:
    with headwater.client() as browser:
        sign_in_page(browser, ADMIN, PASSWORD)
        for path in ("/login", "/channels", "/account", "/channels/none/packages", "/cves"):
            response = browser.get(path)
            policy = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
            assert "style-src 'self'" in policy and "'unsafe-inline'" not in policy, path
            assert response.headers["x-frame-options"] == "DENY", path
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert "<script>" not in response.text and "style=" not in response.text, path
