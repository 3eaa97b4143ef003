"""The blob store interface every backend implements, and the staged upload that feeds it."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1 << 20


def content_key(sha256: str) -> str:
    """Where the bytes with this sha256 live: one copy, shared by every channel that holds them."""
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class StagedBlob:
    """Bytes being written to a local staging file, hashed as they arrive.

    Nothing is visible in the store until `commit`; `discard` (or leaving the `with` block
    without committing) removes the staging file.
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

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedBlob:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.committed:
            self.discard()


class BlobStore(ABC):
    """Keyed bytes. Package files use `content_key(sha256)`; indexes use their own keys."""

    @abstractmethod
    def stage(self) -> StagedBlob:
        """A new staging file on the store's side, to write and then `commit`."""

    @abstractmethod
    def commit(self, staged: StagedBlob, key: str) -> None:
        """Make the staged bytes visible under `key` (atomically: readers see all or nothing)."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int | None: ...

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    @abstractmethod
    def read_range(self, key: str, offset: int, size: int) -> bytes: ...

    @abstractmethod
    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]: ...

    @abstractmethod
    def local_path(self, key: str) -> Path | None:
        """A filesystem path for `key` when the store is local, so servers can use sendfile."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def delete_prefix(self, prefix: str) -> None:
        for key in list(self.list_keys(prefix)):
            self.delete(key)

    def has_content(self, sha256: str) -> bool:
        return self.exists(content_key(sha256))

    @abstractmethod
    def sweep_staging(self, gone: Callable[[str], bool], before: float) -> int:
        """Remove staging files a crash left behind: those of processes `gone` says ended,
        and any last written before `before` (a Unix time). Returns how many were removed."""
