"""Where requests carry tokens, and the CSRF rule for the browser's cookie."""

from __future__ import annotations

import base64

from starlette.requests import Request

from headwater.credentials import SESSION_COOKIE, repository_token, request_token
from headwater.services.auth import csrf_token


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


def test_pip_basic_auth_and_path_tokens() -> None:
    basic = base64.b64encode(b"tok:x-auth-token").decode()
    assert repository_token(request(headers={"Authorization": f"Basic {basic}"}), None) == "tok"
    other = base64.b64encode(b"user:password").decode()
    assert repository_token(request(headers={"Authorization": f"Basic {other}"}), None) is None
    assert repository_token(request(), "from-path") == "from-path"


def test_access_logs_do_not_show_path_tokens() -> None:
    import logging

    from headwater.cli.server import RedactPathTokens

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/repo/t/s3cret-token/forge/noarch/repodata.json", "1.1", 200),
        None,
    )
    assert RedactPathTokens().filter(record)
    assert "s3cret-token" not in record.getMessage()
    assert "/api/repo/t/***/forge/noarch/repodata.json" in record.getMessage()
