"""The local blob store: staged writes become visible only when committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.storage import LocalBlobStore, content_key


def test_staged_bytes_are_hashed_and_invisible_until_committed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with store.stage() as staged:
        staged.write(b"hello ")
        staged.write(b"world")
        key = content_key(staged.sha256)
        assert not store.exists(key)
        store.commit(staged, key)
    assert staged.sha256 == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    assert store.read(key) == b"hello world"
    assert store.size(key) == 11
    assert store.read_range(key, 6, 5) == b"world"
    assert b"".join(store.iter_chunks(key, chunk_size=4)) == b"hello world"


def test_leaving_without_commit_discards(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with store.stage() as staged:
        staged.write(b"partial")
        path = staged.path
    assert not path.exists()
    assert list(store.list_keys("blobs/")) == []


def test_put_list_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("indexes/1/linux-64/a.json", b"{}")
    store.put("indexes/1/noarch/b.json", b"[]")
    assert sorted(store.list_keys("indexes/1/")) == [
        "indexes/1/linux-64/a.json",
        "indexes/1/noarch/b.json",
    ]
    store.delete("indexes/1/linux-64/a.json")
    assert not store.exists("indexes/1/linux-64/a.json")
    store.delete_prefix("indexes/1/")
    assert list(store.list_keys("indexes/")) == []


@pytest.mark.parametrize("key", ["../escape", "blobs/../../x", "/etc/passwd"])
def test_keys_cannot_leave_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        LocalBlobStore(tmp_path).read(key)


def test_a_sweep_removes_what_ended_processes_and_old_crashes_left(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time

    from headwater.process import is_gone, process_name

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
    assert ours.sweep_staging(is_gone, before=time.time() - 3600) == 3
    assert [staged.path.exists() for staged in kept] == [True, True, True]
    assert not any(staged.path.exists() for staged in [*left, stale])
    with ours.stage() as again:  # its own folder is still usable
        again.write(b"x")
