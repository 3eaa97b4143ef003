"""A blob store in an S3-compatible bucket (AWS S3, MinIO, Ceph, moto), through obstore.

Writes are staged on the local disk of the process writing (hashing needs the bytes once, and
a half-written upload must never appear under its key), then uploaded: S3 makes an object
visible only once its upload is complete, so readers see all or nothing. Large uploads go in
parts; an upload a crash interrupted leaves parts the bucket's lifecycle rule for incomplete
multipart uploads removes (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
import obstore.exceptions
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

from headwater.errors import BlobStoreUnavailableError
from headwater.storage.base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobStore,
    Chunks,
    Redirect,
    Sendable,
    StagedBlob,
    Staging,
    check_key,
)

_DELETE_BATCH = 1000  # the most keys one S3 DeleteObjects request takes


@contextmanager
def _reaching(bucket: str) -> Iterator[None]:
    """The bucket's failures as Headwater's: an absent key stays FileNotFoundError; anything
    else (the endpoint away, credentials refused) is BlobStoreUnavailableError, naming why
    without a traceback."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (obstore.exceptions.BaseError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BlobStoreUnavailableError(
            f"the blob store (bucket {bucket!r}) could not be reached: {first[:300]}"
        ) from None


class S3BlobStore(BlobStore):
    backend = "s3"

    def __init__(
        self,
        bucket: str,
        staging: Path,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        presigned_seconds: int = 300,
        owner: str | None = None,
    ) -> None:
        config: S3Config = {}
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = False
        if region:
            config["region"] = region
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        client: ClientConfig = {"timeout": "60s", "connect_timeout": "10s"}
        if endpoint and endpoint.startswith("http://"):
            client["allow_http"] = True
        self.bucket = bucket
        # A bucket that is away answers within seconds (a request waiting on a client, a run
        # failing with the reason), not after obstore's default three minutes of retries.
        retry: RetryConfig = {"max_retries": 3, "retry_timeout": dt.timedelta(seconds=20)}
        self._store = S3Store(bucket, config=config, client_options=client, retry_config=retry)
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._presigned = dt.timedelta(seconds=presigned_seconds)
        self.staging = Staging(staging, owner)

    def _path(self, key: str) -> str:
        return self._prefix + check_key(key)

    def commit(self, staged: StagedBlob, key: str) -> None:
        staged.close()
        with staged.readable() as stream, _reaching(self.bucket):
            obstore.put(self._store, self._path(key), stream)
        staged.committed = True
        staged.discard()

    def put(self, key: str, data: bytes) -> None:
        with _reaching(self.bucket):
            obstore.put(self._store, self._path(key), data)

    def stat(self, key: str) -> BlobInfo | None:
        try:
            with _reaching(self.bucket):
                meta = obstore.head(self._store, self._path(key))
        except FileNotFoundError:
            return None
        return BlobInfo(key, meta["size"], meta["last_modified"].timestamp())

    def read(self, key: str) -> bytes:
        with _reaching(self.bucket):
            return bytes(obstore.get(self._store, self._path(key)).bytes())

    def read_range(self, key: str, offset: int, size: int) -> bytes:
        if size <= 0:
            return b""
        with _reaching(self.bucket):
            path = self._path(key)
            return bytes(obstore.get_range(self._store, path, start=offset, length=size))

    def chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        with _reaching(self.bucket):
            result = obstore.get(self._store, self._path(key))
            for chunk in result.stream(min_chunk_size=chunk_size):
                yield bytes(chunk)

    def sendable(self, key: str, size: int, *, redirect: bool) -> Sendable:
        if redirect:
            with _reaching(self.bucket):
                url = obstore.sign(self._store, "GET", self._path(key), self._presigned)
            return Redirect(url)
        return Chunks(size, self.chunks(key))

    def delete(self, keys: Iterable[str]) -> None:
        paths = [self._path(key) for key in keys]
        for start in range(0, len(paths), _DELETE_BATCH):
            with _reaching(self.bucket):
                obstore.delete(self._store, paths[start : start + _DELETE_BATCH])

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        folder = self._prefix + prefix
        listing = iter(obstore.list(self._store, prefix=folder, chunk_size=1000))
        while True:
            with _reaching(self.bucket):
                batch = next(listing, None)
            if batch is None:
                return
            for meta in batch:
                yield BlobInfo(
                    meta["path"][len(self._prefix) :],
                    meta["size"],
                    meta["last_modified"].timestamp(),
                )

    def check(self) -> None:
        # A listing of one key: the bucket exists and the credentials may read it.
        with _reaching(self.bucket):
            next(iter(obstore.list(self._store, prefix=self._prefix, chunk_size=1)), None)
