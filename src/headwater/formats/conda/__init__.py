"""Conda wire formats: subdirs, package filenames, repodata records, indexes and shards."""

from __future__ import annotations

import re
from typing import Any

from headwater.inputs import (
    MAX_BUILD_LENGTH,
    MAX_BUILD_NUMBER,
    MAX_PACKAGE_NAME_LENGTH,
    MAX_TIMESTAMP_MS,
    MAX_VERSION_LENGTH,
    count_problem,
    field_problem,
    finite_number,
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


def record_problem(fields: dict[str, Any]) -> str | None:
    """What in a package record (from repodata or an info/index.json) no column can hold:
    names too long or with control characters, counts and times out of range; None if fine."""
    timestamp = fields.get("timestamp")
    if timestamp is not None and not finite_number(timestamp):
        return f"timestamp {timestamp!r} is not a time"
    if timestamp is not None and not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        return f"timestamp {timestamp!r} is out of range"
    return (
        field_problem(fields.get("name"), "name", MAX_PACKAGE_NAME_LENGTH)
        or field_problem(fields.get("version"), "version", MAX_VERSION_LENGTH)
        or field_problem(fields.get("build", ""), "build", MAX_BUILD_LENGTH)
        or count_problem(fields.get("build_number", 0), "build_number", MAX_BUILD_NUMBER)
    )
