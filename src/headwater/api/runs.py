"""REST for runs: the history of mirrors and channels, one run with its log, stopping."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.api.deps import ResourcesDep, SignedIn
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.models import Run
from headwater.params import RowId
from headwater.schemas.runs import RunDetail, RunOut
from headwater.services import access
from headwater.services import mirrors as mirror_service
from headwater.services import runs as run_service

router = APIRouter(tags=["runs"], route_class=StrictJsonRoute)


def runs_page(runs: list[Run], total: int, names: dict[int, str]) -> Page[RunOut]:
    return Page(
        items=[RunOut.of(run, names.get(run.mirror_id, "")) for run in runs], total_count=total
    )


@router.get("/api/channels/{channel}/runs")
def channel_runs(
    channel: str, resources: ResourcesDep, page: PagingDep, identity: SignedIn
) -> Page[RunOut]:
    """Every run of every mirror of the channel, newest first."""
    with resources.db.reading() as session:
        access.managed_channel(session, channel, identity)
        mirrors = mirror_service.list_channel_mirrors(session, channel)
        names = {mirror.id: mirror.mirror_name for mirror in mirrors}
        runs, total = run_service.list_runs(
            session, mirror_ids=list(names), offset=page.offset, limit=page.limit
        )
        return runs_page(runs, total, names)


@router.get("/api/channels/{channel}/mirrors/{mirror_id}/runs")
def mirror_runs(
    channel: str, mirror_id: RowId, resources: ResourcesDep, page: PagingDep, identity: SignedIn
) -> Page[RunOut]:
    with resources.db.reading() as session:
        access.managed_channel(session, channel, identity)
        mirror = mirror_service.get_mirror(session, channel, mirror_id)
        runs, total = run_service.list_runs(
            session, mirror_ids=[mirror.id], offset=page.offset, limit=page.limit
        )
        return runs_page(runs, total, {mirror.id: mirror.mirror_name})


@router.get("/api/runs/{run_id}")
def show_run(run_id: RowId, resources: ResourcesDep, identity: SignedIn) -> RunDetail:
    with resources.db.reading() as session:
        description = run_service.describe_run(session, run_id)
        access.managed_channel(session, description.channel.name, identity)
        return RunDetail.describe(description)
