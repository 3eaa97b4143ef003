"""Mirrors: recurring copies of one upstream into one channel, and what they know of upstream."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import NEVER_REUSE_IDS, Base, created_at, intpk, updated_at
from headwater.filters import FilterSet
from headwater.models.filter_set import FilterSetColumn

DEFAULT_CRON = "0 0 * * *"


class MirrorType(StrEnum):
    conda = "conda"
    python_simple = "python_simple"


class MirrorMode(StrEnum):
    active = "active"
    passive = "passive"


class OnMissingFile(StrEnum):
    """What an active run does with a file upstream lists but cannot deliver (404, 410)."""

    skip = "skip"  # left out of the revision with a warning, tried again next run
    fail = "fail"  # the run fails and the previous head stays


class Mirror(Base):
    __tablename__ = "mirrors"
    __table_args__ = (UniqueConstraint("channel_id", "mirror_name"), NEVER_REUSE_IDS)

    id: Mapped[intpk]
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    mirror_name: Mapped[str] = mapped_column(String(100))
    mirror_type: Mapped[MirrorType] = mapped_column(String(20))
    source_root: Mapped[str]
    mirror_mode: Mapped[MirrorMode] = mapped_column(String(20))
    cron: Mapped[str] = mapped_column(String(100), default=DEFAULT_CRON)
    proxy: Mapped[str | None]
    on_missing_file: Mapped[OnMissingFile] = mapped_column(
        String(8), default=OnMissingFile.skip, server_default=OnMissingFile.skip.value
    )
    filters: Mapped[FilterSet] = mapped_column(FilterSetColumn(), default=FilterSet)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class MirrorSubdirState(Base):
    """What the last published run of a mirror saw of one upstream subdir.

    The HTTP validators let the next run ask "changed since?" and skip an unchanged subdir;
    `filters_digest` makes a change of filters count as a change even when upstream has none.
    """

    __tablename__ = "mirror_subdir_states"

    mirror_id: Mapped[int] = mapped_column(
        ForeignKey("mirrors.id", ondelete="CASCADE"), primary_key=True
    )
    subdir: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str]
    files_url: Mapped[str]  # where this subdir's files are: the repodata's dir, or CEP-15 base_url
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    filters_digest: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[dt.datetime]
