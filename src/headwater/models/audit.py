"""The audit log: one row per administrative action, never changed once written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import NEVER_REUSE_IDS, Base, UTCDateTime, intpk, utcnow


class AuditEvent(Base):
    """Who (`actor`, kept as the name it had then), when, from which address, did what
    (`action`, such as `channel.update`) to what (`target`), with the details of the change.

    Database triggers refuse UPDATE and DELETE on this table (migration 0006)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_at", "actor", "at"),
        Index("ix_audit_events_action_at", "action", "at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[intpk]
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None]  # not a foreign key: the log outlives what it names
    actor: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
