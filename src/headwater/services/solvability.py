"""Checking a mirror run's revision before it becomes the head: every kept package's
dependencies are there (or in the channels available beside it), and the channel's
must_install specs solve with the real solver (docs/concepts.md, "Dependencies").

A `DependencyCheck` is made by the run (it holds what the run read from upstream, to name the
filter that removed a missing dependency) and called by services/revisions.apply_change through
`MirrorRunChange.verify`, on the revision as built, before it lands. The report is saved on the
run either way; an unsolvable must_install with `on_unsolvable: fail` fails the run and the
previous head stays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import rattler
from sqlalchemy import select, update

from headwater.db import Database
from headwater.dependencies.conda import (
    NOARCH,
    Lookup,
    Pool,
    SubdirIndex,
    check_revision,
    dependency_spec,
)
from headwater.dependencies.report import Cause, DependencyReport, MustInstall, Notes
from headwater.dependencies.settings import MustInstallSpec, by_platform, stored_must_install
from headwater.errors import HeadwaterError, UnsolvableError
from headwater.formats.conda.repodata import CondaRecord
from headwater.models import Channel, OnUnsolvable, PackageFile, PackageType, Run
from headwater.services.indexes import repodata_key
from headwater.services.revisions import Candidate
from headwater.storage import BlobStore
from headwater.upstreams.conda import CondaUpstream
from headwater.upstreams.http import HttpPolicy, shown_url, upstream_client

T = TypeVar("T")
log = logging.getLogger(__name__)
SOLVE_SECONDS = 120  # one platform's must_install solve gives up after this
MAX_ELSEWHERE_LOOKUPS = 500  # fetches from also_available channels in one check


@dataclass(frozen=True)
class ChannelChecks:
    """What the channel asks of every revision a run builds."""

    must_install: tuple[MustInstallSpec, ...] = ()
    also_available: tuple[str, ...] = ()
    on_unsolvable: OnUnsolvable = OnUnsolvable.fail

    def to_json(self) -> dict[str, Any]:
        return {
            "must_install": [spec.to_json() for spec in self.must_install],
            "also_available": list(self.also_available),
            "on_unsolvable": self.on_unsolvable.value,
        }

    @classmethod
    def of(cls, channel: Channel) -> ChannelChecks:
        return cls(
            tuple(stored_must_install(channel.must_install)),
            tuple(channel.also_available or ()),
            OnUnsolvable(channel.on_unsolvable),
        )


class DependencyCheck(ABC):
    """The check of one run's revision. `report` starts with what the run took as
    dependencies."""

    def __init__(self, checks: ChannelChecks, report: DependencyReport) -> None:
        self.checks = checks
        self.report = report
        self.summary: list[str] = []  # the report in a few lines, for the run's log
        # The mirror's last report, when this run did not read upstream again.
        self.carried: dict[str, Any] | None = None

    @abstractmethod
    def examine(self, db: Database, store: BlobStore, candidate: Candidate) -> None:
        """Fill `report.findings` and `report.must_install` for the revision."""

    def verify(self, db: Database, store: BlobStore, candidate: Candidate, run_id: int) -> None:
        """Examine the revision, save the report on the run, and refuse it when a must_install
        cannot be solved and the channel says fail. A revision the mirror's last report checked
        (a run that found upstream unchanged, and nothing else changed the channel since) is
        not checked again: that report stands."""
        report = self.report
        self.summary = []
        if self.carried is not None and self.carried.get("revision") == candidate.number:
            carried = {**self.carried, "notes": [*self.carried.get("notes", ())]}
            unchanged = f"revision {candidate.number} is as it was checked: that report stands"
            carried["notes"].insert(0, unchanged)
            save_carried(db, run_id, carried)
            return
        report.findings.clear()
        report.must_install.clear()
        report.checked = False
        report.revision = candidate.number
        try:
            with _yielding_often():
                self.examine(db, store, candidate)
        except Exception as error:  # a bug here, or bytes nobody foresaw: say so, do not crash
            log.exception("checking the dependencies of run %s failed", run_id)
            report.checked = False
            report.notes.add(f"the check could not be completed: {type(error).__name__}: {error}")
        save_report(db, run_id, report)
        self.summary = report.release()
        fail = self.checks.on_unsolvable == OnUnsolvable.fail
        if report.unsolvable and fail:
            raise UnsolvableError(describe_unsolvable(report.unsolvable))
        if not report.checked and fail and self.checks.must_install:
            raise UnsolvableError(
                "the dependency check could not be completed, so must_install is not known to "
                "solve (on_unsolvable is fail: the channel keeps its previous revision); see the "
                "run's report"
            )


@contextmanager
def _yielding_often() -> Iterator[None]:
    """While the check runs pure Python for seconds, other threads of the process (the run's
    heartbeat, in the embedded server its requests) get the interpreter back within a
    millisecond instead of five: one of them holding SQLite's write lock would otherwise hold
    it for hundreds of milliseconds, waiting for the interpreter between statements."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def describe_unsolvable(unsolvable: Sequence[MustInstall]) -> str:
    parts = []
    for solve in unsolvable:
        why = "; removed by " + ", ".join(map(str, solve.causes)) if solve.causes else ""
        parts.append(f"must_install on {solve.platform} cannot be solved{why}: {solve.message}")
    return " | ".join(parts) + " (on_unsolvable is fail: the channel keeps its previous revision)"


def previous_report(db: Database, mirror_id: int, run_id: int) -> dict[str, Any] | None:
    """The mirror's last report: what a run that did not read upstream again (it had not
    changed) carries, or blames missing dependencies with."""
    with db.reading() as session:
        report: dict[str, Any] | None = session.scalar(
            select(Run.report)
            .where(Run.mirror_id == mirror_id, Run.id != run_id, Run.report.is_not(None))
            .order_by(Run.id.desc())
            .limit(1)
        )
    return report


def blame_of(report: dict[str, Any] | None) -> dict[str, tuple[Cause, ...]]:
    """What a report blamed for each missing dependency."""
    blame: dict[str, set[Cause]] = {}
    for group in ((report or {}).get("broken") or {}).get("groups") or ():
        causes = blame.setdefault(str(group.get("dependency")), set())
        causes.update(Cause(**cause) for cause in group.get("causes") or ())
    return {name: tuple(sorted(causes)) for name, causes in blame.items()}


def save_report(db: Database, run_id: int, report: DependencyReport) -> None:
    save_carried(db, run_id, report.to_json())


def save_carried(db: Database, run_id: int, report: dict[str, Any]) -> None:
    with db.writing() as session:
        session.execute(update(Run).where(Run.id == run_id).values(report=report))


class Elsewhere:
    """What the channels listed in `also_available` offer, fetched from the thread a change is
    checked in, each fetch on a loop of its own (the run's loop may be stopped meanwhile, and
    a stopped run must not leave this thread waiting). A URL that fails is not asked again in
    this check; at most MAX_ELSEWHERE_LOOKUPS fetches are made; what fails is noted."""

    def __init__(
        self, urls: Sequence[str], policy: HttpPolicy, proxy: str | None, notes: Notes
    ) -> None:
        self.urls = list(urls)
        self.policy = policy
        self.proxy = proxy
        self.notes = notes
        self._failed: set[str] = set()
        self._lookups = 0

    def fetch(
        self, url: str, what: str, fetching: Callable[[], Coroutine[Any, Any, T]]
    ) -> T | None:
        if url in self._failed:
            return None
        if self._lookups >= MAX_ELSEWHERE_LOOKUPS:
            self.notes.add(
                f"also_available: more than {MAX_ELSEWHERE_LOOKUPS} lookups; the rest were not made"
            )
            return None
        self._lookups += 1
        try:
            return asyncio.run(fetching())
        except HeadwaterError as error:
            reason = error.message
        except Exception as error:  # what an index answers is not ours to trust
            reason = f"{type(error).__name__}: {str(error)[:200]}"
        self._failed.add(url)
        self.notes.add(f"also_available {shown_url(url)}: {what} could not be read: {reason}")
        return None

    def client(self) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return upstream_client(self.policy, proxy=self.proxy)


class CondaElsewhere(Elsewhere):
    """The conda channels available beside this one, read once per subdir, only when the
    revision lacks something or a must_install solve needs them."""

    def __init__(
        self,
        urls: Sequence[str],
        policy: HttpPolicy,
        proxy: str | None,
        workdir: Path,
        notes: Notes,
    ) -> None:
        super().__init__(urls, policy, proxy, notes)
        self.workdir = workdir
        self._indexes: dict[str, list[SubdirIndex]] = {}
        self._files: dict[str, list[tuple[str, Path]]] = {}

    def __call__(self, subdir: str) -> Sequence[SubdirIndex]:
        self._read(subdir)
        return self._indexes[subdir]

    def repodata_files(self, subdir: str) -> list[tuple[str, Path]]:
        """(channel URL, repodata.json path) of each channel that has the subdir."""
        self._read(subdir)
        return self._files[subdir]

    def _read(self, subdir: str) -> None:
        if subdir in self._indexes:
            return
        self._indexes[subdir], self._files[subdir] = [], []
        for position, url in enumerate(self.urls):
            index = self.fetch(url, subdir, partial(self._fetch, url, subdir, position))
            if index is not None:
                self._files[subdir].append((url, self.workdir / f"{position}-{subdir}.json"))
                self._indexes[subdir].append(index)

    async def _fetch(self, url: str, subdir: str, position: int) -> SubdirIndex | None:
        async with self.client() as client:
            download = await CondaUpstream(client, url, self.policy).fetch_repodata(subdir)
        if download is None or download.body is None:
            return None
        body = bytes(download.body)
        index = SubdirIndex.of_repodata(subdir, body, keep_records=False)  # refuses garbage
        (self.workdir / f"{position}-{subdir}.json").write_bytes(body)
        return index


class CondaCheck(DependencyCheck):
    def __init__(
        self,
        checks: ChannelChecks,
        report: DependencyReport,
        pool: Pool,
        elsewhere: CondaElsewhere | None,
        workdir: Path,
        held: RunRecords | None = None,
    ) -> None:
        super().__init__(checks, report)
        self.pool = pool
        self.elsewhere = elsewhere
        self.workdir = workdir  # the run's: copies of indexes a remote store holds
        self.held = held

    def _elsewhere(self) -> Lookup:
        return self.elsewhere if self.elsewhere is not None else (lambda subdir: ())

    def examine(self, db: Database, store: BlobStore, candidate: Candidate) -> None:
        paths = {
            subdir: _repodata_path(
                store, candidate.channel_id, subdir, index.repodata_sha256, self.workdir
            )
            for subdir, index in candidate.indexes.items()
        }
        # The run's own records and the head's other files are the revision, unless some
        # subdir was not read by this run (upstream unchanged): then its index is read back.
        revision = self.held.revision(db, candidate.channel_id) if self.held is not None else None
        if revision is None or set(revision) != set(paths):
            revision = {
                subdir: SubdirIndex.of_repodata(subdir, path.read_bytes(), keep_records=True)
                for subdir, path in paths.items()
            }
        check_revision(revision, self.pool, self.report, elsewhere=self._elsewhere())
        del revision
        for platform, specs in _environments(self.checks.must_install, paths, self.report.notes):
            self.report.must_install.append(self._solve(platform, specs, paths))

    def _solve(self, platform: str, specs: list[str], paths: dict[str, Path]) -> MustInstall:
        sources = [
            ("headwater", subdir, paths[subdir]) for subdir in (platform, NOARCH) if subdir in paths
        ]
        if self.elsewhere is not None:
            for subdir in (platform, NOARCH):
                sources += [
                    (url, subdir, path) for url, path in self.elsewhere.repodata_files(subdir)
                ]
        try:
            solution = solve_conda(specs, platform, sources)
        except Exception as error:  # rattler answers what it cannot read with several kinds
            return MustInstall(
                platform, tuple(specs), False, _solver_message(error), self._causes(platform, specs)
            )
        return MustInstall(
            platform, tuple(specs), True, f"{len(solution)} packages: " + _listed(solution)
        )

    def _causes(self, platform: str, specs: list[str]) -> tuple[Cause, ...]:
        """The filters that removed what a must_install spec or a missing dependency of the
        revision names (the solver's message names the package; the report names the filter)."""
        causes: set[Cause] = set()
        group = (platform, NOARCH)
        for text in specs:
            spec = dependency_spec(text)
            if spec is not None:
                causes.update(self.pool.causes(group, spec))
        for finding in self.report.findings:
            if finding.subdir in group:
                causes.update(finding.causes)
        return tuple(sorted(causes))


@dataclass
class RunRecords:
    """The records a conda run read for its mirror, by subdir: with the other sources' files
    of the channel, the revision it builds, without reading its index back (a conda-forge-sized
    index is a quarter of a gigabyte to decode again)."""

    mirror_id: int
    contents: dict[str, Sequence[CondaRecord]]

    def revision(self, db: Database, channel_id: int) -> dict[str, SubdirIndex]:
        """The records of the revision the run builds on the head: its own, and the head's
        files from other sources (which a run's change leaves as they are)."""
        revision: dict[str, SubdirIndex] = {}
        for subdir, records in self.contents.items():
            index = revision.setdefault(subdir, SubdirIndex(subdir))
            for record in records:
                index.add(record)
        others = (PackageFile.mirror_id != self.mirror_id) | PackageFile.mirror_id.is_(None)
        with db.reading() as session:
            rows = session.execute(
                select(
                    PackageFile.subdir,
                    PackageFile.filename,
                    PackageFile.name,
                    PackageFile.version,
                    PackageFile.build,
                    PackageFile.record,
                ).where(
                    PackageFile.channel_id == channel_id,
                    PackageFile.in_head(),
                    others,
                    PackageFile.package_type == PackageType.conda,
                )
            )
            for subdir, filename, name, version, build, raw in rows:
                index = revision.setdefault(subdir, SubdirIndex(subdir))
                index.offer(name, version, build, _build_number(raw))
                index.records.append((filename, raw))
        return revision


def _build_number(raw: bytes) -> int:
    number = orjson.loads(raw).get("build_number", 0)
    return number if isinstance(number, int) else 0


def _listed(solution: Sequence[rattler.RepoDataRecord]) -> str:
    names = sorted(f"{record.name.normalized}={record.version}" for record in solution)
    return ", ".join(names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")


def _solver_message(error: Exception) -> str:
    text = str(error).strip()
    return text if len(text) <= 4000 else text[:4000] + "…"


def _environments(
    specs: Sequence[MustInstallSpec], paths: dict[str, Path], notes: Notes
) -> list[tuple[str, list[str]]]:
    """The conda specs per platform: a spec without a platform applies to every platform
    subdir the revision has (noarch alone: linux-64)."""
    platforms = sorted(subdir for subdir in paths if subdir != NOARCH) or ["linux-64"]
    environments, aside = by_platform(specs, platforms, conda=True)
    for spec in aside:
        notes.add(
            f"must_install {spec.spec!r} is not a conda MatchSpec: a conda mirror's runs "
            "do not solve it"
        )
    return environments


def _repodata_path(
    store: BlobStore, channel_id: int, subdir: str, sha256: str, workdir: Path
) -> Path:
    copy = workdir / f"revision-{subdir}.json"
    with copy.open("wb") as target:
        for chunk in store.chunks(repodata_key(channel_id, subdir, sha256)):
            target.write(chunk)
    return copy


# The machine a must_install environment is solved for: what conda-forge's own CI assumes.
_VIRTUAL = {
    "linux": [("__unix", "0"), ("__linux", "5.10"), ("__glibc", "2.28"), ("__archspec", "1")],
    "osx": [("__unix", "0"), ("__osx", "14.0"), ("__archspec", "1")],
    "win": [("__win", "0"), ("__archspec", "1")],
}


def virtual_packages(platform: str) -> list[rattler.GenericVirtualPackage]:
    family = platform.split("-", 1)[0]
    return [
        rattler.GenericVirtualPackage(
            rattler.PackageName(name), rattler.Version(version), rattler.BuildString("0")
        )
        for name, version in _VIRTUAL.get(family, [])
    ]


def solve_conda(
    specs: Sequence[str], platform: str, sources: Sequence[tuple[str, str, Path]]
) -> list[rattler.RepoDataRecord]:
    """py-rattler's solver on (channel URL, subdir, repodata.json) sources, for `platform`
    (called from a worker thread: the solve runs on a loop of its own)."""
    sparse = [
        rattler.SparseRepoData(rattler.Channel(url), subdir, str(path))
        for url, subdir, path in sources
    ]
    solving = rattler.solve_with_sparse_repodata(
        specs=[rattler.MatchSpec(spec) for spec in specs],
        sparse_repodata=sparse,
        virtual_packages=virtual_packages(platform),
        timeout=dt.timedelta(seconds=SOLVE_SECONDS),
        channel_priority=rattler.ChannelPriority.Strict,
        timestamp_policy="allow-missing",
    )
    return asyncio.run(solving)
