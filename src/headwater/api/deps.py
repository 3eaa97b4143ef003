"""What every API endpoint needs from the request: the process resources and who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from headwater.credentials import request_token
from headwater.errors import NotAuthenticatedError
from headwater.resources import Resources
from headwater.services.auth import Identity, identify, require_identity


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


def current_identity(
    request: Request, resources: Annotated[Resources, Depends(get_resources)]
) -> Identity | None:
    token = request_token(request)
    if token is None:
        return None
    with resources.db.reading() as session:
        identity = identify(session, token)
    if identity is None:
        raise NotAuthenticatedError("the token is unknown or has expired; sign in again")
    return identity


def signed_in(identity: Annotated[Identity | None, Depends(current_identity)]) -> Identity:
    return require_identity(identity)


ResourcesDep = Annotated[Resources, Depends(get_resources)]
IdentityDep = Annotated[Identity | None, Depends(current_identity)]
SignedIn = Annotated[Identity, Depends(signed_in)]
