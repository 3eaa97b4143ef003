"""The scheduler: each mirror whose cron time has come gets a pending run, and so does each
job of the whole deployment (the CVE refresh). Any number of schedulers may run at once (one
in every `serve`): each firing is queued once."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from headwater.db import Database, utcnow
from headwater.errors import MirrorBusyError
from headwater.models import JobKind, JobSchedule, Mirror, Run, RunTrigger
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
                _note_skipped_firing(session, runs.active_run(session, mirror.id), due_at)
                log.info("scheduled run of mirror %s skipped: a run is under way", mirror.id)
                continue
            session.flush()
            queued.append(run.id)
    return queued


def _note_skipped_firing(session: Session, current: Run | None, due_at: dt.datetime) -> None:
    """In the log of the run under way, that a firing came and went while it ran."""
    if current is not None:
        runs.add_log(
            session,
            current.id,
            f"the scheduled firing at {due_at.isoformat(timespec='minutes')} was skipped: this "
            "run was still under way",
            level="warning",
        )


@dataclass(frozen=True)
class DeploymentJob:
    """A job of the whole deployment, on its cron, with what each run is asked to do."""

    kind: JobKind
    cron: str
    params: dict[str, Any]


def keep_schedules(db: Database, jobs: Sequence[DeploymentJob]) -> None:
    """Make sure each job has its schedule, on this process's cron. A job scheduled for the
    first time fires at once (a new deployment's CVE database is filled at its first start)."""
    now = utcnow()
    for job in jobs:
        with db.writing() as session:
            schedule = session.get(JobSchedule, job.kind)
            if schedule is None:
                try:
                    with session.begin_nested():
                        session.add(JobSchedule(kind=job.kind, cron=job.cron, next_run_at=now))
                except IntegrityError:  # another scheduler made it just now
                    pass
            elif schedule.cron != job.cron:
                schedule.cron = job.cron
                schedule.next_run_at = parse_schedule(job.cron).next_run(now)


def enqueue_due_jobs(db: Database, jobs: Sequence[DeploymentJob]) -> list[int]:
    """Queue a run of every deployment job that is due, as `enqueue_due_runs` does for
    mirrors: the conditional move of `next_run_at` lets one scheduler, of all, queue it."""
    now = utcnow()
    queued = []
    for job in jobs:
        with db.reading() as session:
            due_at = session.scalar(
                select(JobSchedule.next_run_at).where(
                    JobSchedule.kind == job.kind, JobSchedule.next_run_at <= now
                )
            )
        if due_at is None:
            continue
        with db.writing() as session:
            moved = session.execute(
                update(JobSchedule)
                .where(JobSchedule.kind == job.kind, JobSchedule.next_run_at == due_at)
                .values(next_run_at=parse_schedule(job.cron).next_run(now))
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                continue
            run = runs.queue_job(
                session, job.kind, job.params, trigger=RunTrigger.schedule, requested_by=None
            )
            if run is None:
                _note_skipped_firing(session, runs.active_job(session, job.kind), due_at)
                continue
            session.flush()
            queued.append(run.id)
    return queued


class Scheduler:
    def __init__(self, db: Database, interval: float, jobs: Sequence[DeploymentJob] = ()) -> None:
        self.db = db
        self.interval = interval
        self.jobs = tuple(jobs)
        self._shutdown = threading.Event()

    def run_forever(self) -> None:
        scheduled = False
        while not self._shutdown.is_set():
            # Each on its own: a failing deployment job never holds back the mirrors' runs.
            try:
                enqueue_due_runs(self.db)
            except Exception:
                log.exception("scheduler: queueing mirrors' runs failed; carrying on")
            try:
                if not scheduled:
                    keep_schedules(self.db, self.jobs)
                    scheduled = True
                enqueue_due_jobs(self.db, self.jobs)
            except Exception:
                log.exception("scheduler: queueing the deployment's jobs failed; carrying on")
            self._shutdown.wait(self.interval)

    def shutdown(self) -> None:
        self._shutdown.set()
