"""Garbage collection, on the local store and on S3: the blobs no retained revision, index or
staging area references go after the grace period, through the job queue on demand (REST) or
on schedule; a referenced blob, a blob a run is about to use, and one still in its grace stay;
each collection reports what it reclaimed, and the usage view shows what each channel holds."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update

from headwater.models import Blob
from headwater.services import blobs
from headwater.services.blobs import Stored
from headwater.storage import BlobStore, content_key
from tests.conftest import make_settings
from tests.support.conda_packages import PackageSpec, build_channel, sha256_of
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.s3 import S3Endpoint
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import Fault, serve_directory

KEEP = PackageSpec("gc-keep", "1.0", subdir="noarch", random_bytes=20_000)
DROP = PackageSpec("gc-drop", "1.0", subdir="noarch", random_bytes=30_000)
SLOW = PackageSpec("gc-slow", "1.0", subdir="noarch")


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "local":
        return {}
    s3: S3Endpoint = request.getfixturevalue("s3")
    return s3.settings(s3.new_bucket())


def started(tmp_path: Path, backend: dict[str, object], **settings: object) -> Any:
    return run_headwater(make_settings(tmp_path / "var", **backend, **settings))


def run_job(client: httpx.Client, kind: str) -> dict[str, Any]:
    queued = client.post("/api/jobs", json={"kind": kind})
    assert queued.status_code == 202, queued.text
    run_id = queued.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/api/jobs/{run_id}").json()
        if job["state"] in ("completed", "failed"):
            assert job["state"] == "completed", job
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def store_of(headwater: Headwater) -> BlobStore:
    return headwater.resources.store  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def upstream_root(tmp_path: Path) -> Iterator[Path]:
    root = build_channel(tmp_path / "upstream", [KEEP, DROP])
    yield root


def drop_upstream(root: Path) -> None:
    """The upstream stops offering DROP: the next run removes it from the channel's head."""
    (root / "noarch" / DROP.filename).unlink()
    shutil.rmtree(root / "noarch" / ".cache", ignore_errors=True)
    build_channel(root, [])


def test_a_blob_no_retained_revision_holds_is_collected_and_reported(
    tmp_path: Path, backend: dict[str, object], upstream_root: Path
) -> None:
    kept = sha256_of(upstream_root / "noarch" / KEEP.filename)
    dropped = sha256_of(upstream_root / "noarch" / DROP.filename)
    dropped_size = (upstream_root / "noarch" / DROP.filename).stat().st_size
    with (
        serve_directory(upstream_root) as upstream,
        started(tmp_path, backend, gc_grace_hours=0, revisions_kept=1) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        store = store_of(headwater)
        create_channel(client, "gc")
        mirror = create_mirror(client, "gc", upstream.url, mirror_mode="active")
        assert run_mirror(client, "gc", mirror["id"])["state"] == "completed"
        drop_upstream(upstream_root)
        assert run_mirror(client, "gc", mirror["id"])["state"] == "completed"

        # Revision 1 still holds the dropped file: nothing of it goes.
        run_job(client, "blob-collect")
        assert store.stat(content_key(dropped)) is not None
        old = client.get(f"/api/repo/gc@1/noarch/{DROP.filename}")
        assert old.status_code == 200 and sha_of(old.content) == dropped

        # Pruned past retention, the file's row goes; the next collection takes its bytes.
        run_job(client, "revision-prune")
        collected = run_job(client, "blob-collect")
        report = collected["report"]["collected"]
        assert report["deleted"] >= 1 and report["bytes_deleted"] >= dropped_size
        assert any("deleted" in line["message"] for line in collected["log"])
        assert store.stat(content_key(dropped)) is None
        assert store.stat(content_key(kept)) is not None

        # What is left is served as before.
        served = client.get(f"/api/repo/gc/noarch/{KEEP.filename}")
        assert served.status_code == 200 and sha_of(served.content) == kept
        assert client.get("/api/repo/gc/noarch/repodata.json").status_code == 200
        assert client.get("/api/repo/gc/noarch/repodata.json.zst").status_code == 200

        usage = client.get("/api/storage").json()
        (channel,) = [entry for entry in usage["channels"] if entry["name"] == "gc"]
        keep_size = (upstream_root / "noarch" / KEEP.filename).stat().st_size
        assert (channel["files"], channel["package_bytes"]) == (1, keep_size)
        assert channel["index_bytes"] > 0
        (mirrored,) = usage["mirrors"]
        assert mirrored["name"] == "gc/upstream" and mirrored["package_bytes"] == keep_size
        assert usage["unreferenced"] == 0
        assert usage["last_collection"]["collected"]["deleted"] == report["deleted"]
        assert usage["backend"] == ("s3" if backend else "local")

        metrics = {
            line.split()[0]: float(line.split()[1])
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("headwater_blob")
        }
        assert metrics["headwater_blob_collected_bytes_total"] >= dropped_size
        assert metrics["headwater_blob_store_bytes"] >= keep_size
        assert metrics["headwater_blob_store_blobs"] == usage["blobs"]


def sha_of(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def test_unreferenced_blobs_wait_out_their_grace(
    tmp_path: Path, backend: dict[str, object], upstream_root: Path
) -> None:
    """The grace runs from when the last revision naming a file was pruned, not from when its
    bytes were written: a file stored a month ago and pruned today stays for the grace."""
    dropped = sha256_of(upstream_root / "noarch" / DROP.filename)
    with (
        serve_directory(upstream_root) as upstream,
        started(tmp_path, backend, revisions_kept=1) as headwater,  # a grace of 24 hours
        headwater.client(headwater.login()) as client,
    ):
        create_channel(client, "gc")
        mirror = create_mirror(client, "gc", upstream.url, mirror_mode="active")
        run_mirror(client, "gc", mirror["id"])
        drop_upstream(upstream_root)
        run_mirror(client, "gc", mirror["id"])
        month_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        with headwater.resources.db.writing() as session:  # type: ignore[attr-defined]
            session.execute(update(Blob).values(touched_at=month_ago))
        run_job(client, "revision-prune")
        report = run_job(client, "blob-collect")["report"]["collected"]
        assert report["deleted"] == 0 and report["kept_in_grace"] >= 1
        assert store_of(headwater).stat(content_key(dropped)) is not None
        assert client.get("/api/storage").json()["unreferenced"] >= 1


def test_a_deleted_channel_leaves_nothing_after_a_collection(
    tmp_path: Path, backend: dict[str, object], upstream_root: Path
) -> None:
    with (
        serve_directory(upstream_root) as upstream,
        started(tmp_path, backend, gc_grace_hours=0) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        store = store_of(headwater)
        create_channel(client, "doomed")
        mirror = create_mirror(client, "doomed", upstream.url, mirror_mode="active")
        run_mirror(client, "doomed", mirror["id"])
        assert list(store.list("indexes/")) and list(store.list("blobs/"))
        assert client.delete("/api/channels/doomed").status_code == 204
        run_job(client, "blob-collect")
        assert list(store.list("indexes/")) == []
        assert list(store.list("blobs/")) == []
        assert client.get("/api/storage").json()["blobs"] == 0


def test_blobs_stored_without_a_row_are_adopted_and_judged_like_the_rest(
    tmp_path: Path, backend: dict[str, object], upstream_root: Path
) -> None:
    """Blobs stored before rows were kept (a migrated deployment), or by a process that died
    between writing and recording: a referenced one stays, an unreferenced one goes."""
    kept = sha256_of(upstream_root / "noarch" / KEEP.filename)
    with (
        serve_directory(upstream_root) as upstream,
        started(tmp_path, backend, gc_grace_hours=0) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        store = store_of(headwater)
        db = headwater.resources.db  # type: ignore[attr-defined]
        create_channel(client, "gc")
        mirror = create_mirror(client, "gc", upstream.url, mirror_mode="active")
        run_mirror(client, "gc", mirror["id"])
        orphan = "0" * 63 + "1"
        store.put(content_key(orphan), b"written, never recorded")
        with db.writing() as session:
            session.execute(delete(Blob))  # as before migration 0010
        report = run_job(client, "blob-collect")["report"]["collected"]
        assert report["adopted"] >= 3 and report["deleted"] == 1
        assert store.stat(content_key(orphan)) is None
        assert store.stat(content_key(kept)) is not None
        served = client.get(f"/api/repo/gc/noarch/{KEEP.filename}")
        assert served.status_code == 200 and sha_of(served.content) == kept


def test_a_blob_a_run_is_about_to_use_is_not_collected(tmp_path: Path) -> None:
    """A run touches the bytes it found stored before it decides not to download them: a
    collection that starts before it publishes leaves them for the grace period."""
    # No scheduler or worker: the collections are this test's alone.
    settings = make_settings(tmp_path / "var", embedded_worker=False, embedded_scheduler=False)
    with run_headwater(settings) as headwater:
        store = store_of(headwater)
        db = headwater.resources.db  # type: ignore[attr-defined]
        digest = "ab" * 32
        store.put(content_key(digest), b"bytes a run will reuse")
        with db.writing() as session:
            blobs.record(session, [Stored.content(digest, 21)])
            long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
            session.execute(update(Blob).values(touched_at=long_ago))
        assert blobs.held(db, store, [Stored.content(digest, 21)]) == {content_key(digest)}
        from headwater.services.progress import RunProgress

        collected = blobs.collect(db, store, dt.timedelta(hours=1), RunProgress())
        assert collected.deleted == 0 and collected.kept_in_grace == 1
        assert store.stat(content_key(digest)) is not None
        # Untouched for longer than the grace, it goes.
        with db.writing() as session:
            session.execute(update(Blob).values(touched_at=long_ago))
        assert blobs.collect(db, store, dt.timedelta(hours=1), RunProgress()).deleted == 1
        assert store.stat(content_key(digest)) is None
        # A run finding it gone now downloads it again, and goes on doing so while a row
        # (one recorded for bytes a failed run never fetched) says otherwise.
        assert blobs.held(db, store, [Stored.content(digest, 21)]) == set()
        assert blobs.held(db, store, [Stored.content(digest, 21)]) == set()
        # An upload confirms, in the transaction that names its bytes, that they are stored.
        with db.writing() as session:
            assert not blobs.confirm_stored(session, store, [Stored.content(digest, 21)])
        store.put(content_key(digest), b"bytes a run will reuse")
        with db.writing() as session:
            assert blobs.confirm_stored(session, store, [Stored.content(digest, 21)])


def test_a_mirror_run_under_way_keeps_what_it_uses_whatever_the_grace(
    tmp_path: Path, upstream_root: Path
) -> None:
    """A collection with no grace at all, while an active run is fetching its last file: the
    bytes the run reuses (stored for a channel deleted long ago, nobody's now) and the ones it
    has written stay, the run publishes every file, and every one is served."""
    with (
        serve_directory(upstream_root) as upstream,
        started(tmp_path, {}, gc_grace_hours=0, heartbeat_interval=0.1) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        create_channel(client, "gone")
        first = create_mirror(client, "gone", upstream.url, mirror_mode="active")
        assert run_mirror(client, "gone", first["id"])["state"] == "completed"
        assert client.delete("/api/channels/gone").status_code == 204
        month_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        with headwater.resources.db.writing() as session:  # type: ignore[attr-defined]
            session.execute(update(Blob).values(touched_at=month_ago))

        build_channel(upstream_root, [SLOW])  # beside the two already there
        slow_path = f"/noarch/{SLOW.filename}"
        upstream.faults[slow_path] = Fault(delay=4)
        create_channel(client, "gc")
        mirror = create_mirror(client, "gc", upstream.url, mirror_mode="active")
        queued = client.post(f"/api/channels/gc/mirrors/{mirror['id']}/run")
        assert queued.status_code == 202, queued.text
        run_id = queued.json()["id"]
        deadline = time.monotonic() + 30
        while upstream.count(slow_path) == 0:
            assert time.monotonic() < deadline, "the run never asked for the slow file"
            time.sleep(0.05)
        time.sleep(0.5)  # its heartbeats have recorded what it did by now
        assert client.get(f"/api/runs/{run_id}").json()["state"] == "running"
        report = run_job(client, "blob-collect")["report"]["collected"]
        assert report["deleted"] >= 1, report  # the deleted channel's indexes went
        for spec in (KEEP, DROP):
            digest = sha256_of(upstream_root / "noarch" / spec.filename)
            assert store_of(headwater).stat(content_key(digest)) is not None, spec.filename
        deadline = time.monotonic() + 60
        while (run := client.get(f"/api/runs/{run_id}").json())["state"] == "running":
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
        assert run["state"] == "completed", run
        assert run["counters"]["downloaded"] == 1, run["counters"]  # the others were reused
        for spec in (KEEP, DROP, SLOW):
            served = client.get(f"/api/repo/gc/noarch/{spec.filename}")
            assert served.status_code == 200, spec.filename
            assert sha_of(served.content) == sha256_of(upstream_root / "noarch" / spec.filename)
        # Once the run is over, what nobody references goes: here, nothing.
        assert run_job(client, "blob-collect")["report"]["collected"]["deleted"] == 0


def test_only_administrators_see_the_storage_usage(headwater: Headwater) -> None:
    headwater.add_user("carol", "carols password")
    with headwater.client(headwater.login("carol", "carols password")) as carol:
        refused = carol.get("/api/storage")
        assert refused.status_code == 403, refused.text
        assert "blob store" in refused.json()["detail"]
    with headwater.client() as anonymous:
        assert anonymous.get("/api/storage").status_code == 401


@pytest.mark.postgres
def test_collection_on_postgresql_and_s3(
    tmp_path: Path, postgres_url: str, s3: S3Endpoint, upstream_root: Path
) -> None:
    """The collection's row locks (skip locked) and the run's touches on PostgreSQL, blobs in S3:
    two collections at once delete each blob once, and what is referenced stays."""
    kept = sha256_of(upstream_root / "noarch" / KEEP.filename)
    dropped = sha256_of(upstream_root / "noarch" / DROP.filename)
    backend = s3.settings(s3.new_bucket())
    with (
        serve_directory(upstream_root) as upstream,
        started(
            tmp_path, backend, database_url=postgres_url, gc_grace_hours=0, revisions_kept=1
        ) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        store = store_of(headwater)
        db = headwater.resources.db  # type: ignore[attr-defined]
        create_channel(client, "gc")
        mirror = create_mirror(client, "gc", upstream.url, mirror_mode="active")
        run_mirror(client, "gc", mirror["id"])
        drop_upstream(upstream_root)
        run_mirror(client, "gc", mirror["id"])
        run_job(client, "revision-prune")

        from concurrent.futures import ThreadPoolExecutor

        from headwater.services.progress import RunProgress

        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda _: blobs.collect(db, store, dt.timedelta(0), RunProgress()), range(2)
                )
            )
        assert sum(result.deleted for result in results) >= 1
        assert store.stat(content_key(dropped)) is None
        assert store.stat(content_key(kept)) is not None
        with db.reading() as session:
            assert blobs.totals(session).unreferenced == 0
        stored = {info.key for info in store.list("")}
        with db.reading() as session:
            from sqlalchemy import select

            recorded = set(session.scalars(select(Blob.key)))
        assert stored == recorded, "every stored blob has its row, and every row its blob"
        served = client.get(f"/api/repo/gc/noarch/{KEEP.filename}")
        assert served.status_code == 200 and sha_of(served.content) == kept
