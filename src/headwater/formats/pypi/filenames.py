"""What a distribution's file name says: project, version, kind, and the platforms it runs on.

Platforms are conda subdirs, so that one `subdirs` filter speaks for both kinds of mirror:

| wheel platform tag | subdir |
|---|---|
| `any` (pure Python), and every sdist | noarch |
| `manylinux*`/`musllinux*`/`linux` `_x86_64` | linux-64 |
| `…_i686` | linux-32 |
| `…_aarch64` | linux-aarch64 |
| `…_ppc64le`, `…_s390x`, `…_armv7l` | linux-ppc64le, linux-s390x, linux-armv7l |
| `macosx_*_x86_64`, `…_intel` | osx-64 |
| `macosx_*_arm64` | osx-arm64 |
| `macosx_*_universal2` | osx-64 and osx-arm64 |
| `win_amd64`, `win32`, `win_arm64` | win-64, win-32, win-arm64 |

A wheel for any other platform (emscripten, …) has none of them and passes a subdirs rule
only when the rule is absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

_LINUX = re.compile(r"^(?:many|musl)?linux(?:1|2010|2014|_\d+_\d+)?_(\w+)$")
_LINUX_ARCH = {
    "x86_64": "linux-64",
    "i686": "linux-32",
    "aarch64": "linux-aarch64",
    "ppc64le": "linux-ppc64le",
    "s390x": "linux-s390x",
    "armv7l": "linux-armv7l",
}
_MACOS = re.compile(r"^macosx_\d+_\d+_(\w+)$")
_MACOS_ARCH = {
    "x86_64": ("osx-64",),
    "intel": ("osx-64",),
    "arm64": ("osx-arm64",),
    "universal2": ("osx-64", "osx-arm64"),
}
_WINDOWS = {"win_amd64": "win-64", "win32": "win-32", "win_arm64": "win-arm64"}


@dataclass(frozen=True)
class DistFilename:
    project: str  # PEP 503 normalized
    version: str
    kind: str  # "wheel" or "sdist"
    platforms: frozenset[str]


def parse_dist_filename(filename: str) -> DistFilename | None:
    """What the file name says, or None when it is no wheel or sdist name."""
    if "/" in filename or "\\" in filename:
        return None
    if filename.endswith(".whl"):
        try:
            name, version, _, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, ValueError):
            return None
        platforms = frozenset(p for tag in tags for p in platform_subdirs(tag.platform))
        return DistFilename(canonicalize_name(name), str(version), "wheel", platforms)
    if filename.endswith((".tar.gz", ".zip")):
        try:
            name, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, ValueError):
            return None
        return DistFilename(canonicalize_name(name), str(version), "sdist", frozenset({"noarch"}))
    return None


def platform_subdirs(platform: str) -> tuple[str, ...]:
    """The conda subdirs a wheel platform tag stands for."""
    if platform == "any":
        return ("noarch",)
    if platform in _WINDOWS:
        return (_WINDOWS[platform],)
    match = _LINUX.match(platform)
    if match and match.group(1) in _LINUX_ARCH:
        return (_LINUX_ARCH[match.group(1)],)
    match = _MACOS.match(platform)
    if match:
        return _MACOS_ARCH.get(match.group(1), ())
    return ()
