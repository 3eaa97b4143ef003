"""Where an HTTP request carries its credentials; shared by the API, the repository and the UI."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from headwater.services.auth import csrf_token

SESSION_COOKIE = "headwater_session"
CSRF_HEADER = "X-CSRF-Token"
PIP_PASSWORD = "x-auth-token"
TWINE_USER = "__token__"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_token(request: Request) -> str | None:
    """The API token of a request: X-Auth, Authorization: Bearer, or the web UI's session cookie.

    The cookie counts for unsafe methods only together with the CSRF header the UI sends, so
    another site cannot act with a signed-in browser's cookie.
    """
    if token := request.headers.get("X-Auth"):
        return token
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and (
        request.method in _SAFE_METHODS or request.headers.get(CSRF_HEADER) == csrf_token(cookie)
    ):
        return cookie
    return None


def repository_token(request: Request, path_token: str | None) -> str | None:
    """A token for the repository URLs: from the path (/api/repo/t/<token>/...), the API
    headers, or basic auth as pip and twine send it (user = token, password = x-auth-token;
    or user = __token__, password = token)."""
    if path_token:
        return path_token
    if token := request_token(request):
        return token
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if password == PIP_PASSWORD:
            return user
        if user == TWINE_USER:  # twine's own convention: the token is the password
            return password
    return None


def client_address(request: Request) -> str:
    """Who is on the other end, as far as the server can tell (behind a proxy, uvicorn takes
    it from X-Forwarded-For when the proxy is trusted: FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client is not None else "unknown"
