"""Signing in to the API."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from headwater.api.deps import ResourcesDep, SignedIn
from headwater.api.json_body import StrictJsonRoute
from headwater.services import auth

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=StrictJsonRoute)


class LoginRequest(BaseModel):
    username: str
    password: str


class TokenResponse(BaseModel):
    token: str


class WhoAmI(BaseModel):
    username: str
    is_admin: bool


@router.post("/login")
def login(body: LoginRequest, resources: ResourcesDep) -> TokenResponse:
    with resources.db.writing() as session:
        token = auth.login(
            session, body.username, body.password, ttl_days=resources.settings.token_ttl_days
        )
    return TokenResponse(token=token)


@router.get("/whoami")
def whoami(identity: SignedIn) -> WhoAmI:
    return WhoAmI(username=identity.username, is_admin=identity.is_admin)
