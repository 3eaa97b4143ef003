"""A run's page: its counters, progress and log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from headwater.models import Channel, Mirror
from headwater.services import runs as run_service
from headwater.web.session import render, require_browser_identity, resources_of

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: int) -> HTMLResponse:
    identity = require_browser_identity(request)
    with resources_of(request).db.reading() as session:
        run = run_service.get_run(session, run_id)
        mirror = session.get(Mirror, run.mirror_id)
        channel = session.get(Channel, mirror.channel_id) if mirror else None
        log = run_service.run_log(session, run.id)
    context = {"run": run, "mirror": mirror, "channel": channel, "log": log}
    return render(request, "run/detail.html", context, identity=identity)
