"""HEADWATER_UPSTREAM_ALLOWLIST matches by origin and path, not by string prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.allowlist import AllowedPrefix, named_addresses, normalize_path, url_allowed
from headwater.settings import Settings

ALLOWLIST = (
    "https://conda.anaconda.org/",
    "http://127.0.0.1:*",
    "http://mirror.internal:8080/conda",
)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://conda.anaconda.org/conda-forge/", True),
        ("https://CONDA.anaconda.org/conda-forge/", True),
        ("https://conda.anaconda.org.example.com/x/", False),
        ("http://conda.anaconda.org/conda-forge/", False),
        ("https://conda.anaconda.org:8443/x/", False),
        ("http://127.0.0.1:6379/", True),
        ("http://127.0.0.2:80/", False),
        ("http://mirror.internal:8080/conda/main/", True),
        ("http://mirror.internal:8080/condaX/", False),
        ("http://mirror.internal/conda/main/", False),
        ("http://user@mirror.internal:8080/conda/", True),
        # Paths are compared as the server reads them, not as strings.
        ("http://mirror.internal:8080/conda/../other/", False),
        ("http://mirror.internal:8080/conda/%2e%2e/other/", False),
        ("http://mirror.internal:8080/conda/%2E%2E/%2E%2E/x", False),
        ("http://mirror.internal:8080/conda\\..\\other/", False),
        ("http://mirror.internal:8080/conda/./main/../main/", True),
        ("http://mirror.internal:8080/conda", True),
        ("http://mirror.internal:8080/condo/../conda/main/", True),
        # Userinfo and look-alike authorities name the host after the last "@".
        ("http://mirror.internal:8080@127.0.0.2/conda/", False),
        ("http://conda.anaconda.org\\@evil.example/x/", False),
        ("https://conda.anaconda.org./conda-forge/", True),
        ("HTTPS://conda.anaconda.org:443/conda-forge/", True),
        ("file:///etc/passwd", False),
        ("not a url", False),
    ],
)
def test_matching(url: str, allowed: bool) -> None:
    assert url_allowed(url, ALLOWLIST) is allowed


def test_bad_entries_are_refused_when_settings_are_read() -> None:
    with pytest.raises(ValueError, match="is not an http"):
        AllowedPrefix.parse("ftp://example.com/")
    with pytest.raises(ValueError, match="is not an http"):
        Settings(upstream_allowlist="conda.anaconda.org")  # type: ignore[arg-type]
    assert Settings(
        upstream_allowlist="https://a.example/, http://b.example:*"
    ).upstream_allowlist == (  # type: ignore[arg-type]
        "https://a.example/",
        "http://b.example:*",
    )


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/b/../c", "/a/c"),
        ("/a/b/..", "/a/"),
        ("/../../x", "/x"),
        ("/a/./b/./", "/a/b/"),
        ("/a/%2e%2e/b", "/b"),
        ("/a\\..\\b/", "/b/"),
    ],
)
def test_paths_are_normalized_as_a_server_reads_them(path: str, normalized: str) -> None:
    assert normalize_path(path) == normalized


def test_entries_with_an_address_name_it() -> None:
    assert {str(address) for address in named_addresses(ALLOWLIST)} == {"127.0.0.1"}


@given(st.lists(st.text(alphabet="ab%2e./\\", max_size=6), max_size=6))
def test_a_path_reads_the_same_through_the_quick_look_and_the_full_normalizing(
    segments: list[str],
) -> None:
    """Paths with nothing to decode and no dot segment are taken as they are; the same path
    behind a `/.` (which forces the full normalizing) reads the same."""
    path = "/" + "/".join(segments)
    assert normalize_path(path) == normalize_path("/." + path)


@pytest.mark.parametrize(
    "path",
    [
        "/pypi/simple/%2f..%2f%2f..%2fadmin",  # a slash-merging server reads /admin
        "/pypi/simple/a%2f%2f..%2f..%2fadmin",
        "/pypi/simple/..;/admin",  # Tomcat reads ..; as ..
        "/pypi/simple/.;x/a",
    ],
)
def test_a_path_servers_read_two_ways_is_allowed_nowhere(path: str) -> None:
    assert not url_allowed("https://pypi.example" + path, ("https://pypi.example/pypi/simple/",))


@pytest.mark.parametrize(
    "path", ["/pypi/simple/a//b/c.whl", "/pypi/simple/a/../b/", "/pypi/simple/./a"]
)
def test_doubled_slashes_or_dot_segments_alone_are_read_one_way(path: str) -> None:
    assert url_allowed("https://pypi.example" + path, ("https://pypi.example/pypi/simple/",))
