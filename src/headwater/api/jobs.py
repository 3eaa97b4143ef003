"""REST for the queue as administrators see it: runs of every kind of job."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.models import JobKind
from headwater.requires import Allowed, requires
from headwater.schemas.runs import JobOut
from headwater.services import runs as run_service
from headwater.services.access.rules import Action

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
