"""Hostile package archives, built the way an attacker would: decompression bombs of a few
kilobytes, members outside the archive, links pointing out of it, odd zip entries."""

from __future__ import annotations

import bz2
import io
import json
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

GIB = 1 << 30
_ZEROS_64M = bz2.compress(bytes(64 << 20))  # 79 bytes


def index_json(name: str, version: str = "1.0", build: str = "0", **fields: object) -> bytes:
    document = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "subdir": "noarch",
        "depends": [],
        **fields,
    }
    return json.dumps(document).encode()


@dataclass(frozen=True)
class Member:
    """A tar member: a file with `content`, or a link (`link` set) of `kind` sym or hard."""

    name: str
    content: bytes = b""
    link: str | None = None
    kind: bytes = tarfile.SYMTYPE

    def header(self, size: int | None = None) -> bytes:
        info = tarfile.TarInfo(self.name)
        if self.link is not None:
            info.type = self.kind
            info.linkname = self.link
        else:
            info.size = len(self.content) if size is None else size
        return info.tobuf(format=tarfile.GNU_FORMAT)


def tar_bytes(members: list[Member]) -> bytes:
    out = io.BytesIO()
    for member in members:
        out.write(member.header())
        if member.link is None:
            out.write(member.content)
            out.write(bytes(-len(member.content) % 512))
    out.write(bytes(1024))
    return out.getvalue()


def tar_bz2(path: Path, members: list[Member]) -> Path:
    path.write_bytes(bz2.compress(tar_bytes(members)))
    return path


def tar_bz2_bomb(path: Path, bomb: str, size: int = GIB, after: Sequence[Member] = ()) -> Path:
    """A .tar.bz2 of a few kilobytes whose member `bomb` expands to `size` bytes of zeros:
    bzip2 streams may follow each other, so one compressed 64 MiB of zeros is repeated."""
    assert size % (64 << 20) == 0
    with path.open("wb") as out:
        out.write(bz2.compress(Member(bomb).header(size=size)))
        for _ in range(size // (64 << 20)):
            out.write(_ZEROS_64M)
        out.write(bz2.compress(tar_bytes(list(after))))
    return path


def conda(path: Path, info: list[Member], pkg: list[Member]) -> Path:
    """A .conda: a zip of metadata.json and the info and pkg components as .tar.zst."""
    stem = path.name.removesuffix(".conda")
    compress = zstandard.ZstdCompressor().compress
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        archive.writestr(f"pkg-{stem}.tar.zst", compress(tar_bytes(pkg)))
        archive.writestr(f"info-{stem}.tar.zst", compress(tar_bytes(info)))
    return path


def wheel_metadata(project: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode()


def wheel(
    path: Path, extra: dict[str, bytes] | None = None, *, metadata: bytes | None = None
) -> Path:
    """A wheel named by `path` (project-version-py3-none-any.whl) with METADATA and `extra`."""
    project, version = path.name.split("-")[:2]
    dist_info = f"{project}-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{dist_info}/METADATA", metadata or wheel_metadata(project, version))
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\n")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return path


def wheel_bomb(path: Path, size: int = GIB) -> Path:
    """A wheel of about a megabyte whose METADATA inflates to `size` bytes."""
    project, version = path.name.split("-")[:2]
    head = wheel_metadata(project, version) + b"Description: "
    member = f"{project}-{version}.dist-info/METADATA"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(member, "w", force_zip64=True) as out,
    ):
        out.write(head)
        chunk = b" " * (1 << 20)
        for _ in range((size - len(head)) // len(chunk)):
            out.write(chunk)
    return path


def with_zip_entry_patched(
    path: Path, name: str, *, flag_bits: int = 0, method: int | None = None
) -> Path:
    """Mark one entry encrypted, or give it a compression method zipfile cannot read, in both
    its local header and the central directory, as a crafted upload would."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    # (signature, flags, method, name length, name) offsets in a local and a central header
    for signature, flags_at, method_at, length_at, name_at in (
        (b"PK\x03\x04", 6, 8, 26, 30),
        (b"PK\x01\x02", 8, 10, 28, 46),
    ):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            length = int.from_bytes(data[start + length_at : start + length_at + 2], "little")
            if bytes(data[start + name_at : start + name_at + length]) == encoded:
                flags = int.from_bytes(data[start + flags_at : start + flags_at + 2], "little")
                data[start + flags_at : start + flags_at + 2] = (flags | flag_bits).to_bytes(
                    2, "little"
                )
                if method is not None:
                    data[start + method_at : start + method_at + 2] = method.to_bytes(2, "little")
            start += 4
    path.write_bytes(bytes(data))
    return path
