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
import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
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
        """How far an archive of `compressed` bytes may expand while it is read."""
        return max(self.expansion_floor, self.expansion_ratio * compressed)


LIMITS = ArchiveLimits()


class ArchiveLimitError(PackageArchiveError):
    """An archive expands past a limit while being read."""


# What reading a broken archive raises, beside PackageArchiveError: the decompressors each have
# their own family (bz2 and gzip raise OSError, deflate zlib.error, xz LZMAError, zstd
# ZstdError), tarfile and zipfile theirs.
UNREADABLE = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)


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


@dataclass
class Expansion:
    """How far the archives of one file may expand, together (a .conda's components share it)."""

    limit: int
    used: int = 0


def read_tar(
    decompressed: IO[bytes],
    what: str,
    *,
    expansion: Expansion,
    wanted: Wanted,
    inspect: bool,
    kind: str = "archive",
    limits: ArchiveLimits = LIMITS,
) -> dict[str, bytes]:
    """The members `wanted` picks from a tar stream, read whole (each at most `member_bytes`).

    Without `inspect`, reading stops once a wanted member was found; with it, every member is
    checked. Every byte read, headers included, counts against `expansion`, and a member is
    refused by its header before its bytes would pass it; each member's extended headers get
    `header_bytes`. Members are not kept once looked at (tarfile would keep them all).
    """
    budget = _Budget(decompressed, limits.header_bytes, what)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=budget, mode="r|", encoding="utf-8") as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]
                if inspect:
                    problem = unsafe_tar_member(member)
                    if problem is not None:
                        raise PackageArchiveError(f"{what}: {problem}")
                picked = member.isfile() and wanted(member.name)
                if picked and member.size > limits.member_bytes:
                    raise ArchiveLimitError(
                        f"{what}: {member.name} is larger than {limits.member_bytes >> 20} MiB"
                    )
                if expansion.used + budget.position + member.size > expansion.limit:
                    raise ArchiveLimitError(f"{what} expands past {expansion.limit >> 20} MiB")
                budget.limit = budget.position + _padded(member.size) + limits.header_bytes
                if picked:
                    extracted = tar.extractfile(member)
                    found[member.name] = extracted.read() if extracted is not None else b""
                    if not inspect:
                        break
    except PackageArchiveError:
        raise
    except UNREADABLE as error:
        raise PackageArchiveError(f"{what} is not a readable {kind}: {error}") from None
    finally:
        expansion.used += budget.position
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


_SMALLEST_ENTRY = 46  # bytes of a central directory entry with an empty name
_SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


@contextmanager
def open_zip(
    source: Path | IO[bytes],
    what: str,
    *,
    inspect: bool,
    kind: str = "zip",
    limits: ArchiveLimits = LIMITS,
) -> Iterator[zipfile.ZipFile]:
    """A zip archive whose entries were counted before they were read, and (with `inspect`)
    checked: no path outside, no link, nothing encrypted or compressed in a way zipfile
    cannot read."""
    try:
        entries = zip_entry_count(source)
        if entries is not None and entries > limits.max_entries:
            raise ArchiveLimitError(f"{what} has {entries} entries, more than {limits.max_entries}")
        with zipfile.ZipFile(source) as archive:
            if inspect:
                for info in archive.infolist():
                    problem = unsafe_zip_entry(info)
                    if problem is not None:
                        raise PackageArchiveError(f"{what}: {problem}")
            yield archive
    except PackageArchiveError:
        raise
    except UNREADABLE as error:
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
    except UNREADABLE as error:
        raise PackageArchiveError(f"{what}: {name} cannot be read: {error}") from None


def zip_entry_count(source: Path | IO[bytes]) -> int | None:
    """How many entries a zip's end record says it has, or its central directory's size could
    hold (zipfile reads entries until that size is used up, whatever the count says), read
    before zipfile reads them all; None when there is no end record."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            return _entry_count(stream)
    try:
        return _entry_count(source)
    finally:
        source.seek(0)


def _entry_count(stream: IO[bytes]) -> int | None:
    size = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, size - (1 << 16) - 22))
    tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    directory = int.from_bytes(tail[at + 12 : at + 16], "little")
    locator = tail.rfind(b"PK\x06\x07", 0, at)
    if locator >= 0 and (count == 0xFFFF or directory == 0xFFFFFFFF):
        stream.seek(int.from_bytes(tail[locator + 8 : locator + 16], "little"))
        record = stream.read(56)
        if record[:4] == b"PK\x06\x06":
            count = int.from_bytes(record[32:40], "little")
            directory = int.from_bytes(record[40:48], "little")
    return max(count, directory // _SMALLEST_ENTRY)


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
    expansion = Expansion(limits.total_bytes(path.stat().st_size))
    if filename.endswith(".tar.bz2"):
        with bz2.open(path, "rb") as stream:
            return read_tar(
                stream,
                filename,
                expansion=expansion,
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
                        expansion=expansion,
                        wanted=picks,
                        inspect=inspect,
                        kind=CONDA,
                        limits=limits,
                    )
                )
    return found


def _size_of(source: Path | IO[bytes]) -> int:
    if isinstance(source, Path):
        return source.stat().st_size
    size = source.seek(0, 2)
    source.seek(0)
    return size


def _nothing(name: str) -> bool:
    return False


def read_sdist_tar(
    source: Path | IO[bytes],
    filename: str,
    wanted: Wanted,
    *,
    inspect: bool,
    limits: ArchiveLimits = LIMITS,
) -> dict[str, bytes]:
    expansion = Expansion(limits.total_bytes(_size_of(source)))
    with gzip.open(source, "rb") as stream:
        return read_tar(
            stream,  # type: ignore[arg-type]
            filename,
            expansion=expansion,
            wanted=wanted,
            inspect=inspect,
            kind="sdist",
            limits=limits,
        )
