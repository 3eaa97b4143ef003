"""REST for runs: the history of mirrors and channels, one run with its log."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.models import Run
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.schemas.runs import RunDetail, RunOut
from headwater.services import mirrors as mirror_service
from headwater.services import runs as run_service
from headwater.services.access.rules import Action

router = APIRouter(tags=["runs"], route_class=StrictJsonRoute)


def runs_page(runs: list[Run], total: int, names: dict[int, str]) -> Page[RunOut]:
    """Runs of mirrors, each with its mirror's name from `names`."""
    return Page(items=[_named(run, names) for run in runs], total_count=total)


def _named(run: Run, names: dict[int, str]) -> RunOut:
    assert run.mirror_id is not None, "only mirrors' runs are listed here"
    return RunOut.of(run, names.get(run.mirror_id, ""))


@router.get("/api/channels/{channel}/runs")
def channel_runs(
    resources: ResourcesDep, page: PagingDep, allowed: Allowed = requires(Action.read_mirrors)
) -> Page[RunOut]:
    """Every run of every mirror of the channel, newest first."""
    with resources.db.reading() as session:
        mirrors = mirror_service.list_channel_mirrors(session, allowed.channel)
        names = {mirror.id: mirror.mirror_name for mirror in mirrors}
        runs, total = run_service.list_runs(
            session, mirror_ids=list(names), offset=page.offset, limit=page.limit
        )
        return runs_page(runs, total, names)


@router.get("/api/channels/{channel}/mirrors/{mirror_id}/runs")
def mirror_runs(
    mirror_id: RowId,
    resources: ResourcesDep,
    page: PagingDep,
    allowed: Allowed = requires(Action.read_mirrors),
) -> Page[RunOut]:
    with resources.db.reading() as session:
        mirror = mirror_service.get_mirror(session, allowed.channel, mirror_id)
        runs, total = run_service.list_runs(
            session, mirror_ids=[mirror.id], offset=page.offset, limit=page.limit
        )
        return runs_page(runs, total, {mirror.id: mirror.mirror_name})


@router.get("/api/runs/{run_id}")
def show_run(
    run_id: RowId,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.read_mirrors, "run_id"),
) -> RunDetail:
    with resources.db.reading() as session:
        return RunDetail.describe(run_service.describe_run(session, run_id))
