"""The change service: revisions land whole or not at all, indexes of the head and its parent
stay materialized, and changes that race both land."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from headwater.db import Database
from headwater.formats.conda.shards import read_shard_index
from headwater.migrations import upgrade
from headwater.models import (
    Channel,
    ChannelRevision,
    PackageFile,
    RevisionCause,
    RevisionIndex,
    User,
)
from headwater.services import blobs
from headwater.services.indexes import build_subdir_index, find_shard
from headwater.services.progress import RunProgress
from headwater.services.revisions import Change, Plan, apply_change
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


def row(channel_id: int, name: str, version: str, extension: str = ".conda") -> tuple[Any, ...]:
    record = {"name": name, "version": version, "build": "0", "sha256": "0" * 64, "size": 1}
    filename = f"{name}-{version}-0{extension}"
    return (
        channel_id,
        None,
        "conda",
        "noarch",
        filename,
        name,
        version,
        "0",
        "0" * 64,
        1,
        None,
        orjson.dumps(record),
        "tester",
        None,
    )


class Edit(Change):
    """Add some files and remove others by name, as an upload or a deletion would."""

    cause = RevisionCause.upload

    def __init__(
        self,
        add: list[tuple[str, str]] = (),
        remove: list[str] = (),
        fail: bool = False,
        before_landing: Any = None,
    ) -> None:
        self.adding, self.removing, self.fail = list(add), list(remove), fail
        self.before_landing = before_landing
        self.plans = 0
        self.extension: dict[str, str] = {}

    def plan(self, session: Session, channel_id: int, head: int) -> Plan:
        self.plans += 1
        plan = Plan()
        for name, version in self.adding:
            plan.add(row(channel_id, name, version, self.extension.get(name, ".conda")))
        for file in session.scalars(
            select(PackageFile).where(
                PackageFile.channel_id == channel_id,
                PackageFile.in_head(),
                PackageFile.filename.in_(self.removing),
            )
        ):
            plan.remove(file.id, file.package_type, file.subdir, file.name)
        if self.before_landing is not None:
            hook, self.before_landing = self.before_landing, None
            hook()
        return plan

    def land(self, session: Session, revision: ChannelRevision | None) -> None:
        if self.fail:
            raise RuntimeError("the run was stopped")


def head_index(db: Database, channel_id: int) -> RevisionIndex:
    with db.reading() as session:
        head = session.get_one(Channel, channel_id).head
        return session.get_one(RevisionIndex, (channel_id, head, "noarch"))


def artifacts(index: RevisionIndex) -> set[str]:
    return {
        f"{index.repodata_sha256}.json",
        f"{index.repodata_sha256}.json.gz",
        f"{index.repodata_zst_sha256}.json.zst",
        f"{index.shard_index_sha256}.shards.msgpack.zst",
        f"{index.shard_pack_sha256}.pack",
        f"{index.shard_pack_sha256}.pack.directory",
        f"{index.repodata_sha256}.json.directory",
    }


def stored(store: LocalBlobStore, channel_id: int) -> set[str]:
    return {info.key.rsplit("/", 1)[1] for info in store.list(f"indexes/{channel_id}/")}


def collect_garbage(db: Database, store: LocalBlobStore) -> None:
    """A garbage collection without a grace period: what no row names goes now."""
    blobs.collect(db, store, dt.timedelta(0), RunProgress())


def names_in(db: Database, channel_id: int, number: int | None = None) -> list[str]:
    with db.reading() as session:
        return sorted(
            session.scalars(
                select(PackageFile.filename).where(
                    PackageFile.channel_id == channel_id, PackageFile.in_revision(number)
                )
            )
        )


def test_each_change_is_a_revision_and_old_revisions_keep_their_files(setup) -> None:
    db, store, channel_id = setup
    first = apply_change(db, store, channel_id, Edit(add=[("a", "1")]))
    second = apply_change(db, store, channel_id, Edit(add=[("a", "2")], remove=["a-1-0.conda"]))
    assert (first.number, second.number) == (1, 2)
    assert (second.parent, second.added, second.removed, second.file_count) == (1, 1, 1, 1)
    assert names_in(db, channel_id) == ["a-2-0.conda"]
    assert names_in(db, channel_id, 1) == ["a-1-0.conda"]
    assert names_in(db, channel_id, 2) == ["a-2-0.conda"]


def test_the_head_and_its_parent_keep_their_indexes(setup) -> None:
    db, store, channel_id = setup
    apply_change(db, store, channel_id, Edit(add=[("a", "1")]))
    first = head_index(db, channel_id)
    old_shard = read_shard_index(
        store.read(f"indexes/{channel_id}/noarch/{first.shard_index_sha256}.shards.msgpack.zst")
    )["a"]
    apply_change(db, store, channel_id, Edit(add=[("a", "2")]))
    second = head_index(db, channel_id)
    assert find_shard(store, [second, first], old_shard) is not None
    collect_garbage(db, store)
    assert stored(store, channel_id) == artifacts(first) | artifacts(second)
    apply_change(db, store, channel_id, Edit(add=[("a", "3")]))
    third = head_index(db, channel_id)
    assert stored(store, channel_id) >= artifacts(first), "collected only after the grace"
    collect_garbage(db, store)
    assert stored(store, channel_id) == artifacts(second) | artifacts(third)
    with db.reading() as session:
        numbers = set(session.scalars(select(RevisionIndex.number)))
    assert numbers == {2, 3}, "two revisions back is rendered again only when pinned"


def test_going_back_to_an_earlier_index_keeps_it_live(setup) -> None:
    """A→B→A: the artifacts of A are named again and survive B's collection."""
    db, store, channel_id = setup
    apply_change(db, store, channel_id, Edit(add=[("a", "1")]))
    first = head_index(db, channel_id)
    apply_change(db, store, channel_id, Edit(add=[("b", "1")]))
    apply_change(db, store, channel_id, Edit(remove=["b-1-0.conda"]))
    again = head_index(db, channel_id)
    assert again.repodata_sha256 == first.repodata_sha256
    apply_change(db, store, channel_id, Edit(add=[("c", "1")]))
    apply_change(db, store, channel_id, Edit(add=[("d", "1")]))
    latest = head_index(db, channel_id)
    collect_garbage(db, store)
    assert artifacts(latest) <= stored(store, channel_id)


def test_a_change_that_fails_lands_nothing_and_leaves_nothing(setup) -> None:
    db, store, channel_id = setup
    apply_change(db, store, channel_id, Edit(add=[("a", "1")]))
    before = stored(store, channel_id)
    with pytest.raises(RuntimeError):
        apply_change(db, store, channel_id, Edit(add=[("b", "1")], fail=True))
    with db.reading() as session:
        assert session.get_one(Channel, channel_id).head == 1
        assert session.scalar(select(func.count(PackageFile.id))) == 1, "staged rows are gone"
    collect_garbage(db, store)
    assert stored(store, channel_id) == before, "its rendered artifacts are collected"


def test_an_emptied_subdir_publishes_an_empty_index(setup) -> None:
    db, store, channel_id = setup
    apply_change(db, store, channel_id, Edit(add=[("a", "1")]))
    apply_change(db, store, channel_id, Edit(remove=["a-1-0.conda"]))
    index = head_index(db, channel_id)
    assert index.record_count == 0
    document = orjson.loads(store.read(f"indexes/{channel_id}/noarch/{index.repodata_sha256}.json"))
    assert document["packages"] == {} and document["packages.conda"] == {}


def test_a_change_that_lands_meanwhile_is_kept_and_the_slower_one_rebuilt(setup) -> None:
    """The slower change read head 0; another landed before it: it is planned again on the
    new head and both are in the result."""
    db, store, channel_id = setup
    slower = Edit(
        add=[("b", "1")],
        before_landing=lambda: apply_change(db, store, channel_id, Edit(add=[("a", "1")])),
    )
    landed = apply_change(db, store, channel_id, slower)
    assert slower.plans == 2
    assert landed.number == 2 and landed.parent == 1
    assert names_in(db, channel_id) == ["a-1-0.conda", "b-1-0.conda"]
    document = orjson.loads(
        store.read(f"indexes/{channel_id}/noarch/{head_index(db, channel_id).repodata_sha256}.json")
    )
    assert sorted(document["packages.conda"]) == ["a-1-0.conda", "b-1-0.conda"]


def test_an_index_built_from_the_previous_one_is_the_index_rendered_whole(setup) -> None:
    """A change of a few names copies the others from the previous index: the result must be
    the bytes a whole render of the same files gives (a pinned revision is rendered whole
    again later, and must not change)."""
    db, store, channel_id = setup
    first = Edit(add=[(f"p{n:02d}", f"{v}.0") for n in range(20) for v in (1, 2)])
    first.extension = {"p04": ".tar.bz2", "p05": ".tar.bz2"}
    apply_change(db, store, channel_id, first)
    changes = [
        Edit(add=[("p03", "3.0")]),
        Edit(remove=["p07-1.0-0.conda", "p07-2.0-0.conda"]),
        Edit(add=[("aa-new", "1.0"), ("zz-new", "1.0")], remove=["p04-1.0-0.tar.bz2"]),
    ]
    for change in changes:
        apply_change(db, store, channel_id, change)
        index = head_index(db, channel_id)
        with db.reading() as session:
            whole = build_subdir_index(session, channel_id, "noarch", PackageFile.in_head())
        key = f"indexes/{channel_id}/noarch/"
        assert store.read(f"{key}{index.repodata_sha256}.json") == whole.repodata
        assert store.read(f"{key}{index.repodata_zst_sha256}.json.zst") == whole.repodata_zst
        shard_index = f"{key}{index.shard_index_sha256}.shards.msgpack.zst"
        assert store.read(shard_index) == whole.shard_index
        assert store.read(f"{key}{index.shard_pack_sha256}.pack") == whole.shard_pack
        directory = f"{key}{index.repodata_sha256}.json.directory"
        assert store.read(directory) == whole.repodata_directory
        assert index.record_count == whole.record_count
    names = orjson.loads(store.read(f"{key}{index.repodata_sha256}.json"))
    filenames = set(names["packages"]) | set(names["packages.conda"])
    assert "p04-1.0-0.tar.bz2" not in filenames and "p05-1.0-0.tar.bz2" in filenames
    assert {"aa-new-1.0-0.conda", "p03-3.0-0.conda"} <= filenames
    assert not any(name.startswith("p07") for name in filenames)
