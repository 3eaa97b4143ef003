"""Signing in to the API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from headwater.api.deps import ResourcesDep, SignedIn
from headwater.api.json_body import StrictJsonRoute
from headwater.credentials import client_address

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=StrictJsonRoute)


class LoginRequest(BaseModel):
    username: str
    password: str


class TokenResponse(BaseModel):
    token: str


class WhoAmI(BaseModel):
    username: str
    is_admin: bool


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: str


@router.post("/login")
async def login(body: LoginRequest, request: Request, resources: ResourcesDep) -> TokenResponse:
    """A token for the user. Wrong passwords are counted per account and attempts per client
    address; past either limit the answer is 429 with Retry-After, whatever the password."""
    token = await resources.sign_in.sign_in(
        resources.db,
        body.username,
        body.password,
        client_address(request),
        ttl_days=resources.settings.token_ttl_days,
    )
    return TokenResponse(token=token)


@router.get("/whoami")
def whoami(identity: SignedIn) -> WhoAmI:
    return WhoAmI(username=identity.username, is_admin=identity.is_admin)


@router.post("/password")
async def change_password(
    body: PasswordChange, request: Request, resources: ResourcesDep, identity: SignedIn
) -> TokenResponse:
    """Change your own password. Every token you had is revoked (other sessions, scripts,
    pip configurations); the answer carries a new one. Wrong current passwords count toward
    the sign-in limits."""
    token = await resources.sign_in.change_password(
        resources.db,
        identity,
        body.current_password,
        body.new_password,
        client_address(request),
        ttl_days=resources.settings.token_ttl_days,
    )
    return TokenResponse(token=token)
