"""The run table as a queue on SQLite and PostgreSQL: one active run per mirror, claims, reaping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from headwater.db import Database
from headwater.errors import MirrorBusyError
from headwater.migrations import upgrade
from headwater.models import (
    Channel,
    JobKind,
    Mirror,
    Run,
    RunState,
    RunTrigger,
    User,
    mirror_key,
)
from headwater.services import run_queue, runs
from headwater.services.access.audit import Actor
from headwater.services.access.decisions import ChannelRef
from headwater.services.access.rules import Role
from headwater.services.mirrors import delete_mirror
from headwater.storage.local import LocalBlobStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'q.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    database = Database(url)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def mirror_id(db: Database) -> int:
    with db.writing() as session:
        owner = User(username="t", password_hash=None)
        session.add(owner)
        session.flush()
        channel = Channel(name="c", owner_user_id=owner.id)
        session.add(channel)
        session.flush()
        mirror = Mirror(
            channel_id=channel.id,
            mirror_name="m",
            mirror_type="conda",
            source_root="http://x/",
            mirror_mode="passive",
        )
        session.add(mirror)
        session.flush()
        return mirror.id


def _mirror_run(mirror_id: int, state: RunState) -> Run:
    return Run(
        mirror_id=mirror_id,
        concurrency_key=mirror_key(mirror_id),
        trigger=RunTrigger.manual,
        state=state,
    )


def test_the_database_refuses_a_second_active_run(db: Database, mirror_id: int) -> None:
    with db.writing() as session:
        session.add(_mirror_run(mirror_id, RunState.pending))
    with pytest.raises(IntegrityError), db.writing() as session:
        session.add(_mirror_run(mirror_id, RunState.running))
    with db.writing() as session:  # finished runs do not count
        session.execute(update(Run).values(state=RunState.completed))
        session.add(_mirror_run(mirror_id, RunState.pending))
        session.add(_mirror_run(mirror_id, RunState.failed))


def test_a_deployment_job_runs_once_at_a_time_beside_mirrors_runs(
    db: Database, mirror_id: int
) -> None:
    feeds = {"feeds": ["https://example.org/all.zip"]}
    with db.writing() as session:
        runs.request_run(
            session, session.get(Mirror, mirror_id), trigger=RunTrigger.manual, requested_by=None
        )
        first = runs.queue_job(
            session, JobKind.cve_refresh, feeds, trigger=RunTrigger.schedule, requested_by=None
        )
        assert first is not None
        again = runs.queue_job(
            session, JobKind.cve_refresh, feeds, trigger=RunTrigger.manual, requested_by="a"
        )
        assert again is None
        session.flush()
        assert runs.active_job(session, JobKind.cve_refresh) is first
    with db.writing() as session:
        claimed = [runs.claim_next_run(session, "w1"), runs.claim_next_run(session, "w1")]
    assert [(c.kind, c.params) for c in claimed if c is not None] == [
        (JobKind.mirror, {}),
        (JobKind.cve_refresh, feeds),
    ]


def test_request_run_names_the_run_under_way(db: Database, mirror_id: int) -> None:
    with db.writing() as session:
        mirror = session.get(Mirror, mirror_id)
        first = runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by="a")
        session.flush()
        with pytest.raises(MirrorBusyError, match=f"already has a pending run \\(#{first.id}\\)"):
            runs.request_run(session, mirror, trigger=RunTrigger.schedule, requested_by=None)


def test_a_claim_is_taken_once_and_a_silent_worker_is_reaped(db: Database, mirror_id: int) -> None:
    with db.writing() as session:
        runs.request_run(
            session, session.get(Mirror, mirror_id), trigger=RunTrigger.manual, requested_by=None
        )
    with db.writing() as session:
        claim = runs.claim_next_run(session, "worker-a")
    with db.writing() as session:
        assert runs.claim_next_run(session, "worker-b") is None
    assert claim is not None
    with db.writing() as session:
        assert runs.reap_stale_runs(session, timeout=60) == []
        session.execute(
            update(Run).values(heartbeat_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        )
    with db.writing() as session:
        assert runs.reap_stale_runs(session, timeout=60) == [claim.run_id]
    with db.reading() as session:
        run = runs.get_run(session, claim.run_id)
        assert run.state == RunState.failed
        assert "worker worker-a stopped sending heartbeats" in (run.error or "")
    with db.writing() as session:  # the reaped worker can no longer complete or beat
        assert not runs.complete_run(
            session, claim.run_id, "worker-a", counters={}, excluded_reasons={}
        )
        beat = runs.heartbeat(
            session,
            claim.run_id,
            "worker-a",
            step="x",
            progress=(0, 0, 0),
            counters={},
            excluded_reasons={},
            log_lines=[],
        )
        assert not beat.owned
        runs.request_run(
            session, session.get(Mirror, mirror_id), trigger=RunTrigger.manual, requested_by=None
        )


def test_stopping_a_run_a_worker_just_claimed_asks_it_to_stop_instead(
    db: Database, mirror_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.writing() as session:
        mirror = session.get(Mirror, mirror_id)
        runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by=None)
    with db.reading() as session:
        stale = runs.active_run(session, mirror_id)  # seen as pending...
        assert stale is not None and stale.state == RunState.pending
        session.expunge(stale)
    with db.writing() as session:  # ...then a worker claims it
        claim = runs.claim_next_run(session, "worker-a")
    monkeypatch.setattr(runs, "active_run", lambda session, mirror_id: stale)
    with db.writing() as session:
        stopped = runs.stop_run(session, session.get(Mirror, mirror_id), stopped_by="bob")
        assert stopped.state == RunState.running
        assert stopped.stop_requested_by == "bob"
    with db.writing() as session:
        beat = runs.heartbeat(
            session,
            claim.run_id,
            "worker-a",
            step="x",
            progress=(0, 0, 0),
            counters={},
            excluded_reasons={},
            log_lines=[],
        )
        assert beat.owned and beat.stop_requested_by == "bob"


def test_ids_are_never_reused(db: Database, mirror_id: int) -> None:
    with db.writing() as session:
        mirror = session.get(Mirror, mirror_id)
        first = runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by=None)
        session.flush()
        first_id = first.id
        session.delete(first)
    with db.writing() as session:
        again = runs.request_run(
            session, session.get(Mirror, mirror_id), trigger=RunTrigger.manual, requested_by=None
        )
        session.flush()
        assert again.id > first_id


def test_a_mirror_with_a_running_run_is_not_deleted_and_the_refusal_says_what_to_do(
    db: Database, mirror_id: int, tmp_path: Path
) -> None:
    with db.writing() as session:
        mirror = session.get(Mirror, mirror_id)
        runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by="a")
    with db.writing() as session:
        assert runs.claim_next_run(session, "w1") is not None
    with db.reading() as session:
        channel = session.get(Channel, session.get(Mirror, mirror_id).channel_id)
        ref = ChannelRef(
            id=channel.id, name="c", privacy=channel.privacy, owner_user_id=channel.owner_user_id,
            owner_org_id=None, head=channel.head, role=Role.manage,
        )  # fmt: skip
    store = LocalBlobStore(tmp_path / "blobs")

    with pytest.raises(MirrorBusyError, match="stop it first"):
        delete_mirror(db, store, ref, mirror_id, actor=Actor.server("test"))
    with db.writing() as session:
        runs.stop_run(session, session.get(Mirror, mirror_id), stopped_by="a")
    with pytest.raises(MirrorBusyError, match="delete it once the run has ended"):
        delete_mirror(db, store, ref, mirror_id, actor=Actor.server("test"))


def _mirror(session, channel_id: int, name: str) -> Mirror:
    mirror = Mirror(
        channel_id=channel_id,
        mirror_name=name,
        mirror_type="conda",
        source_root="http://x/",
        mirror_mode="passive",
    )
    session.add(mirror)
    session.flush()
    return mirror


def test_a_pending_run_says_where_it_stands_in_the_queue(db: Database, mirror_id: int) -> None:
    with db.writing() as session:
        channel_id = session.get(Mirror, mirror_id).channel_id
        mirrors = [session.get(Mirror, mirror_id)] + [
            _mirror(session, channel_id, name) for name in ("m2", "m3", "m4")
        ]
        queued = []
        for mirror in mirrors:
            queued.append(
                runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by="a").id
            )
            session.flush()
    first, second, third, fourth = queued
    with db.reading() as session:
        alone = run_queue.queue_places(session, [first])[first]
        assert "waiting for a worker to take it" in str(alone)

    with db.writing() as session:
        assert runs.claim_next_run(session, "w1").run_id == first  # oldest first
    with db.reading() as session:
        places = run_queue.queue_places(session, queued)
        assert first not in places, "a running run has no place in the queue"
        assert str(places[second]) == f"First in line, waiting for a worker to finish run #{first}"
        assert places[fourth].ahead == 2 and places[fourth].next_up == third
        assert str(places[fourth]).startswith(f"Queued behind 2 runs (run #{third} starts")
        assert runs.describe_run(session, third).pending_reason == str(places[third])
        assert runs.describe_run(session, first).pending_reason is None
