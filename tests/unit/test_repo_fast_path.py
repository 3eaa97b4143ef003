"""The pure parts of conda's fast path: which URLs it takes, content codings and their tags,
the bounds of what it keeps in memory."""

from __future__ import annotations

import pytest

from headwater.page_cache import BlobCache, Recent
from headwater.repo.conda_fast_path import CondaAddress, conda_address
from headwater.repo.encodings import GZIP, IDENTITY, ZSTD, coded_etag, matches_any_coding, negotiate

SHA = "ab" * 32
BOTH = frozenset({GZIP, ZSTD})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/api/repo/forge/linux-64/repodata.json",
            CondaAddress("forge", "linux-64", "index", "repodata.json"),
        ),
        (
            "/api/repo/forge/noarch/repodata_shards.msgpack.zst",
            CondaAddress("forge", "noarch", "index", "repodata_shards.msgpack.zst"),
        ),
        (
            f"/api/repo/forge/linux-64/shards/{SHA}.msgpack.zst",
            CondaAddress("forge", "linux-64", "shard", SHA),
        ),
        (
            "/api/repo/t/tok/forge/osx-arm64/a-1.0-0.conda",
            CondaAddress("forge", "osx-arm64", "package", "a-1.0-0.conda", "tok"),
        ),
        (
            "/api/repo/forge/linux-64/a-1.0-0.tar.bz2",
            CondaAddress("forge", "linux-64", "package", "a-1.0-0.tar.bz2"),
        ),
    ],
)
def test_conda_urls_the_fast_path_takes(path: str, expected: CondaAddress) -> None:
    assert conda_address(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/repo/forge@3/linux-64/repodata.json",  # pinned: the application's
        "/api/repo/forge/linux-65/repodata.json",
        "/api/repo/forge/linux-64/repodata.json.bz2",
        "/api/repo/forge/linux-64/shards/../../etc",
        f"/api/repo/forge/linux-64/shards/{SHA.upper()}.msgpack.zst",
        f"/api/repo/forge/linux-64/shards/{SHA}0.msgpack.zst",
        "/api/repo/forge/linux-64/../../x.conda",
        "/api/repo/forge/linux-64/sub/a-1.0-0.conda",
        "/api/repo/t//forge/linux-64/repodata.json",
        "/api/repo/forge/simple/",
        "/api/repo/forge/linux-64/",
        "/api/channels/forge",
    ],
)
def test_anything_else_goes_to_the_application(path: str) -> None:
    assert conda_address(path) is None


@pytest.mark.parametrize(
    ("accept_encoding", "available", "expected"),
    [
        (None, BOTH, IDENTITY),
        ("", BOTH, IDENTITY),
        ("gzip, deflate", BOTH, GZIP),
        ("gzip, deflate, br, zstd", BOTH, ZSTD),
        ("gzip, deflate, br, zstd", frozenset({ZSTD}), ZSTD),
        ("gzip", frozenset({ZSTD}), IDENTITY),
        ("zstd;q=0.5, gzip", BOTH, GZIP),
        ("ZSTD;Q=1.0", BOTH, ZSTD),
        ("*", BOTH, ZSTD),
        ("*;q=0, identity", BOTH, IDENTITY),
        ("gzip;q=0", BOTH, IDENTITY),
        ("gzip;q=nonsense", BOTH, IDENTITY),
        ("br", BOTH, IDENTITY),
        ("x" * 5000 + ", gzip", BOTH, GZIP),
    ],
)
def test_the_coding_a_client_takes_best(
    accept_encoding: str | None, available: frozenset[str], expected: str
) -> None:
    assert negotiate(accept_encoding, available) == expected


def test_each_coding_has_its_tag_and_any_of_them_revalidates_the_document() -> None:
    assert coded_etag(SHA, IDENTITY) == f'"{SHA}"'
    assert coded_etag(SHA, GZIP) == f'"{SHA}-gzip"'
    for tag in (f'"{SHA}"', f'"{SHA}-gzip"', f'W/"{SHA}-zstd"', f'"other", "{SHA}-zstd"', "*"):
        assert matches_any_coding(tag, SHA), tag
    for tag in ('"other"', f'"{SHA}-br"', f'"{SHA[:-1]}"', f'"x{SHA}-gzip"', ""):
        assert not matches_any_coding(tag, SHA), tag


def test_the_blob_cache_is_bounded_by_bytes_and_keeps_the_recently_used() -> None:
    cache = BlobCache(100, item_share=4)
    assert cache.item_limit == 25 and not cache.fits(26) and not cache.fits(0)
    cache.put("too big", b"x" * 26)
    assert cache.get("too big") is None
    for number in range(4):
        cache.put(number, bytes([number]) * 25)
    assert cache.get(0) is not None  # 0 is now the most recently used
    cache.put(4, b"y" * 25)
    assert cache.get(1) is None and cache.get(0) is not None and cache.get(4) is not None
    assert cache.size == 100


def test_recent_keeps_at_most_its_size() -> None:
    recent: Recent[int, str] = Recent(3)
    for number in range(10):
        recent.put(number, str(number))
    assert len(recent) == 3 and recent.get(9) == "9" and recent.get(6) is None
