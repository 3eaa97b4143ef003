"""Reading advisories from where administrators keep them: a file (OSV JSON or YAML, NVD JSON),
a directory of such files, or a `.zip` of them (OSV's per-ecosystem `all.zip`)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import yaml

from headwater.cves.advisories import Advisory, parse_document
from headwater.errors import HeadwaterError, InvalidInputError, PackageArchiveError
from headwater.formats.archives import ArchiveLimits, open_zip, read_zip_member

SUFFIXES = (".json", ".yaml", ".yml")
# The largest single advisory document read (NVD's yearly files are a few hundred MB).
MAX_DOCUMENT_BYTES = 512 << 20
_LIMITS = ArchiveLimits(member_bytes=MAX_DOCUMENT_BYTES)
# libyaml's loader where PyYAML was built with it: ten times faster on the PYSEC database.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Reading:
    """What a read found: the advisories, and each file that could not be read, with why."""

    advisories: list[Advisory] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: int = 0


def parse_bytes(name: str, content: bytes) -> list[Advisory]:
    try:
        if name.endswith((".yaml", ".yml")):
            document = yaml.load(content, Loader=_YAML_LOADER)
        else:
            document = json.loads(content)
    except (ValueError, yaml.YAMLError) as error:
        raise InvalidInputError(
            f"{name}: not valid {'YAML' if 'y' in name[-4:] else 'JSON'}: {error}"
        ) from None
    return parse_document(document)


def _take(reading: Reading, name: str, content: bytes) -> None:
    reading.files += 1
    try:
        reading.advisories.extend(parse_bytes(name, content))
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        # A document of the right kind with the wrong shapes inside (a null where an object
        # belongs): one bad file does not stop the rest.
        reading.problems.append(f"{name}: malformed advisory ({type(error).__name__}: {error})")
    except HeadwaterError as error:
        reading.problems.append(
            f"{name}: {error.message}" if not error.message.startswith(name) else error.message
        )


def read_zip(source: Path | BinaryIO, reading: Reading) -> None:
    """Every advisory in a zip, read within the limits of formats/archives.py, each document
    at most MAX_DOCUMENT_BYTES; one that cannot be read is a problem, not the end."""
    with open_zip(source, "the zip", inspect=False, limits=_LIMITS) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.endswith(SUFFIXES):
                continue
            try:
                content = read_zip_member(archive, member.filename, "the zip", _LIMITS)
            except PackageArchiveError as error:
                reading.files += 1
                reading.problems.append(f"{member.filename}: skipped: {error.message}")
                continue
            _take(reading, member.filename, content)


def read_path(path: Path) -> Reading:
    """Every advisory under `path`: a file, a directory (recursively) or a zip."""
    reading = Reading()
    if path.is_dir():
        for file in sorted(_files(path)):
            _take(reading, str(file.relative_to(path)), file.read_bytes())
    elif zipfile.is_zipfile(path):
        try:
            read_zip(path, reading)
        except PackageArchiveError as error:
            raise InvalidInputError(f"{path}: {error.message}") from None
    elif path.is_file():
        _take(reading, path.name, path.read_bytes())
    else:
        raise InvalidInputError(f"{path} is not a file, a directory or a zip of advisories")
    return reading


def read_upload(name: str, stream: BinaryIO) -> Reading:
    """Advisories uploaded as one file (a zip of them, or one document)."""
    reading = Reading()
    head = stream.read(4)
    stream.seek(0)
    if name.endswith(".zip") or head == b"PK\x03\x04":
        try:
            read_zip(stream, reading)
        except PackageArchiveError as error:
            raise InvalidInputError(f"{name}: {error.message}") from None
        return reading
    content = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise InvalidInputError(f"{name} is larger than {MAX_DOCUMENT_BYTES >> 20} MiB")
    _take(reading, name, content)
    return reading


def _files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in SUFFIXES:
            yield path
