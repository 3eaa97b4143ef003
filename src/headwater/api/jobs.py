"""REST for the queue as administrators see it: runs of every kind of job."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.models import JobKind
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.resources import deployment_jobs
from headwater.schemas.runs import JobDetail, JobOut
from headwater.services import runs as run_service
from headwater.services.access.rules import Action
from headwater.services.jobs import run_job_now

router = APIRouter(prefix="/api/jobs", tags=["jobs"], route_class=StrictJsonRoute)


@router.get("")
def list_jobs(
    resources: ResourcesDep,
    page: PagingDep,
    kind: JobKind | None = None,
    allowed: Allowed = requires(Action.read_jobs),
) -> Page[JobOut]:
    """Runs of every job (mirrors' runs, CVE feed refreshes), or of one `kind`, newest first."""
    with resources.db.reading() as session:
        jobs, total = run_service.list_jobs(
            session, kind=kind, offset=page.offset, limit=page.limit
        )
        return Page(items=[JobOut.of(job) for job in jobs], total_count=total)


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: JobKind


@router.post("", status_code=202)
def run_job(
    body: JobRequest, resources: ResourcesDep, allowed: Allowed = requires(Action.run_jobs)
) -> JobOut:
    """Queue a run of one of the deployment's jobs now (`revision-prune`, `blob-collect`,
    `cve-refresh`), as its schedule would; 409 while one is under way. Mirrors run from their
    own page."""
    jobs = {job.kind: job.params for job in deployment_jobs(resources.settings)}
    with resources.db.writing() as session:
        run = run_job_now(session, jobs, body.kind, actor=allowed.actor)
        return JobOut.of(run)


@router.get("/{run_id}")
def show_job(
    run_id: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.read_jobs)
) -> JobDetail:
    """A run of any job, with its log (a CVE refresh: what each feed brought, or why not)."""
    with resources.db.reading() as session:
        run = run_service.get_run(session, run_id)
        return JobDetail.describe(run, run_service.run_log(session, run.id))


@router.post("/{run_id}/stop")
def stop_job(
    run_id: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.stop_jobs)
) -> JobOut:
    """Stop a run of any job: a pending one fails at once, a running one at its heartbeat
    (a CVE refresh keeps the feeds it imported before)."""
    with resources.db.writing() as session:
        return JobOut.of(run_service.stop_job(session, run_id, actor=allowed.actor))
