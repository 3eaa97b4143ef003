"""The home page: for a signed-in person, what needs their attention across the channels they
may read (services/dashboard.py); anyone else goes to the channels they may browse."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from headwater.requires import Allowed, requires
from headwater.services.access.identities import channels_where
from headwater.services.access.rules import Action
from headwater.services.dashboard import read_dashboard
from headwater.web.session import render, resources_of

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, allowed: Allowed = requires(Action.anyone)) -> Response:
    identity = allowed.identity
    if identity is None:
        return RedirectResponse("/channels", status_code=303)
    with resources_of(request).db.reading() as session:
        dashboard = read_dashboard(
            session,
            channels_where(identity, Action.read_channel),
            channels_where(identity, Action.read_mirrors),
            administrator=identity.is_admin,
        )
    page: HTMLResponse = render(request, "dashboard.html", {"home": dashboard}, identity=identity)
    return page
