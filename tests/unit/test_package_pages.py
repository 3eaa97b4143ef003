"""Where the pages of a package's Files list start: whole versions, unless one is too big."""

from __future__ import annotations

from headwater.services.packages import version_pages


def files(*counts: int) -> list[str]:
    """One version string a file: `counts[i]` files of version i."""
    return [str(index) for index, count in enumerate(counts) for _ in range(count)]


def test_a_page_holds_as_many_whole_versions_as_fit() -> None:
    assert version_pages(files(40, 40, 40, 40), 100) == [0, 80]
    assert version_pages(files(50, 50, 50), 100) == [0, 100]
    assert version_pages(files(20) * 1, 100) == [0]
    assert version_pages([], 100) == [0]


def test_a_version_larger_than_a_page_is_cut_and_its_rest_shares_the_next() -> None:
    assert version_pages(files(250, 30, 80), 100) == [0, 100, 200, 280]
    assert version_pages(files(10, 200, 10), 100) == [0, 10, 110, 210]
    assert version_pages(files(100, 100), 100) == [0, 100]
