"""Keeping tokens out of log lines: the access log writes every request's URL, and a token can
ride in one (/api/repo/t/<token>/…, in any spelling of that path, or by mistake in a query)."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, quote, urlsplit

SHOWN = "***"
# What Headwater's tokens look like (secrets.token_urlsafe(32)): 43 URL-safe characters.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{40,}")
_SECRET_PARAMETER = re.compile(r"token|auth|key|secret|pass|session|signature", re.IGNORECASE)


def redact_target(target: str) -> str:
    """A request target (path and query) fit for a log: the segment after `t` in a repository
    path, every value of a parameter whose name suggests a secret, and anything shaped like a
    token are replaced by ***."""
    parts = urlsplit(target)
    path = _redact_path(parts.path)
    if not parts.query:
        return path
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{_shown_name(name)}={_redact_value(name, value)}" for name, value in pairs)
    return f"{path}?{query}"


def _shown_name(name: str) -> str:
    return SHOWN if _looks_like_token(name) else quote(name, safe="")


def _redact_path(path: str) -> str:
    segments = path.split("/")
    named = [index for index, segment in enumerate(segments) if segment]
    for position, index in enumerate(named):
        segment = segments[index]
        follows_t = (
            position >= 2
            and segments[named[position - 1]] == "t"
            and segments[named[position - 2]] == "repo"
        )
        if follows_t or _looks_like_token(segment):
            segments[index] = SHOWN
    return "/".join(segments)


def _redact_value(name: str, value: str) -> str:
    if _SECRET_PARAMETER.search(name) or _looks_like_token(value):
        return SHOWN
    return quote(value, safe="")


def _looks_like_token(text: str) -> bool:
    """Long runs of URL-safe characters with upper and lower case letters: tokens, not file
    names or hex digests."""
    return any(
        any(c.isupper() for c in run) and any(c.islower() for c in run)
        for run in _TOKEN_LIKE.findall(text)
    )


class RedactTokens(logging.Filter):
    """On uvicorn's access logger: its record's third argument is the request target."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str):
                args[2] = redact_target(args[2])
            record.args = tuple(args)
        return True


def keep_tokens_out_of_access_logs() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactTokens) for existing in access.filters):
        access.addFilter(RedactTokens())
