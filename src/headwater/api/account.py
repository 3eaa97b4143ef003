"""REST for one's own account: who the caller is, and their tokens (`/api/account/tokens`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.schemas.access import AccountOut, Membership, TokenCreate, TokenCreated, TokenOut
from headwater.services.access import accounts
from headwater.services.access.rules import Action
from headwater.services.access.tokens import list_tokens

router = APIRouter(prefix="/api/account", tags=["account"], route_class=StrictJsonRoute)


@router.get("")
def show_account(
    resources: ResourcesDep, allowed: Allowed = requires(Action.read_account)
) -> AccountOut:
    """Who the caller is: their organizations and groups, and what this token carries."""
    identity = allowed.user
    with resources.db.reading() as session:
        found = accounts.account(session, identity)
    scopes = identity.grant.scopes
    return AccountOut(
        username=found.user.username,
        is_admin=found.user.is_admin,
        source=found.user.source,
        email=found.user.email,
        organizations=[Membership(organization=o, role=r) for o, r in found.organizations],
        groups=found.groups,
        token_kind="session" if scopes is None else "personal",
        token_scopes=sorted(scopes) if scopes is not None else None,
    )


@router.get("/tokens")
def list_account_tokens(
    resources: ResourcesDep, allowed: Allowed = requires(Action.manage_account)
) -> Page[TokenOut]:
    """Your sessions and personal tokens that have not expired, newest first."""
    identity = allowed.user
    with resources.db.reading() as session:
        tokens = list_tokens(session, identity.user_id)
        names = accounts.channel_names(session, tokens)
        items = [TokenOut.of(token, names, identity.token_id) for token in tokens]
    return Page(items=items, total_count=len(items))


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenCreate, resources: ResourcesDep, allowed: Allowed = requires(Action.manage_account)
) -> TokenCreated:
    """A personal token with `scopes` (artifact:view, artifact:create, channel:edit,
    mirror:edit, cve:manage, admin) and/or `resources` (channels, each with the most it may do
    there: read, write or manage). It is shown in this answer only; it expires at `expires_at`
    (at most HEADWATER_MAX_TOKEN_DAYS ahead; by default HEADWATER_TOKEN_TTL_DAYS)."""
    settings = resources.settings
    resources_wanted = (
        [(resource.channel, resource.role) for resource in body.resources]
        if body.resources is not None
        else None
    )
    with resources.db.writing() as session:
        row, token = accounts.create_token(
            session,
            allowed.user,
            body.name,
            body.expires_at,
            body.scopes,
            resources_wanted,
            actor=allowed.actor,
            default_days=settings.token_ttl_days,
            max_days=settings.max_token_days,
        )
        names = accounts.channel_names(session, [row])
        shown = TokenOut.of(row, names, None)
    return TokenCreated(**shown.model_dump(), token=token)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.manage_account)
) -> Response:
    """Revoke one of your tokens (or sessions): it stops working at once."""
    with resources.db.writing() as session:
        accounts.remove_token(session, allowed.user, token_id, actor=allowed.actor)
    return Response(status_code=204)
