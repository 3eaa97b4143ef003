"""The blob store interface every backend implements, and the staged upload that feeds it.

Every operation blocks: the store is explicitly threaded. Code on an event loop calls it through
`asyncio.to_thread` (or Starlette's `run_in_threadpool`); code in a worker thread calls it
directly. Nothing above `storage/` learns where bytes live: a reader gets bytes, chunks or a
seekable file, and a server gets a `Sendable` saying how to hand a blob to its client.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from headwater.process import process_name

CHUNK_SIZE = 1 << 20


def content_key(sha256: str) -> str:
    """Where the bytes with this sha256 live: one copy, shared by every channel that holds them."""
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def content_sha256(key: str) -> str | None:
    """The sha256 of a package content key; None for any other key (an index artifact)."""
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == "blobs" and len(parts[3]) == 64:
        return parts[3]
    return None


def check_key(key: str) -> str:
    """A relative key without empty, `.` or `..` segments: no backend may be led outside its
    root or prefix by one."""
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}")
    return key


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob as its backend lists it."""

    key: str
    size: int
    modified: float  # Unix time of the write that made it


@dataclass(frozen=True)
class LocalFile:
    """Send this file from disk (zero-copy where the server can)."""

    path: Path
    size: int


@dataclass(frozen=True)
class Redirect:
    """Send the client to this URL (a presigned one): the backend serves the bytes itself."""

    url: str


@dataclass(frozen=True)
class Chunks:
    """Stream these chunks (each read blocks: iterate in a thread)."""

    size: int
    chunks: Iterator[bytes]


Sendable = LocalFile | Redirect | Chunks


class StagedBlob:
    """Bytes being written to a local staging file, hashed as they arrive.

    Every backend stages on the local disk of the process writing, so that a half-written blob
    is never visible under its key; `path` is that staging file (an upload is inspected there
    before anything is stored). Nothing is in the store until `BlobStore.commit`; `discard`
    (or leaving the `with` block without committing) removes the staging file. `write` blocks.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: BinaryIO | None = path.open("wb")
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.committed = False

    def write(self, chunk: bytes) -> None:
        assert self._stream is not None, "staged blob already closed"
        self._stream.write(chunk)
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()

    def readable(self) -> BinaryIO:
        """The staged bytes as a file to read (after `close`): what a commit copies from."""
        return self.path.open("rb")

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def moved_to(self, target: Path) -> None:
        """Rename the staging file to `target` (same filesystem): the local store's commit."""
        self.close()
        os.replace(self.path, target)
        self.committed = True

    def __enter__(self) -> StagedBlob:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.committed:
            self.discard()


class Staging:
    """A process's staging folder, `<root>/<process>/`: what a crashed process left behind is
    known by the folder's name."""

    def __init__(self, root: Path, owner: str | None = None) -> None:
        self.root = root
        self.folder = root / (owner or process_name())
        self.folder.mkdir(parents=True, exist_ok=True)

    def stage(self) -> StagedBlob:
        self.folder.mkdir(parents=True, exist_ok=True)  # a sweep may have taken an empty one
        descriptor, name = tempfile.mkstemp(dir=self.folder)
        os.close(descriptor)
        return StagedBlob(Path(name))

    def sweep(self, gone: Callable[[str], bool], before: float) -> int:
        """Remove the staging files of processes `gone` says ended, and any last written
        before `before` (a Unix time). Returns how many were removed."""
        removed = 0
        for folder in list(self.root.iterdir()):
            ended = folder.is_dir() and folder != self.folder and gone(folder.name)
            entries = [folder] if folder.is_file() else list(folder.iterdir())
            for entry in entries:
                try:
                    if ended or entry.stat().st_mtime < before:
                        entry.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue  # committed or discarded meanwhile
            if ended:
                shutil.rmtree(folder, ignore_errors=True)
        return removed


class BlobStore(ABC):
    """Keyed bytes. Package files use `content_key(sha256)`; indexes use their own keys."""

    backend: str  # "local" or "s3": what /readyz and the metrics name
    staging: Staging

    def stage(self) -> StagedBlob:
        """A new staging file on this process's disk, to write and then `commit`."""
        return self.staging.stage()

    @abstractmethod
    def commit(self, staged: StagedBlob, key: str) -> None:
        """Make the staged bytes visible under `key`, atomically: readers see all or nothing."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, atomically."""

    @abstractmethod
    def stat(self, key: str) -> BlobInfo | None:
        """The blob under `key`, or None when there is none."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The whole blob (index artifacts, metadata): raises FileNotFoundError when absent."""

    @abstractmethod
    def read_range(self, key: str, offset: int, size: int) -> bytes: ...

    @abstractmethod
    def chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The blob in chunks, read as they are consumed."""

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A seekable file of the blob (to read a wheel's METADATA out of its zip, say), reading
        ranges on demand: a remote backend does not fetch the whole blob for a small part."""
        info = self.stat(key)
        if info is None:
            raise FileNotFoundError(key)
        return io.BufferedReader(_RangeReader(self, key, info.size), buffer_size=256 << 10)

    @abstractmethod
    def sendable(self, key: str, size: int, *, redirect: bool) -> Sendable:
        """How a server hands the blob to a client: a local file, a redirect to a presigned URL
        (only when `redirect` and the backend has them), or chunks."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Delete these blobs; absent ones are no error."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Every blob whose key starts with `prefix` (a folder: `blobs/`, `indexes/3/`)."""

    @abstractmethod
    def check(self) -> None:
        """Raise OSError (or the backend's error) unless the store can be reached and read."""


class _RangeReader(io.RawIOBase):
    """A blob as a raw, seekable file: every read is a ranged read of the store."""

    def __init__(self, store: BlobStore, key: str, size: int) -> None:
        self._store = store
        self._key = key
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        data = self._store.read_range(self._key, self._position, wanted)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
