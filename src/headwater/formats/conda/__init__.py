"""Conda wire formats: subdirs, package filenames, repodata records, indexes and shards."""

from __future__ import annotations

import re
from functools import lru_cache

import rattler

from headwater.inputs import (
    MAX_BUILD_LENGTH,
    MAX_BUILD_NUMBER,
    MAX_COUNT,
    MAX_PACKAGE_NAME_LENGTH,
    MAX_TIMESTAMP_MS,
    MAX_VERSION_LENGTH,
    field_problem,
    has_control_characters,
)

KNOWN_SUBDIRS = frozenset(
    {
        "noarch",
        "linux-32",
        "linux-64",
        "linux-aarch64",
        "linux-armv6l",
        "linux-armv7l",
        "linux-ppc64",
        "linux-ppc64le",
        "linux-riscv64",
        "linux-s390x",
        "osx-64",
        "osx-arm64",
        "win-32",
        "win-64",
        "win-arm64",
        "emscripten-wasm32",
        "wasi-wasm32",
        "zos-z",
    }
)

PACKAGE_EXTENSIONS = (".conda", ".tar.bz2")


def package_extension(filename: str) -> str | None:
    """The conda package extension `filename` ends with, or None if it is no conda package."""
    for extension in PACKAGE_EXTENSIONS:
        if filename.endswith(extension):
            return extension
    return None


_PACKAGE_FILENAME = re.compile(
    r"[^/\\.\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,290}\.(?:conda|tar\.bz2)"
)


def is_package_filename(filename: str) -> bool:
    """A bare file name (no path, no control character, at most 300 characters) ending in
    .conda or .tar.bz2."""
    return _PACKAGE_FILENAME.fullmatch(filename) is not None


def filename_stem(filename: str) -> str:
    extension = package_extension(filename)
    return filename[: -len(extension)] if extension else filename


def timestamp_ms(value: float | None) -> int | None:
    """A repodata timestamp in milliseconds; real repodata has both seconds and milliseconds."""
    if value is None:
        return None
    # 1e11 seconds is the year 5138, and 1e11 milliseconds is March 1973: no real package
    # predates that, so anything larger is milliseconds.
    return int(value) if value > 1e11 else int(value * 1000)


def record_problem(
    name: str, version: str, build: str, build_number: int, size: int, timestamp: float | None
) -> str | None:
    """What in a package record (from repodata or an info/index.json, its types checked) no
    column can hold: names too long or with control characters, counts and times out of
    range; None if fine. Half a million records go through here per conda-forge-sized run, so
    the common case is a handful of comparisons and one regular expression."""
    if (
        len(name) > MAX_PACKAGE_NAME_LENGTH
        or len(version) > MAX_VERSION_LENGTH
        or len(build) > MAX_BUILD_LENGTH
        or has_control_characters(name + version + build)
    ):
        return (
            field_problem(name, "name", MAX_PACKAGE_NAME_LENGTH)
            or field_problem(version, "version", MAX_VERSION_LENGTH)
            or field_problem(build, "build", MAX_BUILD_LENGTH)
        )
    if not 0 <= size <= MAX_COUNT:
        return f"size {size} is out of range"
    if not 0 <= build_number <= MAX_BUILD_NUMBER:
        return f"build_number {build_number} is out of range"
    if timestamp is not None and not 0 <= timestamp <= MAX_TIMESTAMP_MS:  # NaN fails too
        return f"timestamp {timestamp!r} is out of range"
    return None


@lru_cache(maxsize=65536)
def conda_version(text: str) -> rattler.Version | None:
    """The version as conda clients order it; None when they cannot read it."""
    try:
        return rattler.Version(text)
    except Exception:
        return None
