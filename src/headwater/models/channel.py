"""Channels, their roles, and their revisions with the conda index of each revision's subdirs."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import NEVER_REUSE_IDS, Base, created_at, intpk, updated_at
from headwater.filters import FilterSet
from headwater.models.filter_set import FilterSetColumn


class Privacy(StrEnum):
    public = "public"
    authenticated = "authenticated"
    private = "private"


class ChannelRoleName(StrEnum):
    """What a role on a channel allows, each including the ones before it."""

    read = "read"  # packages, files, CVEs
    write = "write"  # upload and delete files
    manage = "manage"  # settings, filters, roles, mirrors and their history, curation


class OnUnsolvable(StrEnum):
    """What a run does when the channel's must_install specs cannot be solved."""

    fail = "fail"  # the run fails and the previous head stays
    warn = "warn"  # the revision is published with a warning


class Channel(Base):
    """A channel is owned by one user or one organization; its name is global."""

    __tablename__ = "channels"
    __table_args__ = (
        CheckConstraint("(owner_user_id IS NULL) <> (owner_org_id IS NULL)", name="one_owner"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(default="")
    privacy: Mapped[Privacy] = mapped_column(String(20), default=Privacy.public)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    owner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    filters: Mapped[FilterSet] = mapped_column(FilterSetColumn(), default=FilterSet)
    # The revision clients get at the plain URL; 0 before the first change.
    head: Mapped[int] = mapped_column(default=0, server_default="0")
    revisions_kept: Mapped[int | None]  # None: the deployment's REVISIONS_KEPT
    # What a run checks before its revision becomes the head (services/solvability.py):
    # [{"spec": str, "platform": str | None}], the channel URLs clients use beside this one.
    must_install: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    also_available: Mapped[list[str] | None] = mapped_column(JSON)
    on_unsolvable: Mapped[OnUnsolvable] = mapped_column(
        String(8), default=OnUnsolvable.fail, server_default=OnUnsolvable.fail.value
    )
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class ChannelRole(Base):
    """A role on a channel granted to one user or to one group."""

    __tablename__ = "channel_roles"
    __table_args__ = (
        UniqueConstraint("channel_id", "user_id", name="uq_channel_roles_channel_user"),
        UniqueConstraint("channel_id", "group_id", name="uq_channel_roles_channel_group"),
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="one_grantee"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[intpk]
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[ChannelRoleName] = mapped_column(String(16))
    created_at: Mapped[created_at]


class RevisionCause(StrEnum):
    migration = "migration"  # what the channel held when revisions came in
    run = "run"
    upload = "upload"
    deletion = "deletion"
    mirror_deletion = "mirror deletion"
    rollback = "rollback"


class ChannelRevision(Base):
    """One immutable state of a channel: which files it holds is recorded on the files
    (`PackageFile.added_in` / `removed_in`); this row says when, why and by whom."""

    __tablename__ = "channel_revisions"
    __table_args__ = (UniqueConstraint("channel_id", "keep", name="uq_channel_revisions_keep"),)

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(primary_key=True)
    parent: Mapped[int | None]
    created_at: Mapped[created_at]
    cause: Mapped[RevisionCause] = mapped_column(String(20))
    run_id: Mapped[int | None]  # the run that made it, kept as a number once runs are pruned
    actor: Mapped[str | None] = mapped_column(String(64))
    rolled_back_to: Mapped[int | None]
    file_count: Mapped[int]
    added: Mapped[int]
    removed: Mapped[int]
    # {subdir or project: [added, removed]} of what changed
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    keep: Mapped[str | None] = mapped_column(String(64))


class RevisionIndex(Base):
    """The conda index of one subdir of one revision: the artifacts in the blob store.

    Rows exist for the head and its parent (a request that read the old head finishes, and a
    client holding the old shard index still finds its shards), and for an older revision once
    a client pinned it and it was rendered again (`on_demand`); services/revisions.py and the
    retention job drop the rest.
    """

    __tablename__ = "revision_indexes"
    __table_args__ = (Index("ix_revision_indexes_channel_subdir", "channel_id", "subdir"),)

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(primary_key=True)
    subdir: Mapped[str] = mapped_column(String(32), primary_key=True)
    repodata_sha256: Mapped[str] = mapped_column(String(64))
    repodata_size: Mapped[int]
    repodata_zst_sha256: Mapped[str] = mapped_column(String(64))
    repodata_zst_size: Mapped[int]
    shard_index_sha256: Mapped[str] = mapped_column(String(64))
    shard_index_size: Mapped[int]
    # The shards live concatenated in one pack per render.
    shard_pack_sha256: Mapped[str] = mapped_column(String(64))
    record_count: Mapped[int]
    published_at: Mapped[dt.datetime]
    on_demand: Mapped[bool] = mapped_column(default=False, server_default=text("false"))


class PendingRemoval(Base):
    """A file a change in progress will remove when it lands (services/revisions.py)."""

    __tablename__ = "pending_removals"

    change_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    file_id: Mapped[int] = mapped_column(
        ForeignKey("package_files.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[created_at]
