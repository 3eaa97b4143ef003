"""What a mirror run needs to know of its mirror and channel, read once as it starts: the
upstream, the mode, what to do with a file upstream cannot deliver, both filter sets and the
rules made of them, the CVE database's state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import orjson
from sqlalchemy.orm import Session

from headwater.cves.names import CondaNames
from headwater.errors import UpstreamError
from headwater.filters import FilterSet, named_subdirs
from headwater.filters.python_rules import PythonMirrorRules
from headwater.filters.rules import MirrorRules
from headwater.models import Channel, Mirror, MirrorMode, MirrorType, OnMissingFile
from headwater.services.cve_matching import CveOracle, database_revision, load_matcher
from headwater.services.solvability import ChannelChecks

# Bump when the meaning of a published record changes, so that every mirror re-reads upstream.
# 2: blobs are proven by their upstream (migration 0004); the next run of an active mirror
# fetches again what it keeps, and reads again the core metadata it extracts from wheels.
_PROCESSING_VERSION = 2


@dataclass(frozen=True)
class MirrorJob:
    """What a run needs to know of its mirror and channel, read once when it starts."""

    run_id: int
    worker_id: str
    mirror_id: int
    mirror_name: str
    mirror_type: MirrorType
    channel_id: int
    channel_name: str
    source_root: str
    mode: MirrorMode
    proxy: str | None
    mirror_filters: FilterSet
    channel_filters: FilterSet
    # Set for active mirrors with CVE rules: what those rules read, and the database's state.
    cve: CveOracle | None = None
    cve_revision: str | None = None
    # How conda names map to PyPI names, to match the channel's files when the run publishes.
    cve_names: CondaNames | None = None
    # What the channel asks of every revision (must_install, also_available, on_unsolvable).
    checks: ChannelChecks = field(default_factory=ChannelChecks)
    # What an active run does with a file upstream lists but cannot deliver (404, 410).
    on_missing_file: OnMissingFile = OnMissingFile.skip

    @property
    def filters_digest(self) -> str:
        """Changes whenever what the mirror would take from an unchanged upstream changes."""
        document = {
            "version": _PROCESSING_VERSION,
            "mode": self.mode,
            "source_root": self.source_root,
            "mirror": self.mirror_filters.to_json(),
            "channel": self.channel_filters.to_json(),
            "cve": self.cve_revision,
            "checks": self.checks.to_json(),
        }
        return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def rules(self) -> MirrorRules:
        """The mirror's and the channel's rules. CVE rules apply to active mirrors only."""
        cve = self.cve.for_conda if self.cve is not None else None
        return MirrorRules(self.mirror_filters, self.channel_filters, cve=cve)

    def python_rules(self) -> PythonMirrorRules:
        cve = self.cve.for_python if self.cve is not None else None
        return PythonMirrorRules(self.mirror_filters, self.channel_filters, cve=cve)

    @property
    def takes_dependencies(self) -> bool:
        return self.mirror_filters.takes_dependencies or self.channel_filters.takes_dependencies

    @property
    def newest_dependencies(self) -> bool:
        """Whether only the newest version satisfying a dependency is taken (the mirror's
        choice, else the channel's; every version by default)."""
        choice = self.mirror_filters.dependencies or self.channel_filters.dependencies
        return choice == "newest"

    def named_subdirs(self) -> list[str] | None:
        """The subdirs both filter sets allow when either names some; None when neither does."""
        return named_subdirs(self.mirror_filters, self.channel_filters)


def load_job(
    session: Session,
    run_id: int,
    worker_id: str,
    mirror_id: int,
    cve_names: CondaNames | None = None,
) -> MirrorJob:
    mirror = session.get(Mirror, mirror_id)
    if mirror is None:
        raise UpstreamError(f"mirror {mirror_id} no longer exists")
    channel = session.get(Channel, mirror.channel_id)
    assert channel is not None
    cve = revision = None
    wants_cve = mirror.filters.has_cve_rules or channel.filters.has_cve_rules
    if mirror.mirror_mode == MirrorMode.active and wants_cve:
        cve = CveOracle(session, load_matcher(session, cve_names or CondaNames()), channel.id)
        revision = database_revision(session)
    return MirrorJob(
        run_id=run_id,
        worker_id=worker_id,
        mirror_id=mirror.id,
        mirror_name=mirror.mirror_name,
        mirror_type=mirror.mirror_type,
        channel_id=channel.id,
        channel_name=channel.name,
        source_root=mirror.source_root,
        mode=mirror.mirror_mode,
        proxy=mirror.proxy,
        mirror_filters=mirror.filters,
        channel_filters=channel.filters,
        cve=cve,
        cve_revision=revision,
        cve_names=cve_names,
        checks=ChannelChecks.of(channel),
        on_missing_file=OnMissingFile(mirror.on_missing_file),
    )
