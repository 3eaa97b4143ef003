"""Where an HTTP request carries its credentials, and the proof a browser form or script gives
that it comes from Headwater's own pages (CSRF); shared by the API, the repository and the UI."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from starlette.requests import Request

SESSION_COOKIE = "headwater_session"
# Proof for the forms shown before signing in (the sign-in form itself): a random value in a
# cookie that the form echoes.
FORM_COOKIE = "headwater_form"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
PIP_PASSWORD = "x-auth-token"
TWINE_USER = "__token__"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_token: str) -> str:
    """The value web forms and scripts echo back; derived from the session token, so nothing
    is kept, and useless to anyone who does not have the session."""
    return hashlib.sha256(b"headwater-csrf:" + session_token.encode()).hexdigest()


def form_proof(request: Request) -> str:
    """What a form on this page must echo: bound to the session when there is one, else to
    the pre-session cookie."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return csrf_token(session)
    return request.cookies.get(FORM_COOKIE, "")


def form_proven(request: Request, echoed: object) -> bool:
    expected = form_proof(request)
    return bool(expected) and isinstance(echoed, str) and hmac.compare_digest(echoed, expected)


def request_token(request: Request) -> str | None:
    """The token a request carries, wherever it is: the path of /api/repo/t/<token>/…, X-Auth,
    Authorization: Bearer, basic auth as pip and twine send it (user = token and password =
    x-auth-token, or user = __token__ and password = the token), or the UI's session cookie.

    The cookie counts for a request that changes something only with proof that it comes from
    Headwater's pages: the CSRF header the UI's scripts send, or a form whose proof was
    checked (`request.state.form_proven`, set by the UI before any route runs)."""
    if token := request.path_params.get("token"):
        return str(token)
    if token := request.headers.get("X-Auth"):
        return token
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    if scheme.lower() == "basic":
        return _basic_token(credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and (
        request.method in SAFE_METHODS
        or getattr(request.state, "form_proven", False)
        or hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), csrf_token(cookie))
    ):
        return cookie
    return None


def _basic_token(encoded: str) -> str | None:
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if password == PIP_PASSWORD:
        return user or None
    if user == TWINE_USER:  # twine's own convention: the token is the password
        return password or None
    return None


def client_address(request: Request) -> str:
    """Who is on the other end, as far as the server can tell (behind a proxy, uvicorn takes
    it from X-Forwarded-For when the proxy is trusted: FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client is not None else "unknown"
