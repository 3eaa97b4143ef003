"""A blob store in a local directory: the embedded default."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from headwater.process import process_name
from headwater.storage.base import CHUNK_SIZE, BlobStore, StagedBlob


class LocalBlobStore(BlobStore):
    """Blobs as files under `root`. Each process stages its writes in a folder of its own,
    `.staging/<process>/`, so that what a crashed process left behind is known by its name."""

    def __init__(self, root: Path, owner: str | None = None) -> None:
        self.root = root
        self._staging_root = root / ".staging"
        self._staging = self._staging_root / (owner or process_name())
        self._staging.mkdir(parents=True, exist_ok=True)
        self._made: set[Path] = set()

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def stage(self) -> StagedBlob:
        self._staging.mkdir(parents=True, exist_ok=True)  # a sweep may have taken an empty one
        descriptor, name = tempfile.mkstemp(dir=self._staging)
        os.close(descriptor)
        return StagedBlob(Path(name))

    def commit(self, staged: StagedBlob, key: str) -> None:
        staged.close()
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        staged.committed = True

    def put(self, key: str, data: bytes) -> None:
        # Publishing writes tens of thousands of small shards: skip the hashing staging area
        # and write beside the target, then rename over it (atomic on POSIX).
        target = self._path(key)
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        with temporary.open("wb") as stream:
            stream.write(data)
        os.replace(temporary, target)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def read_range(self, key: str, offset: int, size: int) -> bytes:
        with self._path(key).open("rb") as stream:
            stream.seek(offset)
            return stream.read(size)

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        with self._path(key).open("rb") as stream:
            while chunk := stream.read(chunk_size):
                yield chunk

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return
        for directory, _, names in os.walk(base):
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in names:
                if not name.startswith("."):
                    yield f"{relative}/{name}"

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)
        self._made.clear()

    def sweep_staging(self, gone: Callable[[str], bool], before: float) -> int:
        removed = 0
        for folder in list(self._staging_root.iterdir()):
            ended = folder.is_dir() and folder != self._staging and gone(folder.name)
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
