"""A run's page: its counters, progress, dependency report and log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.schemas.runs import Progress
from headwater.services import runs as run_service
from headwater.services.access.rules import Action
from headwater.web.session import render, resources_of

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run_id}")
def run_page(
    request: Request, run_id: RowId, allowed: Allowed = requires(Action.read_mirrors, "run_id")
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        described = run_service.describe_run(session, run_id)
    context = {
        "run": described.run,
        "mirror": described.mirror,
        "channel": described.channel,
        "log": described.log,
        "report": described.run.report,
        "progress": Progress.of(described.run),
        "pending_reason": described.pending_reason,
    }
    return render(request, "run/detail.html", context, identity=allowed.identity)
