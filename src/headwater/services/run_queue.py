"""Why a run is still pending: where it stands in the queue (how many runs start before it, and
which one is next), and what the workers are doing meanwhile.

Runs start oldest first (`runs.claim_next_run`), one per free worker, so a pending run waits
either behind other pending runs or, first in line, for a worker to take it: every worker busy
with a running run, or no worker taking runs at all (none is started, or all are stopped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.models import Run, RunState

MAX_NAMED_RUNNING = 3  # a sentence names at most this many running runs


@dataclass(frozen=True)
class QueuePlace:
    """A pending run's place in the queue."""

    ahead: int  # pending runs that start before it
    next_up: int | None  # the run just before it (None: it is first in line)
    running: Sequence[int]  # runs under way (the first few)

    def __str__(self) -> str:
        busy = ", ".join(f"#{run_id}" for run_id in self.running)
        if self.ahead:
            plural = "run" if self.ahead == 1 else "runs"
            reason = (
                f"Queued behind {self.ahead} {plural} (run #{self.next_up} starts just before it)"
            )
            return f"{reason}; workers are busy with run {busy}" if busy else reason
        if busy:
            return f"First in line, waiting for a worker to finish run {busy}"
        return (
            "First in line, waiting for a worker to take it; if it stays pending, check that a "
            "worker is running (headwater serve with its embedded worker, or headwater worker)"
        )


def queue_places(session: Session, run_ids: Iterable[int]) -> dict[int, QueuePlace]:
    """The places of those of `run_ids` that are pending, in claim order (`claim_next_run`)."""
    wanted = set(run_ids)
    if not wanted:
        return {}
    queue = session.scalars(
        select(Run.id).where(Run.state == RunState.pending).order_by(Run.created_at, Run.id)
    ).all()
    running = session.scalars(
        select(Run.id)
        .where(Run.state == RunState.running)
        .order_by(Run.started_at, Run.id)
        .limit(MAX_NAMED_RUNNING)
    ).all()
    places = {}
    for position, run_id in enumerate(queue):
        if run_id in wanted:
            before = queue[position - 1] if position else None
            places[run_id] = QueuePlace(ahead=position, next_up=before, running=running)
    return places


def pending_reasons(session: Session, runs: Iterable[Run]) -> dict[int, str]:
    """Why each pending one of `runs` has not started, by run id (lists: history, jobs)."""
    pending = [run.id for run in runs if run is not None and run.state == RunState.pending]
    return {run_id: str(place) for run_id, place in queue_places(session, pending).items()}


def pending_reason(session: Session, run: Run) -> str | None:
    """Why `run` has not started, or None when it has."""
    if run.state != RunState.pending:
        return None
    place = queue_places(session, [run.id]).get(run.id)
    return str(place) if place else None
