"""Archives read within limits: headers count toward the expansion and are not kept, a zip's
entries are counted by its central directory, and broken streams are archive errors."""

from __future__ import annotations

import bz2
import io
import struct
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from headwater.errors import PackageArchiveError
from headwater.formats.archives import (
    ArchiveLimitError,
    ArchiveLimits,
    open_zip,
    read_conda_package,
    zip_entry_count,
)
from headwater.formats.pypi.metadata import read_metadata_bytes

INDEX = "info/index.json"
DOCUMENT = b'{"name": "p", "version": "1", "build": "0"}'


def pax_heavy(path: Path, members: int, comment: int) -> Path:
    """A .tar.bz2 whose members each carry a large pax header, then info/index.json."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for n in range(members):
            info = tarfile.TarInfo(f"info/f{n}")
            info.pax_headers = {"comment": "x" * comment}
            tar.addfile(info, io.BytesIO(b""))
        info = tarfile.TarInfo(INDEX)
        info.size = len(DOCUMENT)
        tar.addfile(info, io.BytesIO(DOCUMENT))
    path.write_bytes(bz2.compress(buffer.getvalue()))
    return path


def test_extended_headers_are_not_kept_in_memory(tmp_path: Path) -> None:
    package = pax_heavy(tmp_path / "p-1-0.tar.bz2", members=50, comment=900_000)
    assert package.stat().st_size < 1024
    tracemalloc.start()
    found = read_conda_package(package, package.name, lambda n: n == INDEX, inspect=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == {INDEX: DOCUMENT}
    assert peak < 16 << 20, peak


def test_extended_headers_count_toward_the_expansion(tmp_path: Path) -> None:
    package = pax_heavy(tmp_path / "p-1-0.tar.bz2", members=50, comment=900_000)
    small = ArchiveLimits(expansion_floor=8 << 20)
    with pytest.raises(ArchiveLimitError, match="expands past 8 MiB"):
        read_conda_package(package, package.name, lambda n: n == INDEX, inspect=True, limits=small)


def test_a_zip_is_counted_by_its_central_directory_not_by_what_it_claims(tmp_path: Path) -> None:
    path = tmp_path / "many-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(300):
            archive.writestr(f"many/{n}.py", b"")
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 1, 1)  # "one entry"
    path.write_bytes(bytes(data))
    assert zip_entry_count(path) >= 300
    with (
        pytest.raises(ArchiveLimitError, match="more than 100"),
        open_zip(path, path.name, inspect=False, limits=ArchiveLimits(max_entries=100)),
    ):
        pass


def test_a_broken_deflate_stream_is_an_archive_error(tmp_path: Path) -> None:
    path = tmp_path / "broken-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("broken-1.0.dist-info/METADATA", b"Name: broken\n" * 200)
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x03\x04") + 30 + len("broken-1.0.dist-info/METADATA")
    data[start : start + 8] = b"\xff" * 8  # the deflate stream, not the headers
    path.write_bytes(bytes(data))
    with pytest.raises(PackageArchiveError, match="cannot be read"):
        read_metadata_bytes(path, path.name)
