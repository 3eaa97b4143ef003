"""A blob store in a local directory: the embedded default."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from headwater.storage.base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobStore,
    LocalFile,
    Sendable,
    StagedBlob,
    Staging,
    check_key,
)


class LocalBlobStore(BlobStore):
    """Blobs as files under `root`. Each process stages its writes in a folder of its own,
    `.staging/<process>/`, so that what a crashed process left behind is known by its name."""

    backend = "local"

    def __init__(self, root: Path, owner: str | None = None) -> None:
        self.root = root
        self.staging = Staging(root / ".staging", owner)
        self._made: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _parent_of(self, target: Path) -> None:
        # Publishing writes tens of thousands of shards and a run thousands of files: each
        # folder is made once per process, not asked of the filesystem every time.
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)

    def commit(self, staged: StagedBlob, key: str) -> None:
        target = self._path(key)
        self._parent_of(target)
        try:
            staged.moved_to(target)
        except FileNotFoundError:  # a collection took the (empty) folder meanwhile
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.moved_to(target)

    def put(self, key: str, data: bytes) -> None:
        # Beside the target, then renamed over it (atomic on POSIX): no hashing staging file.
        target = self._path(key)
        self._parent_of(target)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            stream = temporary.open("wb")
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            stream = temporary.open("wb")
        try:
            with stream:
                stream.write(data)
            os.replace(temporary, target)
        except BaseException:  # a full disk, a stop: leave no hidden half-file behind
            temporary.unlink(missing_ok=True)
            raise

    def stat(self, key: str) -> BlobInfo | None:
        try:
            found = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return BlobInfo(key, found.st_size, found.st_mtime)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def read_range(self, key: str, offset: int, size: int) -> bytes:
        with self._path(key).open("rb") as stream:
            stream.seek(offset)
            return stream.read(size)

    def chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        with self._path(key).open("rb") as stream:
            while chunk := stream.read(chunk_size):
                yield chunk

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._path(key).open("rb")

    def sendable(self, key: str, size: int, *, redirect: bool) -> Sendable:
        return LocalFile(self._path(key), size)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return
        for directory, folders, names in os.walk(base):
            folders[:] = [folder for folder in folders if not folder.startswith(".")]
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in names:
                if name.startswith("."):
                    continue  # a `put` in progress
                try:
                    found = os.stat(os.path.join(directory, name))
                except FileNotFoundError:
                    continue  # deleted meanwhile
                yield BlobInfo(f"{relative}/{name}", found.st_size, found.st_mtime)

    def check(self) -> None:
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise PermissionError(f"the blob directory {self.root} is not readable and writable")
        self.staging.folder.mkdir(parents=True, exist_ok=True)
