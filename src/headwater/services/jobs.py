"""The deployment's own jobs as people run them: now, on request (REST, the Jobs and Storage
pages, `headwater job run`), and the newest run of one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.errors import ConflictError, InvalidInputError
from headwater.models import JobKind, Run, RunTrigger
from headwater.services.access.audit import Actor, record
from headwater.services.runs import active_job, queue_job


def run_job_now(
    session: Session, jobs: Mapping[JobKind, dict[str, Any]], kind: str, *, actor: Actor
) -> Run:
    """Queue a run of one of the deployment's `jobs` (kind → params) now, as its schedule
    would, audited as `job.run`: what Run now does in the REST API, the jobs page and the
    storage page. ConflictError while one is under way."""
    job = JobKind(kind) if kind in set(JobKind) else None
    params = jobs.get(job) if job is not None else None
    if job is None or params is None:
        known = ", ".join(sorted(each.value for each in jobs))
        raise InvalidInputError(
            f"{str(kind)!r} is not a job of this deployment to run now; its jobs: {known}"
        )
    run = queue_job(session, job, params, trigger=RunTrigger.manual, requested_by=actor.username)
    if run is None:
        under_way = active_job(session, job)
        raise ConflictError(
            f"a {job.value} run is under way"
            + (f" (#{under_way.id})" if under_way is not None else "")
        )
    record(session, actor, "job.run", job.value, run_id=run.id)
    session.flush()
    return run


def latest_job(session: Session, kind: JobKind) -> Run | None:
    """The newest run of a job of the deployment (the last garbage collection)."""
    return session.scalar(select(Run).where(Run.kind == kind).order_by(Run.id.desc()).limit(1))
