"""A channel's revisions in the REST API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from headwater.models import ChannelRevision, PackageFile


class RevisionOut(BaseModel):
    number: int
    parent: int | None
    created_at: dt.datetime
    cause: str  # migration, run, upload, deletion, mirror deletion, rollback
    run_id: int | None
    actor: str | None
    rolled_back_to: int | None
    file_count: int
    added: int
    removed: int
    changes: dict[str, list[int]]  # subdir or project: [added, removed]
    keep: str | None
    head: bool
    url: str  # where clients pin it

    @classmethod
    def of(cls, channel: str, revision: ChannelRevision, head: int) -> RevisionOut:
        return cls(
            number=revision.number,
            parent=revision.parent,
            created_at=revision.created_at,
            cause=revision.cause,
            run_id=revision.run_id,
            actor=revision.actor,
            rolled_back_to=revision.rolled_back_to,
            file_count=revision.file_count,
            added=revision.added,
            removed=revision.removed,
            changes=revision.changes,
            keep=revision.keep,
            head=revision.number == head,
            url=f"/api/repo/{channel}@{revision.number}/",
        )


class ChangedFile(BaseModel):
    subdir: str  # a conda subdir, or a PyPI project
    filename: str
    sha256: str
    package_type: str

    @classmethod
    def of(cls, file: PackageFile) -> ChangedFile:
        return cls(
            subdir=file.subdir,
            filename=file.filename,
            sha256=file.sha256,
            package_type=file.package_type,
        )


class RevisionDetail(RevisionOut):
    """A revision with its difference from its parent (at most 1,000 files each way)."""

    files_added: list[ChangedFile]
    files_removed: list[ChangedFile]


class KeepIn(BaseModel):
    keep: str | None  # a name to keep the revision under past retention; null lets it go
