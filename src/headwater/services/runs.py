"""Runs of jobs: asking for a mirror's run, stopping one, queueing the deployment's own jobs
(the CVE refresh), reading the history, and the workers' queue."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import SQLColumnExpression, and_, event, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from headwater.db import database_now, utcnow
from headwater.errors import MirrorBusyError, RunNotActiveError, RunNotFoundError
from headwater.inputs import printable
from headwater.models import (
    Channel,
    JobKind,
    Mirror,
    Run,
    RunLogLine,
    RunState,
    RunTrigger,
    mirror_key,
)
from headwater.models.run import ACTIVE_RUN_STATES
from headwater.services import run_queue
from headwater.services.access.audit import Actor, record
from headwater.services.progress import LogEntry, Pace
from headwater.sorting import Sort

# What a run that ended before completing leaves behind, by kind.
LEFT_BEHIND = {
    JobKind.mirror: "nothing it did was published",
    JobKind.cve_refresh: "the feeds imported before it stay imported",
    JobKind.revision_prune: "the channels pruned before it stay pruned",
    JobKind.blob_collect: "the blobs deleted before it stay deleted",
}


def active_run(session: Session, mirror_id: int) -> Run | None:
    return session.scalar(
        select(Run).where(Run.mirror_id == mirror_id, Run.state.in_(ACTIVE_RUN_STATES))
    )


def busy_message(mirror: Mirror, run: Run) -> str:
    return (
        f"mirror {mirror.mirror_name!r} already has a {run.state} run (#{run.id}); runs of one "
        "mirror never overlap: wait for it to finish or stop it"
    )


def request_run(
    session: Session, mirror: Mirror, *, trigger: RunTrigger, requested_by: str | None
) -> Run:
    """Queue a pending run, or MirrorBusyError when the mirror already has one under way."""
    current = active_run(session, mirror.id)
    if current is not None:
        raise MirrorBusyError(busy_message(mirror, current))
    run = _queue(
        session,
        Run(
            kind=JobKind.mirror,
            concurrency_key=mirror_key(mirror.id),
            mirror_id=mirror.id,
            trigger=trigger,
            requested_by=requested_by,
        ),
    )
    if run is None:
        # Another process queued one between our check and our insert; the index caught it.
        current = active_run(session, mirror.id)
        raise MirrorBusyError(busy_message(mirror, current) if current else "mirror is busy")
    return run


def queue_job(
    session: Session,
    kind: JobKind,
    params: dict[str, Any],
    *,
    trigger: RunTrigger,
    requested_by: str | None,
) -> Run | None:
    """Queue a run of one of the deployment's own jobs; None when one is already pending or
    running (the database refuses a second)."""
    return _queue(
        session,
        Run(
            kind=kind,
            concurrency_key=kind.value,
            params=params,
            trigger=trigger,
            requested_by=requested_by,
        ),
    )


class QueueBell:
    """Rings in this process once a transaction that queued a run has committed, so that the
    workers of this process (the embedded one) claim it at once rather than at their next
    poll. Workers in other processes still find it by polling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[threading.Event] = []

    def subscribe(self, listener: threading.Event) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: threading.Event) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def ring(self, _session: Session | None = None) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.set()


RUN_QUEUED = QueueBell()


def _queue(session: Session, run: Run) -> Run | None:
    run.step = "queued"
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None
    event.listen(session, "after_commit", RUN_QUEUED.ring, once=True)
    return run


def active_job(session: Session, kind: JobKind) -> Run | None:
    return session.scalar(
        select(Run).where(Run.concurrency_key == kind.value, Run.state.in_(ACTIVE_RUN_STATES))
    )


def stop_run(session: Session, mirror: Mirror, *, stopped_by: str) -> Run:
    """Stop the mirror's pending or running run; a running one stops at its next heartbeat."""
    run = active_run(session, mirror.id)
    if run is None:
        raise RunNotActiveError(
            f"mirror {mirror.mirror_name!r} has no pending or running run to stop"
        )
    return _stop(session, run, stopped_by)


def stop_job(session: Session, run_id: int, *, actor: Actor) -> Run:
    """Stop a run of any job, as `stop_run` does a mirror's (administrators' view of the
    queue)."""
    run = get_run(session, run_id)
    if run.state not in ACTIVE_RUN_STATES:
        raise RunNotActiveError(
            f"run {run_id} is {run.state}; only a pending or running run can be stopped"
        )
    record(session, actor, "job.stop", f"run {run.id}", kind=run.kind)
    return _stop(session, run, actor.username)


def _stop(session: Session, run: Run, stopped_by: str) -> Run:
    error = f"stopped by {stopped_by} before it started"
    # Conditional on still being pending: a worker may claim it between our read and this write.
    failed = session.execute(
        update(Run)
        .where(Run.id == run.id, Run.state == RunState.pending)
        .values(
            state=RunState.failed,
            error=error,
            finished_at=utcnow(),
            step="failed",
            stop_requested_by=stopped_by,  # who stopped it, as for a running run
        )
    )
    if failed.rowcount == 1:  # type: ignore[attr-defined]
        add_log(session, run.id, error, level="error")
    else:
        session.execute(update(Run).where(Run.id == run.id).values(stop_requested_by=stopped_by))
        add_log(session, run.id, f"stop requested by {stopped_by}", level="warning")
    session.flush()
    current = session.get(Run, run.id, populate_existing=True)
    assert current is not None
    return current


def finish(session: Session, run: Run, *, error: str | None) -> None:
    error = printable(error) if error else error
    run.state = RunState.failed if error else RunState.completed
    run.error = error
    run.finished_at = utcnow()
    run.step = "failed" if error else "completed"
    if error:
        session.add(RunLogLine(run_id=run.id, level="error", message=error))


def add_log(
    session: Session,
    run_id: int,
    message: str,
    *,
    level: str = "info",
    at: dt.datetime | None = None,
) -> None:
    line = RunLogLine(run_id=run_id, level=level, message=printable(message), at=at or utcnow())
    session.add(line)


def add_log_entries(session: Session, run_id: int, entries: Sequence[LogEntry]) -> None:
    for entry in entries:
        add_log(session, run_id, entry.message, level=entry.level, at=entry.at)


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFoundError(f"run {run_id} does not exist")
    return run


@dataclass(frozen=True)
class RunDescription:
    """A run with what a person reading its history wants beside it."""

    run: Run
    mirror: Mirror
    channel: Channel
    log: list[RunLogLine]
    pending_reason: str | None  # why it has not started (run_queue.py), while pending


def describe_run(session: Session, run_id: int) -> RunDescription:
    """A mirror's run (runs of other jobs are described by `list_jobs`)."""
    run = get_run(session, run_id)
    if run.mirror_id is None:
        raise RunNotFoundError(f"run {run_id} is not a mirror's run")
    mirror = session.get(Mirror, run.mirror_id)
    assert mirror is not None
    channel = session.get(Channel, mirror.channel_id)
    assert channel is not None
    return RunDescription(
        run=run,
        mirror=mirror,
        channel=channel,
        log=run_log(session, run.id),
        pending_reason=run_queue.pending_reason(session, run),
    )


def run_log(session: Session, run_id: int, *, limit: int = 2000) -> list[RunLogLine]:
    lines = session.scalars(
        select(RunLogLine)
        .where(RunLogLine.run_id == run_id)
        .order_by(RunLogLine.id.desc())
        .limit(limit)
    )
    return list(reversed(list(lines)))


# What run lists sort by: the channel's History tab and the Jobs page name these (the page's
# words); each maps to a column, Run.id last so that pages never overlap.
RUN_SORTS: dict[str, SQLColumnExpression[Any]] = {
    "run": Run.id,
    "created": Run.created_at,
    "started": func.coalesce(Run.started_at, Run.created_at),  # a pending run: when queued
    "finished": Run.finished_at,
    "state": Run.state,
    "kind": Run.kind,
    "mirror": Mirror.mirror_name,
    "added": Run.added,
    "downloaded": Run.bytes_downloaded,
}
HISTORY_SORTS = ("run", "mirror", "state", "started", "finished", "added", "downloaded")
JOB_SORTS = ("run", "kind", "state", "created", "finished")
NEWEST_FIRST = Sort("created", descending=True)


def list_runs(
    session: Session,
    *,
    mirror_ids: Sequence[int],
    offset: int,
    limit: int,
    sort: Sort = NEWEST_FIRST,
) -> tuple[list[Run], int]:
    """Runs of the given mirrors, newest first unless told."""
    return _sorted_runs(session, Run.mirror_id.in_(mirror_ids), offset, limit, sort)


def latest_runs(session: Session, mirror_ids: Sequence[int]) -> dict[int, Run]:
    """Each mirror's newest run."""
    newest = (
        select(func.max(Run.id).label("run_id"))
        .where(Run.mirror_id.in_(mirror_ids))
        .group_by(Run.mirror_id)
        .subquery()
    )
    runs = session.scalars(select(Run).join(newest, Run.id == newest.c.run_id))
    return {run.mirror_id: run for run in runs if run.mirror_id is not None}


def list_jobs(
    session: Session,
    *,
    kind: JobKind | None,
    offset: int,
    limit: int,
    sort: Sort = NEWEST_FIRST,
) -> tuple[list[Run], int]:
    """Runs of every kind (or of one), newest first unless told: what administrators see of
    the queue."""
    condition = Run.kind == kind if kind is not None else Run.id.is_not(None)
    return _sorted_runs(session, condition, offset, limit, sort)


def _sorted_runs(
    session: Session, condition: ColumnElement[bool], offset: int, limit: int, sort: Sort
) -> tuple[list[Run], int]:
    total = session.scalar(select(func.count(Run.id)).where(condition)) or 0
    # Ties go the way the sort goes: newest first stays newest first within one moment.
    tie = Run.id.desc() if sort.descending else Run.id.asc()
    order = [*sort.order_by({sort.key: RUN_SORTS[sort.key]}), tie]
    selected = select(Run).where(condition)
    if sort.key == "mirror":
        selected = selected.outerjoin(Mirror, Mirror.id == Run.mirror_id)
    runs = session.scalars(selected.order_by(*order).offset(offset).limit(limit))
    return list(runs), total


# --- the queue, as workers see it --------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    run_id: int
    kind: JobKind
    mirror_id: int | None
    params: dict[str, Any]


def claim_next_run(session: Session, worker_id: str) -> Claim | None:
    """Take the oldest pending run for this worker, or None when the queue is empty.

    PostgreSQL lets several workers look at once (FOR UPDATE SKIP LOCKED); SQLite serialises
    writers, so the conditional update alone makes the claim exclusive.
    """
    candidate = (
        select(Run.id, Run.kind, Run.mirror_id, Run.params)
        .where(Run.state == RunState.pending)
        .order_by(Run.created_at, Run.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = session.execute(candidate).first()
    if row is None:
        return None
    claimed = session.execute(
        update(Run)
        .where(Run.id == row.id, Run.state == RunState.pending)
        .values(
            state=RunState.running,
            worker_id=worker_id,
            started_at=utcnow(),
            heartbeat_at=database_now(session),
            step="starting",
        )
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    add_log(session, row.id, f"claimed by worker {worker_id}")
    return Claim(
        run_id=row.id, kind=JobKind(row.kind), mirror_id=row.mirror_id, params=row.params or {}
    )


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learned: is the run still this worker's, and who asked it to stop."""

    owned: bool
    stop_requested_by: str | None


def heartbeat(
    session: Session,
    run_id: int,
    worker_id: str,
    *,
    step: str,
    progress: tuple[int, int, int],
    counters: dict[str, int],
    excluded_reasons: dict[str, int],
    log_lines: Sequence[LogEntry],
    pace: Pace | None = None,
) -> Beat:
    """Record progress and liveness; a run reaped or deleted meanwhile is no longer owned."""
    record_log(session, run_id, worker_id, log_lines)
    paced = (
        {
            "step_started_at": pace.started_at,
            "step_bytes_done": pace.bytes_done,
            "bytes_per_second": pace.bytes_per_second,
            "eta_seconds": pace.eta_seconds,
        }
        if pace is not None
        else {}
    )
    updated = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.running, Run.worker_id == worker_id)
        .values(
            heartbeat_at=database_now(session),
            step=step,
            progress_done=progress[0],
            progress_total=progress[1],
            bytes_expected=progress[2],
            excluded_reasons=excluded_reasons,
            **counters,
            **paced,
        )
    )
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        # Completed by this worker a moment ago (its landing committed, the code after it
        # still runs): nothing to stop. Anything else was reaped, stopped or deleted.
        done = session.execute(select(Run.state, Run.worker_id).where(Run.id == run_id)).first()
        completed = done is not None and tuple(done) == (RunState.completed, worker_id)
        return Beat(owned=completed, stop_requested_by=None)
    stopper = session.scalar(select(Run.stop_requested_by).where(Run.id == run_id))
    return Beat(owned=True, stop_requested_by=stopper)


def record_log(session: Session, run_id: int, worker_id: str, entries: Sequence[LogEntry]) -> None:
    """Write a worker's log lines for its run, whatever the run's state, but only if the run is
    the one this worker claimed (a row with that id could be another run by now)."""
    if entries and session.scalar(select(Run.worker_id).where(Run.id == run_id)) == worker_id:
        add_log_entries(session, run_id, entries)


def reap_stale_runs(session: Session, *, timeout: float) -> list[int]:
    """Fail running runs whose worker stopped beating, which frees their mirrors to run again.

    Heartbeats and this deadline both use the database's clock, so workers on machines whose
    clocks disagree do not declare each other dead.
    """
    deadline = database_now(session) - dt.timedelta(seconds=timeout)
    stale = session.scalars(
        select(Run)
        .where(
            Run.state == RunState.running,
            or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < deadline),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for run in stale:
        last = run.heartbeat_at.isoformat(timespec="seconds") if run.heartbeat_at else "never"
        finish(
            session,
            run,
            error=(
                f"worker {run.worker_id} stopped sending heartbeats (last at {last}, timeout "
                f"{timeout:g}s); the run was abandoned and {LEFT_BEHIND[JobKind(run.kind)]}"
            ),
        )
    return [run.id for run in stale]


def fail_orphaned_runs(session: Session, gone: Callable[[str], bool]) -> list[int]:
    """Fail at once the running runs whose worker's process `gone` says has ended (a restart
    after a crash), rather than after the heartbeat timeout; their mirrors can run again."""
    running = session.scalars(
        select(Run).where(Run.state == RunState.running).with_for_update(skip_locked=True)
    ).all()
    orphaned = [run for run in running if run.worker_id and gone(run.worker_id)]
    for run in orphaned:
        finish(
            session,
            run,
            error=(
                f"the process of worker {run.worker_id} ended while the run was under way (the "
                f"server was restarted or killed); {LEFT_BEHIND[JobKind(run.kind)]}"
            ),
        )
    return [run.id for run in orphaned]


def oldest_running_start(session: Session, kind: JobKind | None = None) -> dt.datetime | None:
    """When the longest-running run (of `kind`) still under way started: its staging files,
    and the blob rows it touched, are younger."""
    query = select(func.min(Run.started_at)).where(Run.state == RunState.running)
    if kind is not None:
        query = query.where(Run.kind == kind)
    return session.scalar(query)


def fail_run(session: Session, run_id: int, worker_id: str, error: str) -> bool:
    """Record a run's failure, if it is still this worker's."""
    run = session.scalar(
        select(Run).where(
            and_(Run.id == run_id, Run.state == RunState.running, Run.worker_id == worker_id)
        )
    )
    if run is None:
        return False
    finish(session, run, error=error)
    return True


def complete_run(
    session: Session,
    run_id: int,
    worker_id: str,
    *,
    counters: dict[str, int],
    excluded_reasons: dict[str, int],
    report: dict[str, Any] | None = None,
    warnings: list[dict[str, Any]] | None = None,
) -> bool:
    """Mark the run completed in the publishing transaction, if it is still this worker's and
    nobody asked it to stop; `warnings` are what it left out (services/missing_files.py).
    False means the caller must roll back: the run lost its claim."""
    extra: dict[str, Any] = {"report": report} if report is not None else {}
    if warnings is not None:
        extra["warnings"] = warnings
    updated = session.execute(
        update(Run)
        .where(
            Run.id == run_id,
            Run.state == RunState.running,
            Run.worker_id == worker_id,
            Run.stop_requested_by.is_(None),
        )
        .values(
            state=RunState.completed,
            finished_at=utcnow(),
            heartbeat_at=database_now(session),
            step="completed",
            excluded_reasons=excluded_reasons,
            **counters,
            **extra,
        )
    )
    return updated.rowcount == 1  # type: ignore[attr-defined]
