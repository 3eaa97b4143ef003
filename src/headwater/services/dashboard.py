"""The home page's summary for one caller: the channels they may read, the runs under way and
the recent failures in those channels, their CVEs by severity, and (for administrators) what
the blob store holds. Every part is bounded; the callers' conditions decide what is theirs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from headwater.cves.scoring import BANDS, severity
from headwater.db import utcnow
from headwater.models import Channel, Cve, CveMatch, Mirror, PackageFile, Run, RunState
from headwater.models.run import ACTIVE_RUN_STATES
from headwater.services import blobs
from headwater.services.channels import ChannelStats, channel_stats

CHANNELS_SHOWN = 10
RUNS_SHOWN = 20
FAILURES_SHOWN = 10
FAILURES_SINCE = dt.timedelta(days=7)


@dataclass(frozen=True)
class RunRow:
    """A run with the mirror and channel it belongs to, as the home page lists them."""

    run: Run
    mirror_name: str
    channel: str


@dataclass(frozen=True)
class Dashboard:
    channels: list[Channel]
    channel_count: int
    stats: dict[int, ChannelStats]
    under_way: list[RunRow]
    failures: list[RunRow]
    severities: dict[str, int]  # distinct CVEs of the channels' heads, by band
    storage: blobs.Totals | None  # administrators only


def read_dashboard(
    session: Session,
    readable: ColumnElement[bool],
    mirrors_readable: ColumnElement[bool],
    *,
    administrator: bool,
) -> Dashboard:
    """`readable`: the channels the caller may read; `mirrors_readable`: those whose mirrors
    and runs they may see (identities.channels_where)."""
    channel_count = session.scalar(select(func.count(Channel.id)).where(readable)) or 0
    channels = list(
        session.scalars(
            select(Channel).where(readable).order_by(Channel.name).limit(CHANNELS_SHOWN)
        )
    )
    return Dashboard(
        channels=channels,
        channel_count=channel_count,
        stats=channel_stats(session, [channel.id for channel in channels]),
        under_way=_runs(session, mirrors_readable, Run.state.in_(ACTIVE_RUN_STATES), RUNS_SHOWN),
        failures=_runs(
            session,
            mirrors_readable,
            (Run.state == RunState.failed) & (Run.finished_at >= utcnow() - FAILURES_SINCE),
            FAILURES_SHOWN,
        ),
        severities=_severities(session, readable),
        storage=blobs.totals(session) if administrator else None,
    )


def _runs(
    session: Session, channels: ColumnElement[bool], condition: ColumnElement[bool], limit: int
) -> list[RunRow]:
    rows = session.execute(
        select(Run, Mirror.mirror_name, Channel.name)
        .join(Mirror, Mirror.id == Run.mirror_id)
        .join(Channel, Channel.id == Mirror.channel_id)
        .where(channels, condition)
        .order_by(Run.id.desc())
        .limit(limit)
    )
    return [RunRow(run, mirror, channel) for run, mirror, channel in rows]


def _severities(session: Session, channels: ColumnElement[bool]) -> dict[str, int]:
    """Each CVE once, whichever of the channels' head files it matches."""
    scores = session.execute(
        select(Cve.id, Cve.score)
        .join(CveMatch, CveMatch.cve_id == Cve.id)
        .join(PackageFile, PackageFile.id == CveMatch.file_id)
        .join(Channel, Channel.id == PackageFile.channel_id)
        .where(channels, PackageFile.in_head(), Cve.withdrawn.is_(False))
        .distinct()
    )
    counted = Counter(severity(score) for _, score in scores)
    return {band: counted.get(band, 0) for band in BANDS}
