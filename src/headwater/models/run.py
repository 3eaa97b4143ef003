"""The queue workers claim from: runs of jobs of several kinds (a mirror's run, a refresh of
the CVE feeds), their history and their log lines; and the schedules of jobs that belong to
no mirror."""

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


class JobKind(StrEnum):
    """What a run does. Each kind has its executor in worker/runner.py."""

    mirror = "mirror"  # a mirror's run: its mirror_id is set
    cve_refresh = "cve-refresh"  # import the CVE feeds (HEADWATER_CVE_FEEDS)
    revision_prune = "revision-prune"  # prune channels' revisions past retention
    blob_collect = "blob-collect"  # delete the blobs nothing references (garbage collection)


def mirror_key(mirror_id: int) -> str:
    return f"mirror:{mirror_id}"


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The database, not the code, guarantees that two runs of one job (a mirror's, the CVE
        # refresh) are never pending or running at once.
        Index(
            "uq_runs_one_active_per_key",
            "concurrency_key",
            unique=True,
            sqlite_where=_ACTIVE_CONDITION,
            postgresql_where=_ACTIVE_CONDITION,
        ),
        Index("ix_runs_state_created", "state", "created_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[intpk]
    kind: Mapped[JobKind] = mapped_column(
        String(20), default=JobKind.mirror, server_default=JobKind.mirror.value
    )
    # "mirror:<id>" for a mirror's runs, the kind for jobs of the whole deployment.
    concurrency_key: Mapped[str] = mapped_column(String(100))
    mirror_id: Mapped[int | None] = mapped_column(
        ForeignKey("mirrors.id", ondelete="CASCADE"), index=True
    )
    # What the job was asked to do, as queued (the feeds of a CVE refresh).
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
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
    # The current step's pace, as the heartbeat measured it (services/progress.py Pace): when
    # it started, the bytes it downloaded, its recent rate and the time it has left (None: not
    # known).
    step_started_at: Mapped[dt.datetime | None]
    step_bytes_done: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes_per_second: Mapped[float | None]
    eta_seconds: Mapped[float | None]

    seen: Mapped[int] = mapped_column(default=0)
    added: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    excluded: Mapped[int] = mapped_column(default=0)
    excluded_reasons: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    downloaded: Mapped[int] = mapped_column(default=0)
    bytes_downloaded: Mapped[int] = mapped_column(BigInteger, default=0)

    error: Mapped[str | None] = mapped_column(Text)
    # A mirror run's dependency report (services/solvability.py): the files taken as
    # dependencies, kept files whose dependencies are missing, the must_install solves.
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What a completed run left out and why (services/missing_files.py RunWarning.to_json):
    # the files upstream listed but could not deliver. None for runs from before.
    warnings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class RunLogLine(Base):
    __tablename__ = "run_log_lines"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[intpk]
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[created_at]
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text)


class JobSchedule(Base):
    """When a job of the whole deployment fires next. Schedulers in every process move
    `next_run_at` with a conditional update, so each firing is queued once."""

    __tablename__ = "job_schedules"

    kind: Mapped[JobKind] = mapped_column(String(20), primary_key=True)
    cron: Mapped[str] = mapped_column(String(200))
    next_run_at: Mapped[dt.datetime]
