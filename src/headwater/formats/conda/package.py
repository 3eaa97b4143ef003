"""Reading a conda package archive's metadata (info/index.json) without unpacking it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from headwater.errors import PackageArchiveError
from headwater.formats.archives import read_conda_package
from headwater.formats.conda import (
    KNOWN_SUBDIRS,
    filename_stem,
    is_package_filename,
    record_problem,
)
from headwater.inputs import MAX_BUILD_NUMBER, count_problem, field_problem, finite_number

INDEX_JSON = "info/index.json"

_REQUIRED_KEYS = ("name", "version", "build")


def read_index_json(path: Path, filename: str, *, inspect: bool = True) -> dict[str, Any]:
    """info/index.json of the package at `path`, which a client knows as `filename`.

    Raises PackageArchiveError with a sentence a user can act on when the archive is broken,
    lacks its index, or does not match its file name; with `inspect` (an upload), also when
    any member is unsafe to extract (formats/archives.py).
    """
    if not is_package_filename(filename):
        raise PackageArchiveError(
            f"{filename!r} is not a conda package file name (it must end in .conda or .tar.bz2)"
        )
    index = _extract_index(path, filename, inspect)
    missing = [key for key in _REQUIRED_KEYS if not isinstance(index.get(key), str)]
    if missing:
        raise PackageArchiveError(f"{filename}: info/index.json lacks {', '.join(missing)}")
    problem = _field_problem(index)
    if problem is not None:
        raise PackageArchiveError(f"{filename}: info/index.json: {problem}")
    expected = f"{index['name']}-{index['version']}-{index['build']}"
    if filename_stem(filename) != expected:
        raise PackageArchiveError(
            f"{filename}: the file name does not match its metadata, which says {expected}"
        )
    subdir = index.get("subdir") or "noarch"
    if subdir not in KNOWN_SUBDIRS:
        raise PackageArchiveError(f"{filename}: unknown subdir {subdir!r} in info/index.json")
    index["subdir"] = subdir
    return index


def _extract_index(path: Path, filename: str, inspect: bool) -> dict[str, Any]:
    found = read_conda_package(path, filename, lambda name: name == INDEX_JSON, inspect=inspect)
    if INDEX_JSON not in found:
        raise PackageArchiveError(f"{filename} has no info/index.json")
    try:
        document = orjson.loads(found[INDEX_JSON])
    except orjson.JSONDecodeError as error:
        raise PackageArchiveError(f"{filename}: info/index.json is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise PackageArchiveError(f"{filename}: info/index.json is not a JSON object")
    return document


def _field_problem(index: dict[str, Any]) -> str | None:
    """What in an index.json no repodata record (or column) can hold, or None."""
    build_number, timestamp = index.get("build_number", 0), index.get("timestamp")
    problem = count_problem(build_number, "build_number", MAX_BUILD_NUMBER)
    if problem is not None:
        return problem
    if timestamp is not None and not finite_number(timestamp):
        return f"timestamp {timestamp!r} is not a time"
    problem = record_problem(
        index["name"], index["version"], index["build"], build_number, 0, timestamp
    )
    if problem is not None:
        return problem
    for key in ("subdir", "license", "license_family", "noarch", "platform", "arch"):
        value = index.get(key)
        if value is not None and (problem := field_problem(value, key, 1000)) is not None:
            return problem
    for key in ("depends", "constrains", "track_features"):
        value = index.get(key, [])
        if key == "track_features" and isinstance(value, str):
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return f"{key} is not a list of text"
    return None
