"""REST for administrators: users — creating them, disabling, making administrators."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.requires import Allowed, requires
from headwater.schemas.access import UserChange, UserCreate, UserOut
from headwater.services.access import users
from headwater.services.access.rules import Action

router = APIRouter(prefix="/api/users", tags=["users"], route_class=StrictJsonRoute)


@router.get("")
def list_users(
    resources: ResourcesDep, page: PagingDep, allowed: Allowed = requires(Action.administer_users)
) -> Page[UserOut]:
    with resources.db.reading() as session:
        found, total = users.list_users(session, offset=page.offset, limit=page.limit)
        return Page(items=[UserOut.of(user) for user in found], total_count=total)


@router.post("", status_code=201)
def create_user(
    body: UserCreate, resources: ResourcesDep, allowed: Allowed = requires(Action.administer_users)
) -> UserOut:
    """A local user who signs in with this password (users of an identity provider are
    created at their first sign-in)."""
    with resources.db.writing() as session:
        user = users.add_user(
            session, body.username, body.password, is_admin=body.is_admin, actor=allowed.actor
        )
        return UserOut.of(user)


@router.get("/{username}")
def show_user(
    username: str, resources: ResourcesDep, allowed: Allowed = requires(Action.administer_users)
) -> UserOut:
    with resources.db.reading() as session:
        return UserOut.of(users.get_user(session, username))


@router.patch("/{username}")
def change_user(
    username: str,
    body: UserChange,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.administer_users),
) -> UserOut:
    """Disable a user (they cannot sign in, and every token they had stops working at once) or
    enable them; make them an administrator or not; set a local user's password (their tokens
    are revoked)."""
    with resources.db.writing() as session:
        user = users.get_user(session, username)
        if body.disabled is not None:
            user = users.set_disabled(session, username, body.disabled, actor=allowed.actor)
        if body.is_admin is not None:
            user = users.set_admin(session, username, body.is_admin, actor=allowed.actor)
        if body.password is not None:
            user = users.set_password(session, username, body.password, actor=allowed.actor)
        return UserOut.of(user)
