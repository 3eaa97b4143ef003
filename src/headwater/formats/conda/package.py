"""Reading a conda package archive's metadata (info/index.json) without unpacking it."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from conda_package_streaming.package_streaming import stream_conda_info

from headwater.errors import PackageArchiveError
from headwater.formats.conda import KNOWN_SUBDIRS, filename_stem, is_package_filename

_REQUIRED_KEYS = ("name", "version", "build")


def read_index_json(path: Path, filename: str) -> dict[str, Any]:
    """info/index.json of the package at `path`, which a client knows as `filename`.

    Raises PackageArchiveError with a sentence a user can act on when the archive is broken,
    lacks its index, or does not match its file name.
    """
    if not is_package_filename(filename):
        raise PackageArchiveError(
            f"{filename!r} is not a conda package file name (it must end in .conda or .tar.bz2)"
        )
    index = _extract_index(path, filename)
    missing = [key for key in _REQUIRED_KEYS if not isinstance(index.get(key), str)]
    if missing:
        raise PackageArchiveError(f"{filename}: info/index.json lacks {', '.join(missing)}")
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


def _inner_name(path: Path, filename: str) -> str:
    """The file name a .conda archive was built under, which names its inner components.

    A renamed .conda still says who it is inside; reading it under its true name lets the
    caller report the mismatch instead of failing to find the components.
    """
    if not filename.endswith(".conda"):
        return filename
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.startswith("info-") and member.endswith(".tar.zst"):
                return member.removeprefix("info-").removesuffix(".tar.zst") + ".conda"
    return filename


def _extract_index(path: Path, filename: str) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            for tar, member in stream_conda_info(_inner_name(path, filename), stream):
                if member.name == "info/index.json":
                    extracted = tar.extractfile(member)
                    if extracted is None:
                        break
                    document = json.loads(extracted.read())
                    if not isinstance(document, dict):
                        break
                    return document
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise PackageArchiveError(f"{filename} is not a readable conda package: {error}") from None
    except Exception as error:  # the decompressors raise their own families (bz2, zstd)
        raise PackageArchiveError(f"{filename} is not a readable conda package: {error}") from None
    raise PackageArchiveError(f"{filename} has no info/index.json")
