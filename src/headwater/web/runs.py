"""A run's page: its counters, progress and log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from headwater.params import RowId
from headwater.services import access
from headwater.services import runs as run_service
from headwater.web.session import render, require_browser_identity, resources_of

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: RowId) -> HTMLResponse:
    identity = require_browser_identity(request)
    with resources_of(request).db.reading() as session:
        described = run_service.describe_run(session, run_id)
        access.managed_channel(session, described.channel.name, identity)
    context = {
        "run": described.run,
        "mirror": described.mirror,
        "channel": described.channel,
        "log": described.log,
    }
    return render(request, "run/detail.html", context, identity=identity)
