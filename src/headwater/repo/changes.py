"""What this process commits that the fast path must see at once: a channel's head moved, its
privacy changed, it was made or deleted; a token, a role or a membership changed.

SQLAlchemy's session events collect them (the objects each flush writes, and the UPDATE,
DELETE and INSERT statements a session executes) and tell every listener after the commit
(nothing after a rollback). So with the embedded worker, an upload, a finished run or a revoked
token shows on the very next request. What other processes commit (other `serve` replicas,
`headwater worker`, `headwater` commands on the server) is seen within the fast path's windows
instead: about a second for a channel's head and privacy (repo/heads.py),
HEADWATER_TOKEN_CACHE_SECONDS for what a token may read (repo/grants.py).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.orm import ORMExecuteState, Session

from headwater.models import (
    ApiToken,
    ApiTokenChannel,
    Channel,
    ChannelRevision,
    ChannelRole,
    GroupMember,
    Membership,
    RevisionIndex,
    User,
)

_ACCESS = (ApiToken, ApiTokenChannel, ChannelRole, GroupMember, Membership, User)
_KEY = "headwater.repo.changes"


_ACCESS_TABLES = frozenset(model.__tablename__ for model in _ACCESS)


@dataclass
class Changes:
    channel_ids: set[int] = field(default_factory=set)
    channel_names: set[str] = field(default_factory=set)
    every_channel: bool = False  # a statement on the channels table: which rows, unknown
    access: bool = False  # who may read what may have changed

    def __bool__(self) -> bool:
        return bool(self.channel_ids or self.channel_names or self.every_channel or self.access)


class Listener(Protocol):
    def changed(self, database: URL, changes: Changes) -> None:
        """Called in the committing thread: keep it to a few atomic updates."""


_listeners: weakref.WeakSet[Any] = weakref.WeakSet()
_installed = threading.Lock()
_done = False


def listen(listener: Listener) -> None:
    """Tell `listener` of every change committed in this process from now on."""
    global _done
    with _installed:
        if not _done:
            event.listen(Session, "after_flush", _collect)
            event.listen(Session, "do_orm_execute", _collect_statement)
            event.listen(Session, "after_commit", _tell)
            event.listen(Session, "after_rollback", _forget)
            _done = True
        _listeners.add(listener)


def _collect(session: Session, _context: Any) -> None:
    changes: Changes = session.info.setdefault(_KEY, Changes())
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, ChannelRevision | RevisionIndex):
            changes.channel_ids.add(instance.channel_id)
        elif isinstance(instance, Channel):
            changes.channel_ids.add(instance.id)
            changes.channel_names.add(instance.name)
            changes.access = True  # its privacy, its owner
        elif isinstance(instance, _ACCESS):
            changes.access = True


def _collect_statement(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table == Channel.__tablename__:
        state.session.info.setdefault(_KEY, Changes()).every_channel = True
    elif table in _ACCESS_TABLES:
        state.session.info.setdefault(_KEY, Changes()).access = True


def _tell(session: Session) -> None:
    changes: Changes | None = session.info.pop(_KEY, None)
    if not changes:
        return
    database = session.get_bind().engine.url
    with _installed:  # a listener added by another thread meanwhile
        listeners = list(_listeners)
    for listener in listeners:
        listener.changed(database, changes)


def _forget(session: Session) -> None:
    session.info.pop(_KEY, None)
