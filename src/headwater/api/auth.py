"""Signing in to the API, and changing one's own password."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.requires import Allowed, requires
from headwater.services.access.rules import Action

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=StrictJsonRoute)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    password: str


class TokenResponse(BaseModel):
    token: str


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: str


@router.post("/login")
async def login(
    body: LoginRequest, resources: ResourcesDep, allowed: Allowed = requires(Action.anyone)
) -> TokenResponse:
    """A session token for the user (local, or of the LDAP directory when one is set). Wrong
    passwords are counted per account and attempts per client address; past either limit the
    answer is 429 with Retry-After, whatever the password."""
    token = await resources.sign_in.sign_in(
        resources.db,
        body.username,
        body.password,
        allowed.address,
        ttl_days=resources.settings.token_ttl_days,
    )
    return TokenResponse(token=token)


@router.post("/password")
async def change_password(
    body: PasswordChange,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_account),
) -> TokenResponse:
    """Change your own password. Every token you had is revoked (other sessions, scripts,
    pip configurations); the answer carries a new one. Wrong current passwords count toward
    the sign-in limits."""
    token = await resources.sign_in.change_password(
        resources.db,
        allowed.user,
        body.current_password,
        body.new_password,
        allowed.address,
        ttl_days=resources.settings.token_ttl_days,
    )
    return TokenResponse(token=token)
