"""Core metadata of a distribution: read from a wheel or sdist, or from a PEP 658 .metadata
file, and the license information in it."""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.metadata import parse_email

from headwater.errors import PackageArchiveError


@dataclass(frozen=True)
class CoreMetadata:
    name: str | None
    version: str | None
    requires_python: str | None = None
    license: str | None = None
    license_expression: str | None = None
    classifiers: tuple[str, ...] = field(default_factory=tuple)

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
    )


def read_metadata_bytes(path: Path, filename: str) -> bytes:
    """The METADATA (wheel) or PKG-INFO (sdist) inside the distribution at `path`."""
    try:
        if filename.endswith(".whl"):
            with zipfile.ZipFile(path) as archive:
                names = [
                    n
                    for n in archive.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
                ]
                if not names:
                    raise PackageArchiveError(f"{filename} has no .dist-info/METADATA")
                return archive.read(names[0])
        if filename.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                names = [
                    n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO")
                ]
                if not names:
                    raise PackageArchiveError(f"{filename} has no PKG-INFO")
                return archive.read(names[0])
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if (
                    member.isfile()
                    and member.name.count("/") == 1
                    and member.name.endswith("/PKG-INFO")
                ):
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
        raise PackageArchiveError(f"{filename} has no PKG-INFO")
    except PackageArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
        raise PackageArchiveError(f"{filename} is not a readable distribution: {error}") from None
