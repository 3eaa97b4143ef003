"""Where requests carry tokens, and the CSRF rule for the browser's cookie."""

from __future__ import annotations

import base64

import pytest
from starlette.requests import Request

from headwater.credentials import SESSION_COOKIE, csrf_token, request_token


def request(
    method: str = "GET", headers: dict[str, str] | None = None, cookie: str | None = None
) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookie:
        raw.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    return Request(
        {"type": "http", "method": method, "headers": raw, "path": "/", "query_string": b""}
    )


def test_headers() -> None:
    assert request_token(request(headers={"X-Auth": "t1"})) == "t1"
    assert request_token(request(headers={"Authorization": "Bearer t2"})) == "t2"
    assert request_token(request(headers={"Authorization": "Basic abc"})) is None
    assert request_token(request()) is None


def test_cookie_needs_the_csrf_header_for_unsafe_methods() -> None:
    assert request_token(request(cookie="c")) == "c"
    assert request_token(request("POST", cookie="c")) is None
    assert request_token(request("POST", headers={"X-CSRF-Token": "wrong"}, cookie="c")) is None
    assert (
        request_token(request("POST", headers={"X-CSRF-Token": csrf_token("c")}, cookie="c")) == "c"
    )


def test_pip_and_twine_basic_auth_and_path_tokens() -> None:
    basic = base64.b64encode(b"tok:x-auth-token").decode()
    assert request_token(request(headers={"Authorization": f"Basic {basic}"})) == "tok"
    twine = base64.b64encode(b"__token__:tok2").decode()
    assert request_token(request(headers={"Authorization": f"Basic {twine}"})) == "tok2"
    other = base64.b64encode(b"user:password").decode()
    assert request_token(request(headers={"Authorization": f"Basic {other}"})) is None
    in_path = request()
    in_path.scope["path_params"] = {"token": "from-path"}
    assert request_token(in_path) == "from-path"


TOKEN = "Jx9v_Q2k-pL8mZ3rT6wY1cB4nF7hD0sA5eG2uK8iO1q"  # as secrets.token_urlsafe(32) makes


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        (
            f"/api/repo/t/{TOKEN}/forge/noarch/repodata.json",
            "/api/repo/t/***/forge/noarch/repodata.json",
        ),
        (f"/api/repo//t/{TOKEN}/forge/", "/api/repo//t/***/forge/"),
        (f"/api/repo/t/{TOKEN}", "/api/repo/t/***"),
        ("/api/repo/t/short-one/forge/", "/api/repo/t/***/forge/"),
        (f"/api/channels?token={TOKEN}", "/api/channels?token=***"),
        ("/api/channels?x-auth=abc", "/api/channels?x-auth=***"),
        (f"/api/channels?offset=5&q={TOKEN}", "/api/channels?offset=5&q=***"),
        (f"/api/channels?{TOKEN}", "/api/channels?***="),
        (f"/api/channels/{TOKEN}/packages", "/api/channels/***/packages"),
        ("/api/repo/forge/noarch/shards/" + "ab" * 32 + ".msgpack.zst", None),
        ("/api/channels?offset=50&limit=100", None),
        ("/api/repo/forge/simple/some-really-long-package-name-for-testing-things/", None),
    ],
)
def test_access_logs_show_no_token_whatever_the_url_shape(target: str, shown: str | None) -> None:
    import logging

    from headwater.logs import RedactTokens

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", target, "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert TOKEN not in record.getMessage() and "short-one" not in record.getMessage()
    assert f"GET {shown or target} HTTP" in record.getMessage()
