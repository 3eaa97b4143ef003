"""The scheduler: each mirror whose cron time has come gets a pending run."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from headwater.db import Database, utcnow
from headwater.errors import MirrorBusyError
from headwater.models import Mirror, RunTrigger
from headwater.schedule import parse_schedule
from headwater.services import runs

log = logging.getLogger(__name__)


def enqueue_due_runs(db: Database) -> list[int]:
    """Queue a run for every mirror that is due; returns the ids of the runs queued.

    Advancing `next_run_at` with a conditional update makes this safe to run in every
    replica at once: only one of them moves a mirror's time, and only that one queues the run.
    A mirror whose previous run is still going skips this firing rather than overlap it.
    """
    now = utcnow()
    with db.reading() as session:
        due = session.execute(
            select(Mirror.id, Mirror.next_run_at, Mirror.cron).where(Mirror.next_run_at <= now)
        ).all()
    queued = []
    for mirror_id, due_at, cron in due:
        with db.writing() as session:
            moved = session.execute(
                update(Mirror)
                .where(Mirror.id == mirror_id, Mirror.next_run_at == due_at)
                .values(next_run_at=parse_schedule(cron).next_run(now))
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                continue
            mirror = session.get(Mirror, mirror_id)
            assert mirror is not None and due_at is not None
            try:
                run = runs.request_run(
                    session, mirror, trigger=RunTrigger.schedule, requested_by=None
                )
            except MirrorBusyError:
                _note_skipped_firing(session, mirror, due_at)
                continue
            session.flush()
            queued.append(run.id)
    return queued


def _note_skipped_firing(session: Session, mirror: Mirror, due_at: dt.datetime) -> None:
    current = runs.active_run(session, mirror.id)
    if current is not None:
        runs.add_log(
            session,
            current.id,
            f"the scheduled firing at {due_at.isoformat(timespec='minutes')} was skipped: this "
            "run was still under way",
            level="warning",
        )
    log.info("scheduled run of mirror %s skipped: a run is under way", mirror.id)


class Scheduler:
    def __init__(self, db: Database, interval: float) -> None:
        self.db = db
        self.interval = interval
        self._shutdown = threading.Event()

    def run_forever(self) -> None:
        while not self._shutdown.is_set():
            try:
                enqueue_due_runs(self.db)
            except Exception:
                log.exception("scheduler: unexpected error; carrying on")
            self._shutdown.wait(self.interval)

    def shutdown(self) -> None:
        self._shutdown.set()
