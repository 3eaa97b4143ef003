"""Which content coding of repodata.json a client gets (gzip or zstd, when its Accept-Encoding
allows), and the entity tag each coding carries.

Both encoded bodies are stored beside the index when it is published: the gzip one as its own
artifact, the zstd one is the `.json.zst` artifact itself. Each coding is its own
representation with its own ETag (`"<sha256>"`, `"<sha256>-gzip"`, `"<sha256>-zstd"`), and
responses say `Vary: Accept-Encoding`. A client revalidating with the tag of another coding of
the same bytes is answered 304 all the same, as Apache's mod_deflate does: the document has not
changed, and conda clients keep the ETag of whatever they last decoded.
"""

from __future__ import annotations

from functools import lru_cache

IDENTITY = "identity"
GZIP = "gzip"
ZSTD = "zstd"
CODINGS = (ZSTD, GZIP)  # preferred first at equal weight: the smaller, the faster to decode
_SUFFIXES = tuple(f"-{coding}" for coding in CODINGS)
_LONGEST_CACHED = 256  # Accept-Encoding values kept parsed; longer ones are parsed each time


def negotiate(accept_encoding: str | None, available: frozenset[str]) -> str:
    """The coding to send among `available` (besides identity), by the client's weights."""
    if not accept_encoding or not available:
        return IDENTITY
    weights = (
        _weights(accept_encoding)
        if len(accept_encoding) <= _LONGEST_CACHED
        else _weights.__wrapped__(accept_encoding)
    )
    best, best_weight = IDENTITY, 0.0
    for coding in CODINGS:
        weight = weights.get(coding, weights.get("*", 0.0))
        if coding in available and weight > best_weight:
            best, best_weight = coding, weight
    return best


@lru_cache(maxsize=128)
def _weights(accept_encoding: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, parameters = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        weight = 1.0
        name, _, value = parameters.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                weight = 0.0
        weights[coding] = weight
    return weights


def coded_etag(sha256: str, coding: str) -> str:
    return f'"{sha256}"' if coding == IDENTITY else f'"{sha256}-{coding}"'


def matches_any_coding(if_none_match: str, sha256: str) -> bool:
    """Whether If-None-Match names this document in any of its codings (or `*`)."""
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        if tag == "*" or tag == sha256:
            return True
        for suffix in _SUFFIXES:
            if tag.endswith(suffix) and tag[: -len(suffix)] == sha256:
                return True
    return False
