"""The blob store contract, held by every backend: the local directory and S3 (moto's server on
loopback). Staged writes become visible only when committed, whole; keys cannot leave the store;
ranges, listings, deletions and presigned URLs behave alike."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from headwater.errors import BlobStoreUnavailableError
from headwater.process import is_gone, process_name
from headwater.storage import BlobStore, Chunks, LocalBlobStore, LocalFile, Redirect, content_key
from tests.support.s3 import S3Endpoint


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    s3: S3Endpoint = request.getfixturevalue("s3")
    yield s3.store(s3.new_bucket(), tmp_path / "staging")


def test_staged_bytes_are_hashed_and_invisible_until_committed(store: BlobStore) -> None:
    with store.stage() as staged:
        staged.write(b"hello ")
        staged.write(b"world")
        key = content_key(staged.sha256)
        assert store.stat(key) is None
        store.commit(staged, key)
    assert staged.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert staged.md5 == hashlib.md5(b"hello world").hexdigest()
    assert store.read(key) == b"hello world"
    info = store.stat(key)
    assert info is not None and info.size == 11 and info.key == key
    assert abs(info.modified - time.time()) < 300
    assert store.read_range(key, 6, 5) == b"world"
    assert b"".join(store.chunks(key, chunk_size=4)) == b"hello world"
    with store.open(key) as stream:
        stream.seek(6)
        assert stream.read(3) == b"wor"
        stream.seek(-2, os.SEEK_END)
        assert stream.read() == b"ld"


def test_a_large_blob_goes_in_parts_and_comes_back_whole(store: BlobStore) -> None:
    data = os.urandom(12 << 20)  # over S3's 5 MiB part size: a multipart upload
    with store.stage() as staged:
        for start in range(0, len(data), 1 << 20):
            staged.write(data[start : start + (1 << 20)])
        store.commit(staged, content_key(staged.sha256))
    key = content_key(hashlib.sha256(data).hexdigest())
    assert b"".join(store.chunks(key)) == data
    assert store.read_range(key, (12 << 20) - 3, 10) == data[-3:]


def test_leaving_without_commit_discards(store: BlobStore) -> None:
    with store.stage() as staged:
        staged.write(b"partial")
        path = staged.path
    assert not path.exists()
    assert list(store.list("blobs/")) == []


def test_put_list_delete(store: BlobStore) -> None:
    store.put("indexes/1/linux-64/a.json", b"{}")
    store.put("indexes/1/noarch/b.json", b"[]")
    store.put("indexes/2/noarch/c.json", b"[1]")
    assert sorted((info.key, info.size) for info in store.list("indexes/1/")) == [
        ("indexes/1/linux-64/a.json", 2),
        ("indexes/1/noarch/b.json", 2),
    ]
    store.delete(["indexes/1/linux-64/a.json", "indexes/1/never-there.json"])
    assert store.stat("indexes/1/linux-64/a.json") is None
    with pytest.raises(FileNotFoundError):
        store.read("indexes/1/linux-64/a.json")
    assert sorted(info.key for info in store.list("indexes/")) == [
        "indexes/1/noarch/b.json",
        "indexes/2/noarch/c.json",
    ]


def test_a_put_replaces_whole(store: BlobStore) -> None:
    store.put("indexes/1/noarch/x.json", b"first")
    store.put("indexes/1/noarch/x.json", b"second, longer")
    assert store.read("indexes/1/noarch/x.json") == b"second, longer"


@pytest.mark.parametrize("key", ["../escape", "blobs/../../x", "/etc/passwd", "a//b", ""])
def test_keys_cannot_leave_the_store(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.read(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put(key, b"x")


def test_a_reachable_store_passes_its_check(store: BlobStore) -> None:
    store.check()


def test_a_blob_is_sent_as_a_file_a_stream_or_a_redirect(store: BlobStore) -> None:
    store.put("blobs/aa/bb/" + "a" * 64, b"package bytes")
    key = "blobs/aa/bb/" + "a" * 64
    streamed = store.sendable(key, 13, redirect=False)
    redirected = store.sendable(key, 13, redirect=True)
    if isinstance(store, LocalBlobStore):
        assert isinstance(streamed, LocalFile) and streamed.path.read_bytes() == b"package bytes"
        assert isinstance(redirected, LocalFile)  # a directory has no presigned URLs
        return
    assert isinstance(streamed, Chunks) and b"".join(streamed.chunks) == b"package bytes"
    assert isinstance(redirected, Redirect)
    assert "X-Amz-Signature=" in redirected.url and "X-Amz-Expires=300" in redirected.url
    assert httpx.get(redirected.url).content == b"package bytes"


def test_an_unreachable_s3_store_fails_its_check(tmp_path: Path) -> None:
    from headwater.storage.s3 import S3BlobStore
    from tests.support.s3 import _free_port

    nobody = S3BlobStore(
        "bucket",
        tmp_path / "staging",
        endpoint=f"http://127.0.0.1:{_free_port()}",
        region="us-east-1",
        access_key_id="x",
        secret_access_key="y",
    )
    for attempt in (nobody.check, lambda: nobody.read("blobs/aa/bb/" + "a" * 64)):
        with pytest.raises(
            BlobStoreUnavailableError, match=r"\(bucket 'bucket'\) could not be reached"
        ):
            attempt()


def test_a_sweep_removes_what_ended_processes_and_old_crashes_left(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    here = socket.gethostname()
    scope = process_name().split(":")[2].split("-")[0]  # this boot and pid namespace
    ours = LocalBlobStore(tmp_path)
    dead = LocalBlobStore(tmp_path, owner=f"{here}:{ended.pid}:{scope}-0000")
    elsewhere = LocalBlobStore(tmp_path, owner="another-machine:1:abcd-0000")
    # A container sharing the host name, with pids of its own: its pid says nothing here.
    neighbour = LocalBlobStore(tmp_path, owner=f"{here}:{ended.pid}:other-0000")
    former_self = LocalBlobStore(tmp_path, owner=f"{here}:{os.getpid()}:{scope}-0000")
    kept = [ours.stage(), elsewhere.stage(), neighbour.stage()]
    left = [dead.stage(), former_self.stage()]
    stale = elsewhere.stage()
    for staged in [*kept, *left, stale]:
        staged.write(b"partial")
        staged.close()
    os.utime(stale.path, (time.time() - 7200, time.time() - 7200))

    assert is_gone(f"{here}:{ended.pid}:{scope}-0000") and not is_gone(process_name())
    assert not is_gone("another-machine:1:abcd-0000")
    assert not is_gone(f"{here}:{ended.pid}:other-0000")
    assert ours.staging.sweep(is_gone, before=time.time() - 3600) == 3
    assert [staged.path.exists() for staged in kept] == [True, True, True]
    assert not any(staged.path.exists() for staged in [*left, stale])
    with ours.stage() as again:  # its own folder is still usable
        again.write(b"x")
