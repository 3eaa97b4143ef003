"""Runs of mirrors, the queue workers claim from, and their log lines."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import NEVER_REUSE_IDS, Base, created_at, intpk


class RunState(StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"


ACTIVE_RUN_STATES = (RunState.pending, RunState.running)
_ACTIVE_CONDITION = text("state IN ('pending', 'running')")


class RunTrigger(StrEnum):
    schedule = "schedule"
    manual = "manual"


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The database, not the code, guarantees that one mirror never has two runs at once.
        Index(
            "uq_runs_one_active_per_mirror",
            "mirror_id",
            unique=True,
            sqlite_where=_ACTIVE_CONDITION,
            postgresql_where=_ACTIVE_CONDITION,
        ),
        Index("ix_runs_state_created", "state", "created_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[intpk]
    mirror_id: Mapped[int] = mapped_column(ForeignKey("mirrors.id", ondelete="CASCADE"), index=True)
    state: Mapped[RunState] = mapped_column(String(20), default=RunState.pending)
    trigger: Mapped[RunTrigger] = mapped_column(String(20))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(200))
    stop_requested_by: Mapped[str | None] = mapped_column(String(64))

    step: Mapped[str] = mapped_column(default="")
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    # The bytes the current step expects to download (0 when it downloads nothing).
    bytes_expected: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    seen: Mapped[int] = mapped_column(default=0)
    added: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    excluded: Mapped[int] = mapped_column(default=0)
    excluded_reasons: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    downloaded: Mapped[int] = mapped_column(default=0)
    bytes_downloaded: Mapped[int] = mapped_column(BigInteger, default=0)

    error: Mapped[str | None] = mapped_column(Text)


class RunLogLine(Base):
    __tablename__ = "run_log_lines"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[intpk]
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[created_at]
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text)
