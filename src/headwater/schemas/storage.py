"""The JSON shape of the blob store's usage, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from headwater.models import JobKind, Run
from headwater.services import blobs
from headwater.services.blobs import Totals, Usage
from headwater.services.jobs import latest_job


class UsageOut(BaseModel):
    """What a channel or mirror holds: distinct package blobs and their bytes (a blob shared by
    several counts in each), and a channel's index artifacts."""

    name: str
    files: int
    package_bytes: int
    index_bytes: int

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls(
            name=usage.name,
            files=usage.files,
            package_bytes=usage.package_bytes,
            index_bytes=usage.index_bytes,
        )


class CollectionOut(BaseModel):
    """A run of the `blob-collect` job: its state, and once completed what it collected
    (listed, adopted, deleted, bytes_deleted, kept_in_grace)."""

    run_id: int
    state: str
    finished_at: dt.datetime | None
    collected: dict[str, Any] | None
    created_at: dt.datetime | None = None  # queued
    error: str | None = None

    @classmethod
    def of(cls, run: Run) -> CollectionOut:
        return cls(
            run_id=run.id,
            state=run.state,
            finished_at=run.finished_at,
            collected=(run.report or {}).get("collected"),
            created_at=run.created_at,
            error=run.error,
        )


class StorageOut(BaseModel):
    backend: str
    blobs: int
    bytes: int
    unreferenced: int  # blobs nothing references: the next collection past their grace takes them
    unreferenced_bytes: int
    grace_hours: float
    channels: list[UsageOut]
    mirrors: list[UsageOut]
    last_collection: CollectionOut | None

    @classmethod
    def read(cls, session: Session, backend: str, grace_hours: float) -> StorageOut:
        """The store as it stands, with the newest collection: the REST answer, the Storage
        page and `headwater storage` show this."""
        last = latest_job(session, JobKind.blob_collect)
        return cls.describe(
            backend,
            blobs.totals(session),
            grace_hours,
            blobs.channel_usage(session),
            blobs.mirror_usage(session),
            CollectionOut.of(last) if last is not None else None,
        )

    @classmethod
    def describe(
        cls,
        backend: str,
        totals: Totals,
        grace_hours: float,
        channels: list[Usage],
        mirrors: list[Usage],
        last: CollectionOut | None,
    ) -> StorageOut:
        return cls(
            backend=backend,
            blobs=totals.blobs,
            bytes=totals.bytes,
            unreferenced=totals.unreferenced,
            unreferenced_bytes=totals.unreferenced_bytes,
            grace_hours=grace_hours,
            channels=[UsageOut.of(usage) for usage in channels],
            mirrors=[UsageOut.of(usage) for usage in mirrors],
            last_collection=last,
        )
