"""HEADWATER_UPSTREAM_ALLOWLIST: which upstream URLs a mirror may reach, matched by origin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AllowedPrefix:
    """One entry of HEADWATER_UPSTREAM_ALLOWLIST: scheme, host, port (`*` for any) and path."""

    scheme: str
    host: str
    port: int | None  # None: any port
    path: str

    @classmethod
    def parse(cls, entry: str) -> AllowedPrefix:
        parts = urlsplit(entry.strip())
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"allowlist entry {entry!r} is not an http(s) URL")
        netloc_port = parts.netloc.rsplit(":", 1)[1] if ":" in parts.netloc.split("@")[-1] else ""
        port = None if netloc_port == "*" else (parts.port or _DEFAULT_PORTS[parts.scheme])
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        return cls(parts.scheme, parts.hostname.lower(), port, path)

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            return False
        return (
            parts.scheme == self.scheme
            and (parts.hostname or "").lower() == self.host
            and (self.port is None or port == self.port)
            and (parts.path or "/").startswith(self.path)
        )


def url_allowed(url: str, allowlist: Sequence[str]) -> bool:
    """Whether `url` falls under an allowlist entry: same scheme and host (exactly, so
    `https://conda.anaconda.org` does not admit `conda.anaconda.org.example.com`), same port
    (the scheme's default unless the entry names one; `:*` for any), and a path below it."""
    return any(AllowedPrefix.parse(entry).allows(url) for entry in allowlist)
