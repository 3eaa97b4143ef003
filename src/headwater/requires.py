"""`requires(action)`: the access rule every route declares, and the dependency that holds
it — credential, identity, target, decision (services/access/) — before the handler runs."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from headwater.credentials import client_address, request_token
from headwater.errors import NotAuthenticatedError
from headwater.params import RowId
from headwater.resources import Resources
from headwater.services.access.audit import Actor
from headwater.services.access.decisions import (
    ChannelRef,
    OrganizationRef,
    require,
    require_channel,
    require_match_channel,
    require_organization,
    require_run_channel,
)
from headwater.services.access.identities import identify
from headwater.services.access.rules import RULES, Action, Identity, Target

KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY


@dataclass(frozen=True)
class Allowed:
    """What a handler gets once the caller may do what its route does: who they are (for the
    audit log and `requested_by`) and the channel or organization it is about."""

    identity: Identity | None
    address: str
    found_channel: ChannelRef | None = None
    found_organization: OrganizationRef | None = None

    @property
    def user(self) -> Identity:
        assert self.identity is not None, "the route's rule needs a signed-in caller"
        return self.identity

    @property
    def actor(self) -> Actor:
        return Actor(self.user.user_id, self.user.username, self.address)

    @property
    def channel(self) -> ChannelRef:
        assert self.found_channel is not None, "the route's rule is not on a channel"
        return self.found_channel

    @property
    def organization(self) -> OrganizationRef:
        assert self.found_organization is not None, "the route's rule is not on an organization"
        return self.found_organization


class Requirement:
    """A route's rule: the action, and which path parameter names its target (`channel`,
    `run_id`, `match_id`, `organization`). FastAPI runs it in a worker thread, before the
    handler and before the body is validated."""

    def __init__(self, action: Action, via: str | None = None) -> None:
        self.action = action
        self.target = RULES[action].target
        default = {Target.channel: "channel", Target.organization: "organization"}
        self.via = via or default.get(self.target)
        # The path parameter naming the target is this dependency's own, so that FastAPI
        # validates it and the OpenAPI description shows it.
        parameters = [inspect.Parameter("request", KEYWORD_ONLY, annotation=Request)]
        if self.via is not None:
            kind: Any = RowId if self.via in ("run_id", "match_id") else Annotated[str, Path()]
            parameters.append(inspect.Parameter(self.via, KEYWORD_ONLY, annotation=kind))
        self.__signature__ = inspect.Signature(parameters, return_annotation=Allowed)

    def __repr__(self) -> str:
        return f"requires({self.action.value}{f', via={self.via}' if self.via else ''})"

    def __call__(self, request: Request, **target: Any) -> Allowed:
        resources: Resources = request.app.state.resources
        token = request_token(request)
        address = client_address(request)
        with resources.db.reading() as session:
            identity = identify(session, token)
            if token and identity is None and self.target is not Target.anyone:
                raise NotAuthenticatedError("the token is unknown or has expired; sign in again")
            allowed = self._decide(session, identity, address, target.get(self.via or ""))
        if identity is not None and identity.token_id is not None:
            resources.token_uses.used(identity.token_id)
        return allowed

    def _decide(
        self, session: Session, identity: Identity | None, address: str, value: Any
    ) -> Allowed:
        if self.target in (Target.anyone, Target.instance):
            require(identity, self.action)
            return Allowed(identity, address)
        if self.target is Target.organization:
            found = require_organization(session, identity, self.action, value)
            return Allowed(identity, address, found_organization=found)
        if self.via == "run_id":
            channel = require_run_channel(session, identity, self.action, value)
        elif self.via == "match_id":
            channel = require_match_channel(session, identity, self.action, value)
        else:
            channel = require_channel(session, identity, self.action, value)
        return Allowed(identity, address, found_channel=channel)


def requires(action: Action, via: str | None = None) -> Any:
    """`allowed: Allowed = requires(Action.edit_mirrors)` in a route's parameters."""
    return Depends(Requirement(action, via))


@dataclass(frozen=True)
class RouteRule:
    """One route of the application, and the rule it declares (None: it declares none)."""

    methods: frozenset[str]
    path: str
    requirement: Requirement | None
    dependencies: tuple[Any, ...]  # every dependency's callable, the UI's form proof included


def route_rules(routes: Sequence[BaseRoute]) -> list[RouteRule]:
    """Every route the application answers, as routed (routers included, prefixes applied),
    with its rule: what the access matrix test walks."""
    rules = []
    for route in iter_route_contexts(routes):
        dependant = getattr(route, "dependant", None)
        calls = _calls(dependant) if dependant is not None else ()
        requirement = next((call for call in calls if isinstance(call, Requirement)), None)
        rules.append(
            RouteRule(
                methods=frozenset(route.methods or ()),
                path=str(route.path),
                requirement=requirement,
                dependencies=calls,
            )
        )
    return rules


def _calls(dependant: Any) -> tuple[Any, ...]:
    calls = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is not None:
            calls.append(current.call)
        pending.extend(current.dependencies)
    return tuple(calls)
