"""Reading package archives within limits: tar streams (conda's .tar.bz2 and .conda components,
sdists) and zip files (wheels, zip sdists, the .conda container).

A few hundred bytes of bzip2 or zstd can expand to gigabytes, and a member can claim a path
outside the archive or link to one. Every read here is bounded while it happens: a member read
into memory is refused past `member_bytes` (before its bytes are read, by its header), the whole
archive past `total_bytes` of expansion, and tar headers (pax records, GNU long names, which
tarfile reads whole) past `header_bytes`. With `inspect`, every member is looked at, and one
whose path is absolute or climbs out with `..`, a link pointing outside, or a device is refused.
"""

from __future__ import annotations

import bz2
import gzip
import io
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from headwater.errors import PackageArchiveError


@dataclass(frozen=True)
class ArchiveLimits:
    member_bytes: int = 16 << 20  # a metadata member read into memory
    header_bytes: int = 1 << 20  # extended tar headers, per member
    expansion_ratio: int = 100  # how many times its size an archive may expand to...
    expansion_floor: int = 256 << 20  # ...but never less than this
    max_entries: int = 250_000  # zip entries: each is an object in memory while reading
    zstd_window: int = 1 << 27  # zstd's own default limit

    def total_bytes(self, compressed: int) -> int:
        return max(self.expansion_floor, self.expansion_ratio * compressed)


LIMITS = ArchiveLimits()


class ArchiveLimitError(PackageArchiveError):
    """An archive expands past a limit while being read."""


Wanted = Callable[[str], bool]


# --- tar streams -------------------------------------------------------------------------------


class _Budget(io.RawIOBase):
    """A stream that may be read up to `limit` bytes from its start, and no further."""

    def __init__(self, inner: IO[bytes], limit: int, what: str) -> None:
        self.inner = inner
        self.limit = limit
        self.what = what
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.position >= self.limit:
            if self.inner.read(1):
                raise ArchiveLimitError(f"{self.what} expands past what it may")
            return 0
        view = memoryview(buffer)[: self.limit - self.position]
        data = self.inner.read(len(view))
        view[: len(data)] = data
        self.position += len(data)
        return len(data)


def read_tar(
    decompressed: IO[bytes],
    what: str,
    *,
    total: int,
    wanted: Wanted,
    inspect: bool,
    kind: str = "archive",
    limits: ArchiveLimits = LIMITS,
) -> dict[str, bytes]:
    """The members `wanted` picks from a tar stream, read whole (each at most `member_bytes`).

    Without `inspect`, reading stops once a wanted member was found; with it, every member is
    checked. The stream may expand to `total` bytes; each member's headers get `header_bytes`.
    """
    budget = _Budget(decompressed, limits.header_bytes, what)
    found: dict[str, bytes] = {}
    expanded = 0
    try:
        with tarfile.open(fileobj=budget, mode="r|", encoding="utf-8") as tar:
            for member in tar:
                if inspect:
                    problem = unsafe_tar_member(member)
                    if problem is not None:
                        raise PackageArchiveError(f"{what}: {problem}")
                picked = member.isfile() and wanted(member.name)
                if picked and member.size > limits.member_bytes:
                    raise ArchiveLimitError(
                        f"{what}: {member.name} is larger than {limits.member_bytes >> 20} MiB"
                    )
                expanded += member.size + tarfile.BLOCKSIZE
                if expanded > total:
                    raise ArchiveLimitError(f"{what} expands past {total >> 20} MiB")
                if picked:
                    budget.limit = budget.position + _padded(member.size) + limits.header_bytes
                    extracted = tar.extractfile(member)
                    found[member.name] = extracted.read() if extracted is not None else b""
                    if not inspect:
                        break
                budget.limit = budget.position + _padded(member.size) + limits.header_bytes
    except PackageArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zstandard.ZstdError) as error:
        raise PackageArchiveError(f"{what} is not a readable {kind}: {error}") from None
    return found


def _padded(size: int) -> int:
    return (size + 511) // 512 * 512


def unsafe_tar_member(member: tarfile.TarInfo) -> str | None:
    """Why extracting `member` anywhere would be unsafe, or None."""
    if member.ischr() or member.isblk() or member.isfifo():
        return f"{member.name!r} is a device or a pipe"
    if escapes(member.name):
        return f"{member.name!r} lies outside the archive"
    if member.issym():
        target = member.linkname.replace("\\", "/")
        if target.startswith("/") or escapes(
            posixpath.join(posixpath.dirname(member.name), target)
        ):
            return f"{member.name!r} links to {member.linkname!r}, outside the archive"
    if member.islnk() and escapes(member.linkname):
        return f"{member.name!r} links to {member.linkname!r}, outside the archive"
    return None


def escapes(path: str) -> bool:
    """Whether a member path is absolute or climbs above the archive's root (read the way any
    platform's extraction might: backslashes and drive letters included)."""
    path = path.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return True
    normalized = posixpath.normpath(path)
    return normalized == ".." or normalized.startswith("../")


# --- zip files ---------------------------------------------------------------------------------


_SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


@contextmanager
def open_zip(
    path: Path, what: str, *, inspect: bool, kind: str = "zip", limits: ArchiveLimits = LIMITS
) -> Iterator[zipfile.ZipFile]:
    """A zip archive whose entries were counted before they were read, and (with `inspect`)
    checked: no path outside, no link, nothing encrypted or compressed in a way zipfile
    cannot read."""
    entries = zip_entry_count(path)
    if entries is not None and entries > limits.max_entries:
        raise ArchiveLimitError(f"{what} has {entries} entries, more than {limits.max_entries}")
    try:
        with zipfile.ZipFile(path) as archive:
            if inspect:
                for info in archive.infolist():
                    problem = unsafe_zip_entry(info)
                    if problem is not None:
                        raise PackageArchiveError(f"{what}: {problem}")
            yield archive
    except PackageArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        raise PackageArchiveError(f"{what} is not a readable {kind}: {error}") from None


def unsafe_zip_entry(info: zipfile.ZipInfo) -> str | None:
    if escapes(info.filename):
        return f"{info.filename!r} lies outside the archive"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"{info.filename!r} is a link"
    if info.flag_bits & 0x1:
        return f"{info.filename!r} is encrypted"
    if info.compress_type not in _SUPPORTED:
        return f"{info.filename!r} uses compression method {info.compress_type}, not supported"
    return None


def read_zip_member(
    archive: zipfile.ZipFile, name: str, what: str, limits: ArchiveLimits = LIMITS
) -> bytes:
    """One entry, read only if it is small enough; problems reading it are the archive's."""
    info = archive.getinfo(name)
    problem = unsafe_zip_entry(info)
    if problem is not None:
        raise PackageArchiveError(f"{what}: {problem}")
    if info.file_size > limits.member_bytes:
        raise ArchiveLimitError(f"{what}: {name} is larger than {limits.member_bytes >> 20} MiB")
    try:
        with archive.open(info) as member:
            return member.read(limits.member_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise PackageArchiveError(f"{what}: {name} cannot be read: {error}") from None


def zip_entry_count(path: Path) -> int | None:
    """How many entries a zip's end record says it has, read before zipfile reads them all;
    None when there is no end record (zipfile will then say what is wrong)."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        stream.seek(max(0, size - (1 << 16) - 22))
        tail = stream.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            return None
        count = int.from_bytes(tail[at + 10 : at + 12], "little")
        if count != 0xFFFF:
            return count
        locator = tail.rfind(b"PK\x06\x07", 0, at)
        if locator < 0:
            return count
        offset = int.from_bytes(tail[locator + 8 : locator + 16], "little")
        stream.seek(offset)
        record = stream.read(56)
        if record[:4] != b"PK\x06\x06":
            return None
        return int.from_bytes(record[32:40], "little")


# --- package formats ---------------------------------------------------------------------------


CONDA = "conda package"


def read_conda_package(
    path: Path,
    filename: str,
    wanted: Wanted,
    *,
    inspect: bool,
    limits: ArchiveLimits = LIMITS,
) -> dict[str, bytes]:
    """Members of a conda package: from the whole tarball of a `.tar.bz2`, from the info
    component of a `.conda` (whose pkg component is inspected too, when asked)."""
    total = limits.total_bytes(path.stat().st_size)
    if filename.endswith(".tar.bz2"):
        with bz2.open(path, "rb") as stream:
            return read_tar(
                stream,
                filename,
                total=total,
                wanted=wanted,
                inspect=inspect,
                kind=CONDA,
                limits=limits,
            )
    found: dict[str, bytes] = {}
    with open_zip(path, filename, inspect=inspect, kind=CONDA, limits=limits) as archive:
        components = [
            info
            for info in archive.infolist()
            if info.filename.endswith(".tar.zst") and (inspect or info.filename.startswith("info-"))
        ]
        if not any(info.filename.startswith("info-") for info in components):
            raise PackageArchiveError(
                f"{filename} has no info component (info-*.tar.zst) at its top level"
            )
        for info in components:
            reader = zstandard.ZstdDecompressor(max_window_size=limits.zstd_window)
            with archive.open(info) as raw, reader.stream_reader(raw) as stream:
                picks = wanted if info.filename.startswith("info-") else _nothing
                found.update(
                    read_tar(
                        stream,
                        f"{filename}:{info.filename}",
                        total=total,
                        wanted=picks,
                        inspect=inspect,
                        kind=CONDA,
                        limits=limits,
                    )
                )
    return found


def _nothing(name: str) -> bool:
    return False


def read_sdist_tar(
    path: Path, filename: str, wanted: Wanted, *, inspect: bool, limits: ArchiveLimits = LIMITS
) -> dict[str, bytes]:
    total = limits.total_bytes(path.stat().st_size)
    with gzip.open(path, "rb") as stream:
        return read_tar(
            stream,  # type: ignore[arg-type]
            filename,
            total=total,
            wanted=wanted,
            inspect=inspect,
            kind="sdist",
            limits=limits,
        )
