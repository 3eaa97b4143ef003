"""REST for administrators: disabling and enabling users."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from headwater.api.deps import ResourcesDep, SignedIn
from headwater.api.json_body import StrictJsonRoute
from headwater.errors import PermissionDeniedError
from headwater.services import auth

router = APIRouter(prefix="/api/users", tags=["users"], route_class=StrictJsonRoute)


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool


class UserOut(BaseModel):
    username: str
    is_admin: bool
    disabled: bool


@router.patch("/{username}")
def change_user(
    username: str, body: UserChange, resources: ResourcesDep, identity: SignedIn
) -> UserOut:
    """Disable a user (they cannot sign in, and every token they had stops working at once) or
    enable them again. Administrators only."""
    if not identity.is_admin:
        raise PermissionDeniedError("only administrators can disable or enable users")
    with resources.db.writing() as session:
        user = auth.set_disabled(session, username, body.disabled, by=identity.username)
        return UserOut(username=user.username, is_admin=user.is_admin, disabled=user.disabled)
