"""Publishing: artifacts swap atomically, superseded ones go, the previous shard pack stays."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import delete

from headwater.db import Database
from headwater.formats.conda.shards import read_shard_index
from headwater.migrations import upgrade
from headwater.models import Channel, PackageFile, User
from headwater.services.mirror_contents import bulk_insert_files
from headwater.services.publish import find_shard, publish_subdirs
from headwater.storage import LocalBlobStore


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Database, LocalBlobStore, int]:
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    upgrade(db.engine)
    with db.writing() as session:
        owner = User(username="t", password_hash=None)
        session.add(owner)
        session.flush()
        channel = Channel(name="c", owner_user_id=owner.id)
        session.add(channel)
        session.flush()
        return db, LocalBlobStore(tmp_path / "blobs"), channel.id


def add(db: Database, channel_id: int, name: str, version: str) -> None:
    record = {"name": name, "version": version, "build": "0", "sha256": "0" * 64, "size": 1}
    row = (
        channel_id,
        None,
        "conda",
        "noarch",
        f"{name}-{version}-0.conda",
        name,
        version,
        "0",
        "0" * 64,
        1,
        None,
        orjson.dumps(record),
    )
    with db.writing() as session:
        bulk_insert_files(session, [row])


def publish(db: Database, store: LocalBlobStore, channel_id: int):
    with db.writing() as session:
        publication = publish_subdirs(session, store, channel_id, ["noarch"])
        index = publication.indexes[0]
        session.expunge(index)
    return index


def shard_of(store: LocalBlobStore, index, name: str) -> str:
    return read_shard_index(
        store.read(
            f"indexes/{index.channel_id}/noarch/{index.shard_index_sha256}.shards.msgpack.zst"
        )
    )[name]


def artifacts(index) -> set[str]:
    return {
        f"{index.repodata_sha256}.json",
        f"{index.repodata_zst_sha256}.json.zst",
        f"{index.shard_index_sha256}.shards.msgpack.zst",
        f"{index.shard_pack_sha256}.pack",
        f"{index.shard_pack_sha256}.pack.directory",
    }


def stored(store: LocalBlobStore, channel_id: int) -> set[str]:
    return {key.rsplit("/", 1)[1] for key in store.list_keys(f"indexes/{channel_id}/")}


def test_generations_of_artifacts(setup) -> None:
    db, store, channel_id = setup
    add(db, channel_id, "a", "1")
    first = publish(db, store, channel_id)
    old_shard = shard_of(store, first, "a")
    unchanged = publish(db, store, channel_id)
    assert (unchanged.repodata_sha256, unchanged.published_at) == (
        first.repodata_sha256,
        first.published_at,
    )

    add(db, channel_id, "a", "2")
    second = publish(db, store, channel_id)
    assert second.previous_shard_pack_sha256 == first.shard_pack_sha256
    assert find_shard(store, second, old_shard) is not None, "the old shard index still works"
    assert stored(store, channel_id) == artifacts(first) | artifacts(second)

    add(db, channel_id, "a", "3")
    third = publish(db, store, channel_id)
    assert find_shard(store, third, old_shard) is None, "two generations back is gone"
    assert stored(store, channel_id) == artifacts(second) | artifacts(third)


def test_going_back_to_an_earlier_index_keeps_it_live(setup) -> None:
    """A→B→A: the artifacts of A are live again and must survive B's collection."""
    db, store, channel_id = setup
    add(db, channel_id, "a", "1")
    first = publish(db, store, channel_id)
    add(db, channel_id, "b", "1")
    publish(db, store, channel_id)
    with db.writing() as session:
        session.execute(delete(PackageFile).where(PackageFile.name == "b"))
    again = publish(db, store, channel_id)
    assert again.repodata_sha256 == first.repodata_sha256
    add(db, channel_id, "c", "1")
    publish(db, store, channel_id)
    add(db, channel_id, "d", "1")
    latest = publish(db, store, channel_id)
    assert artifacts(latest) <= stored(store, channel_id)
    assert store.exists(f"indexes/{channel_id}/noarch/{latest.repodata_sha256}.json")


def test_a_rolled_back_publish_leaves_nothing_behind_for_long(setup) -> None:
    db, store, channel_id = setup
    add(db, channel_id, "a", "1")
    publish(db, store, channel_id)
    add(db, channel_id, "b", "1")
    with pytest.raises(RuntimeError), db.writing() as session:
        publish_subdirs(session, store, channel_id, ["noarch"])
        raise RuntimeError("the run was stopped")
    orphans = len(stored(store, channel_id))
    assert orphans == 10, "the rolled-back publish wrote its artifacts"
    final = publish(db, store, channel_id)
    assert len(stored(store, channel_id)) == 10
    assert artifacts(final) <= stored(store, channel_id)


def test_an_emptied_subdir_publishes_an_empty_index(setup) -> None:
    db, store, channel_id = setup
    add(db, channel_id, "a", "1")
    publish(db, store, channel_id)
    with db.writing() as session:
        session.execute(delete(PackageFile))
    index = publish(db, store, channel_id)
    assert index.record_count == 0
    document = orjson.loads(store.read(f"indexes/{channel_id}/noarch/{index.repodata_sha256}.json"))
    assert document["packages"] == {} and document["packages.conda"] == {}
