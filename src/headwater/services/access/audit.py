"""The audit log: every administrative action, recorded by the service that makes it, in the
same transaction, and read back by administrators (paged, filtered, or as JSON lines)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, SQLColumnExpression, func, select, true
from sqlalchemy.orm import Session

from headwater.errors import InvalidInputError
from headwater.inputs import printable
from headwater.models import AuditEvent
from headwater.sorting import Sort

MAX_TARGET_LENGTH = 300


@dataclass(frozen=True)
class Actor:
    """Who did it, and from where: a signed-in user at a client address, or Headwater itself
    (a command run on the server)."""

    user_id: int | None
    username: str
    address: str

    @classmethod
    def server(cls, command: str) -> Actor:
        return cls(user_id=None, username="(server)", address=command)

    @property
    def counted_as(self) -> str:
        """Whom a per-caller limit counts this against: the user, or the address signed out."""
        return f"user:{self.user_id}" if self.user_id is not None else f"address:{self.address}"


def record(session: Session, actor: Actor, action: str, target: str, **details: Any) -> AuditEvent:
    """Add one event; `details` say what changed (no secrets: never a password or a token)."""
    event = AuditEvent(
        actor_id=actor.user_id,
        actor=actor.username[:64],
        address=actor.address[:64],
        action=action,
        target=printable(target)[:MAX_TARGET_LENGTH],
        details=orjson.loads(orjson.dumps(details, default=str)),
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None  # an action, or its prefix up to a dot: "channel" or "channel."
    target: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def condition(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if self.actor:
            parts.append(AuditEvent.actor == self.actor)
        if self.action:
            family = self.action.rstrip(".")
            parts.append(
                (AuditEvent.action == family)
                | AuditEvent.action.startswith(family + ".", autoescape=True)
            )
        if self.target:
            parts.append(AuditEvent.target == self.target)
        if self.since:
            parts.append(AuditEvent.at >= _utc(self.since))
        if self.until:
            parts.append(AuditEvent.at < _utc(self.until))
        condition: ColumnElement[bool] = true()
        for part in parts:
            condition = condition & part
        return condition


def _utc(moment: dt.datetime) -> dt.datetime:
    """A moment from a filter; without a time zone, UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidInputError(f"{moment.isoformat()} is out of range") from None


def _selected(query: AuditQuery) -> Select[AuditEvent]:
    return select(AuditEvent).where(query.condition()).order_by(AuditEvent.id.desc())


# What the audit page sorts by, in its words.
EVENT_SORTS: dict[str, SQLColumnExpression[Any]] = {
    "when": AuditEvent.at,
    "actor": AuditEvent.actor,
    "action": AuditEvent.action,
    "target": AuditEvent.target,
}


def list_events(
    session: Session,
    query: AuditQuery,
    *,
    offset: int,
    limit: int,
    sort: Sort = Sort("when", descending=True),
) -> tuple[list[AuditEvent], int]:
    """Matching events, newest first unless told; ties go the way the sort goes."""
    total = session.scalar(select(func.count(AuditEvent.id)).where(query.condition())) or 0
    tie = AuditEvent.id.desc() if sort.descending else AuditEvent.id.asc()
    order = [*sort.order_by({sort.key: EVENT_SORTS[sort.key]}), tie]
    selected = select(AuditEvent).where(query.condition()).order_by(*order)
    events = session.scalars(selected.offset(offset).limit(limit))
    return list(events), total


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "address": event.address,
        "action": event.action,
        "target": event.target,
        "details": event.details,
    }


def export_lines(session: Session, query: AuditQuery, *, batch: int = 1000) -> Iterator[bytes]:
    """Every matching event, newest first, one JSON document per line, read in batches."""
    before: int | None = None
    while True:
        selected = _selected(query)
        if before is not None:
            selected = selected.where(AuditEvent.id < before)
        events = list(session.scalars(selected.limit(batch)))
        for event in events:
            yield orjson.dumps(event_json(event)) + b"\n"
        if len(events) < batch:
            return
        before = events[-1].id
