"""Channels and the conda index each one publishes per subdir."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
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
    # Bumped whenever the channel's PyPI files change: servers cache simple pages by it.
    simple_revision: Mapped[int] = mapped_column(default=0, server_default="0")
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


class ChannelIndex(Base):
    """The published conda index of one channel subdir: what clients see, switched atomically.

    The artifacts live in the blob store under `artifact_prefix`; a publish writes new ones and
    then swaps this row in the same transaction that changes the channel's files.
    """

    __tablename__ = "channel_indexes"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    subdir: Mapped[str] = mapped_column(String(32), primary_key=True)
    repodata_sha256: Mapped[str] = mapped_column(String(64))
    repodata_size: Mapped[int]
    repodata_zst_sha256: Mapped[str] = mapped_column(String(64))
    repodata_zst_size: Mapped[int]
    shard_index_sha256: Mapped[str] = mapped_column(String(64))
    shard_index_size: Mapped[int]
    # The shards live concatenated in one pack per publish.
    shard_pack_sha256: Mapped[str] = mapped_column(String(64))
    # The index this one replaced keeps its artifacts for one more publish: requests that read
    # the old row finish reading its files, and clients holding the old shard index still find
    # its shards. Anything older is garbage (services/publish.collect_index_garbage).
    previous_repodata_sha256: Mapped[str | None] = mapped_column(String(64))
    previous_repodata_zst_sha256: Mapped[str | None] = mapped_column(String(64))
    previous_shard_index_sha256: Mapped[str | None] = mapped_column(String(64))
    previous_shard_pack_sha256: Mapped[str | None] = mapped_column(String(64))
    record_count: Mapped[int]
    published_at: Mapped[dt.datetime]
