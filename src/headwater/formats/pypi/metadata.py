"""Core metadata of a distribution: read from a wheel or sdist, or from a PEP 658 .metadata
file, and the license information and requirements (`Requires-Dist`) in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement

from headwater.errors import PackageArchiveError
from headwater.formats.archives import open_zip, read_sdist_tar, read_zip_member


@dataclass(frozen=True)
class CoreMetadata:
    name: str | None
    version: str | None
    requires_python: str | None = None
    license: str | None = None
    license_expression: str | None = None
    classifiers: tuple[str, ...] = field(default_factory=tuple)
    requires_dist: tuple[str, ...] = field(default_factory=tuple)  # PEP 508 requirements

    @property
    def license_classifiers(self) -> tuple[str, ...]:
        return tuple(c for c in self.classifiers if c.startswith("License ::"))


def parse_core_metadata(content: bytes | str) -> CoreMetadata:
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    raw, _ = parse_email(text)
    return CoreMetadata(
        name=raw.get("name"),
        version=raw.get("version"),
        requires_python=raw.get("requires_python"),
        license=raw.get("license"),
        license_expression=raw.get("license_expression"),
        classifiers=tuple(raw.get("classifiers") or ()),
        requires_dist=valid_requirements(raw.get("requires_dist") or ()),
    )


MAX_REQUIREMENTS = 1000  # Requires-Dist lines kept of one distribution
MAX_REQUIREMENT_LENGTH = 1000


def valid_requirements(lines: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The `Requires-Dist` lines that are PEP 508 requirements, within bounds. A line that does
    not parse is left out: installers refuse such a distribution anyway."""
    kept = []
    for line in lines[:MAX_REQUIREMENTS]:
        text = line.strip()
        if not text or len(text) > MAX_REQUIREMENT_LENGTH:
            continue
        try:
            Requirement(text)
        except InvalidRequirement:
            continue
        kept.append(text)
    return tuple(dict.fromkeys(kept))


def read_metadata_bytes(source: Path | IO[bytes], filename: str, *, inspect: bool = False) -> bytes:
    """The METADATA (wheel) or PKG-INFO (sdist) inside the distribution (a path, or a seekable
    file), read within the limits of formats/archives.py; with `inspect` (an upload), every
    member is checked."""
    if filename.endswith((".whl", ".zip")):
        return _from_zip(source, filename, inspect)
    found = read_sdist_tar(source, filename, _is_pkg_info, inspect=inspect)
    if not found:
        raise PackageArchiveError(f"{filename} has no PKG-INFO")
    return next(iter(found.values()))


def _from_zip(source: Path | IO[bytes], filename: str, inspect: bool) -> bytes:
    suffix = ".dist-info/METADATA" if filename.endswith(".whl") else "/PKG-INFO"
    kind = "wheel" if filename.endswith(".whl") else "sdist"
    with open_zip(source, filename, inspect=inspect, kind=kind) as archive:
        names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(suffix)]
        if not names:
            raise PackageArchiveError(f"{filename} has no {suffix.lstrip('/')}")
        return read_zip_member(archive, names[0], filename)


def _is_pkg_info(name: str) -> bool:
    return name.count("/") == 1 and name.endswith("/PKG-INFO")
