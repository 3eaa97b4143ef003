"""Mirrors: create, edit and delete them, and describe their state for the API and the UI."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, delete, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from headwater.cves.names import CondaNames
from headwater.db import Database, add_unique, utcnow
from headwater.errors import (
    HeadwaterError,
    InvalidFilterError,
    InvalidInputError,
    MirrorBusyError,
    MirrorExistsError,
    MirrorNotFoundError,
    PermissionDeniedError,
)
from headwater.filters import FilterSet, nothing_passes, parse_filter_set
from headwater.inputs import check_name, check_text
from headwater.models import (
    Channel,
    ChannelRevision,
    Mirror,
    MirrorMode,
    MirrorSubdirState,
    MirrorType,
    OnMissingFile,
    PackageFile,
    RevisionCause,
    Run,
    RunState,
    RunTrigger,
)
from headwater.models.mirror import DEFAULT_CRON
from headwater.schedule import parse_schedule
from headwater.services import runs
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import ChannelRef
from headwater.services.channels import load_channel, merge_filters
from headwater.services.cve_matching import CveOracle, load_matcher
from headwater.services.preview import PreviewRequest
from headwater.services.pypi_pages import gather_bounded
from headwater.services.revisions import Change, Plan, apply_change
from headwater.sorting import Sort
from headwater.storage import BlobStore
from headwater.upstreams.http import (
    HttpPolicy,
    check_allowed,
    check_proxy,
    normalize_source_root,
    shown_url,
    upstream_client,
)
from headwater.upstreams.pypi import PyPIUpstream

MIRROR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}")
SUPPORTED_TYPES = (MirrorType.conda, MirrorType.python_simple)
DEFAULT_PYPI_ROOT = "https://pypi.org/simple/"
_CHECKED_PROJECTS = 50  # at most this many project names are looked up when saving
# A save waits at most this long for the project checks; what is not answered by then is
# reported as "could not check".
PROJECT_CHECK_SECONDS = 4.0

EDITABLE_FIELDS = (
    "mirror_name",
    "source_root",
    "mirror_mode",
    "on_missing_file",
    "cron",
    "proxy",
    "filters",
)


@dataclass
class MirrorChange:
    """A mirror after create or edit, with what the user should hear about it."""

    mirror: Mirror
    warnings: list[str] = field(default_factory=list)
    run: Run | None = None


def _mirror_name(value: Any) -> str:
    return check_name(
        value,
        "mirror_name",
        MIRROR_NAME,
        "1 to 100 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit",
    )


def _cron(value: Any) -> str:
    return parse_schedule(check_text(value or DEFAULT_CRON, "cron", max_length=100)).expression


def _proxy(value: Any, current: str | None, policy: HttpPolicy, proxy_allowed: bool) -> str | None:
    """The proxy to store: only administrators may set or change one (a proxy reaches places
    the allowlist does not see), and only one of HEADWATER_PROXY_ALLOWLIST."""
    if current is not None and value == shown_url(current):
        return current  # sent back as it was shown, without its password
    if value not in (None, "", current) and not proxy_allowed:
        raise PermissionDeniedError("only administrators can set a mirror's proxy")
    return check_proxy(value, policy.proxies)


def _enum(
    kind: type[MirrorType] | type[MirrorMode] | type[OnMissingFile], field_name: str, value: Any
) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise InvalidInputError(f"{field_name} {value!r} is not one of {choices}") from None


def _mirror_type(value: Any) -> MirrorType:
    mirror_type = _enum(MirrorType, "mirror_type", value)
    if mirror_type not in SUPPORTED_TYPES:
        raise InvalidInputError(f"mirror_type {value!r} is not supported yet")
    return mirror_type


def create_mirror(
    session: Session,
    channel: ChannelRef,
    fields: dict[str, Any],
    *,
    policy: HttpPolicy,
    actor: Actor,
    proxy_allowed: bool = False,
) -> MirrorChange:
    """Create a mirror from the DESIGN.md fields; `run_now` queues its first run at once.

    A PyPI mirror (`python_simple`) needs `filters.projects`; its `source_root` defaults to
    PyPI's simple index, and each project is looked up there: a project the index does not
    have is a warning, not an error (`check_projects`, awaited by the edges once the
    transaction is over, as it goes over the network). Only callers with `proxy_allowed`
    (administrators) may give a proxy.
    """
    row = load_channel(session, channel)
    unknown = set(fields) - {*EDITABLE_FIELDS, "mirror_type", "run_now"}
    if unknown:
        raise InvalidInputError(f"unknown mirror field {', '.join(map(repr, sorted(unknown)))}")
    mirror_type = _mirror_type(fields.get("mirror_type") or MirrorType.conda)
    if mirror_type == MirrorType.python_simple and not fields.get("source_root"):
        fields = {**fields, "source_root": DEFAULT_PYPI_ROOT}
    if "mirror_name" not in fields or "source_root" not in fields:
        raise InvalidInputError("a mirror needs mirror_name and source_root")
    mirror = Mirror(
        channel_id=channel.id,
        mirror_name=_mirror_name(fields["mirror_name"]),
        mirror_type=mirror_type,
        source_root=_source_root(fields["source_root"], policy.allowlist),
        mirror_mode=_enum(
            MirrorMode, "mirror_mode", fields.get("mirror_mode") or MirrorMode.passive
        ),
        on_missing_file=_enum(
            OnMissingFile, "on_missing_file", fields.get("on_missing_file") or OnMissingFile.skip
        ),
        cron=_cron(fields.get("cron")),
        proxy=_proxy(fields.get("proxy"), None, policy, proxy_allowed),
        filters=mirror_filters(parse_filter_set(fields.get("filters")), mirror_type),
    )
    _ensure_unique_name(session, channel.id, mirror.mirror_name, None)
    mirror.next_run_at = parse_schedule(mirror.cron).next_run(utcnow())
    add_unique(session, mirror, _name_taken(mirror.mirror_name))
    record(session, actor, "mirror.create", _target(channel, mirror), **_described(mirror))
    change = MirrorChange(mirror, warnings=_warnings(mirror, row))
    if fields.get("run_now"):
        change.run = _request_run(session, channel, mirror, actor)
    return change


def _target(channel: ChannelRef, mirror: Mirror) -> str:
    return f"{channel.name}/{mirror.mirror_name}"


def _described(mirror: Mirror) -> dict[str, Any]:
    """What the audit log keeps of a mirror's settings (its proxy without a password)."""
    return {
        "mirror_id": mirror.id,
        "mirror_type": mirror.mirror_type,
        "source_root": shown_url(mirror.source_root),
        "mirror_mode": mirror.mirror_mode,
        "on_missing_file": mirror.on_missing_file,
        "cron": mirror.cron,
        "proxy": shown_url(mirror.proxy),
        "filters": mirror.filters.to_json(),
    }


def _request_run(session: Session, channel: ChannelRef, mirror: Mirror, actor: Actor) -> Run:
    run = runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by=actor.username)
    session.flush()
    record(session, actor, "mirror.run", _target(channel, mirror), run_id=run.id)
    return run


def run_now(
    session: Session, channel: ChannelRef, mirror_id: int, *, actor: Actor
) -> tuple[Mirror, Run]:
    """Run now: queue a run at once, without changing the schedule."""
    mirror = get_mirror(session, channel, mirror_id)
    return mirror, _request_run(session, channel, mirror, actor)


def stop(
    session: Session, channel: ChannelRef, mirror_id: int, *, actor: Actor
) -> tuple[Mirror, Run]:
    """Stop the mirror's run: a pending one fails at once, a running one at its heartbeat."""
    mirror = get_mirror(session, channel, mirror_id)
    run = runs.stop_run(session, mirror, stopped_by=actor.username)
    record(session, actor, "mirror.stop", _target(channel, mirror), run_id=run.id)
    return mirror, run


def mirror_filters(filters: FilterSet, mirror_type: MirrorType) -> FilterSet:
    """A mirror's filter set, checked against what its type can use."""
    filters.check_for(mirror_type.value)
    if mirror_type == MirrorType.python_simple and not filters.projects:
        raise InvalidFilterError(
            "a PyPI mirror needs filters.projects: the projects to mirror (all of PyPI is tens "
            "of terabytes)"
        )
    return filters


def _warnings(mirror: Mirror, channel: Channel) -> list[str]:
    """What the user should hear about a saved mirror: a schedule more often than daily, and
    filters that, with the channel's, leave nothing."""
    warnings = parse_schedule(mirror.cron).warnings(utcnow())
    empty = nothing_passes(mirror.filters, channel.filters)
    if empty:
        warnings.append(f"the mirror's and the channel's filters leave nothing: {'; '.join(empty)}")
    return warnings


async def project_warnings(mirror: Mirror, policy: HttpPolicy) -> list[str]:
    """Projects of a PyPI mirror its index does not have, or could not be asked about.

    The projects are looked up at once, through the same policy as a run (allowlist on every
    hop, permitted addresses only), and the whole check takes at most PROJECT_CHECK_SECONDS.
    """
    if mirror.mirror_type != MirrorType.python_simple:
        return []
    projects = list(mirror.filters.projects or ())[:_CHECKED_PROJECTS]
    found: dict[str, bool | None] = {}
    quick = policy.quick(PROJECT_CHECK_SECONDS)
    try:
        async with upstream_client(quick, proxy=mirror.proxy) as client:
            upstream = PyPIUpstream(client, mirror.source_root, quick)

            async def check(project: str) -> None:
                found[project] = await upstream.has_project(project)

            async with asyncio.timeout(PROJECT_CHECK_SECONDS):
                await gather_bounded(policy.concurrency, [partial(check, p) for p in projects])
    except (TimeoutError, HeadwaterError):
        pass  # what was not answered is "could not check"
    missing = [project for project in projects if found.get(project) is False]
    unknown = [project for project in projects if found.get(project) is None]
    warnings = [f"project {project!r} was not found at {mirror.source_root}" for project in missing]
    if unknown:
        names = ", ".join(repr(project) for project in unknown)
        warnings.append(
            f"could not check project{'s' if len(unknown) > 1 else ''} {names} "
            f"at {mirror.source_root}"
        )
    return warnings


async def check_projects(change: MirrorChange, policy: HttpPolicy) -> MirrorChange:
    """Add to a saved PyPI mirror's warnings the projects its index lacks. Await it after the
    transaction: it asks upstream, which must not hold the database's write lock."""
    change.warnings.extend(await project_warnings(change.mirror, policy))
    return change


def _source_root(value: Any, allowlist: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise InvalidInputError("source_root must be a URL")
    url = normalize_source_root(value)
    check_allowed(url, allowlist)
    return url


def _ensure_unique_name(
    session: Session, channel_id: int, name: str, mirror_id: int | None
) -> None:
    clash = session.scalar(
        select(Mirror.id).where(Mirror.channel_id == channel_id, Mirror.mirror_name == name)
    )
    if clash is not None and clash != mirror_id:
        raise _name_taken(name)


def _name_taken(name: str) -> MirrorExistsError:
    return MirrorExistsError(f"the channel already has a mirror named {name!r}")


def get_mirror(session: Session, channel: ChannelRef, mirror_id: int) -> Mirror:
    mirror = session.get(Mirror, mirror_id)
    if mirror is None or mirror.channel_id != channel.id:
        raise MirrorNotFoundError(f"channel {channel.name!r} has no mirror {mirror_id}")
    return mirror


def update_mirror(
    session: Session,
    channel: ChannelRef,
    mirror_id: int,
    changes: dict[str, Any],
    *,
    policy: HttpPolicy,
    actor: Actor,
    proxy_allowed: bool = False,
) -> MirrorChange:
    """Apply the fields sent. Filters merge with the stored ones; a key set to null removes it.

    Changes take effect at the next run; `run_now` asks for that run at once.
    """
    mirror = get_mirror(session, channel, mirror_id)
    before = _described(mirror)
    unknown = set(changes) - {*EDITABLE_FIELDS, "mirror_type", "run_now"}
    if unknown:
        raise InvalidInputError(f"unknown mirror field {', '.join(map(repr, sorted(unknown)))}")
    if "mirror_type" in changes and changes["mirror_type"] != mirror.mirror_type:
        raise InvalidInputError("mirror_type cannot change; create a new mirror instead")
    if "mirror_name" in changes:
        name = _mirror_name(changes["mirror_name"])
        # Asked before the row changes: the query would flush the clash and fail in the flush.
        _ensure_unique_name(session, mirror.channel_id, name, mirror.id)
        mirror.mirror_name = name
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise _name_taken(name) from None
    if "source_root" in changes:
        mirror.source_root = _source_root(changes["source_root"], policy.allowlist)
    if "mirror_mode" in changes:
        mirror.mirror_mode = _enum(MirrorMode, "mirror_mode", changes["mirror_mode"])
    if changes.get("on_missing_file") is not None:
        mirror.on_missing_file = _enum(OnMissingFile, "on_missing_file", changes["on_missing_file"])
    if "proxy" in changes:
        mirror.proxy = _proxy(changes["proxy"], mirror.proxy, policy, proxy_allowed)
    if "filters" in changes:
        mirror.filters = mirror_filters(
            merge_filters(mirror.filters, changes["filters"]), MirrorType(mirror.mirror_type)
        )
    if "cron" in changes:
        mirror.cron = _cron(changes["cron"])
        mirror.next_run_at = parse_schedule(mirror.cron).next_run(utcnow())
    session.flush()
    after = _described(mirror)
    changed = {key: value for key, value in after.items() if before[key] != value}
    if changed:
        action = "mirror.filters" if set(changed) == {"filters"} else "mirror.update"
        record(session, actor, action, _target(channel, mirror), **changed)
    change = MirrorChange(mirror, warnings=_warnings(mirror, load_channel(session, channel)))
    if changes.get("run_now"):
        change.run = _request_run(session, channel, mirror, actor)
    return change


def delete_mirror(
    db: Database, store: BlobStore, channel: ChannelRef, mirror_id: int, *, actor: Actor
) -> None:
    """Delete a mirror and its history; the files it brought leave the channel's head in the
    same revision. Older revisions keep them, served from the blob store where it has them.

    A mirror with a run under way is refused: stop the run first.
    """
    with db.reading() as session:
        mirror = get_mirror(session, channel, mirror_id)
        current = runs.active_run(session, mirror.id)
        if current is not None and current.state == RunState.running:
            advice = (
                "delete it once the run has ended" if current.stop_requested_by else "stop it first"
            )
            raise MirrorBusyError(
                f"mirror {mirror.mirror_name!r} has a running run (#{current.id}); {advice}"
            )
        target = _target(channel, mirror)
    apply_change(db, store, channel.id, MirrorDeletion(mirror_id, target, actor))


class MirrorDeletion(Change):
    cause = RevisionCause.mirror_deletion

    def __init__(self, mirror_id: int, target: str, actor: Actor) -> None:
        self.mirror_id, self.target = mirror_id, target
        self.actor_ = actor
        self.actor = actor.username

    def plan(self, session: Session, channel_id: int, head: int) -> Plan:
        plan = Plan()
        leaving = session.execute(
            select(
                PackageFile.id, PackageFile.package_type, PackageFile.subdir, PackageFile.name
            ).where(PackageFile.mirror_id == self.mirror_id, PackageFile.in_head())
        )
        for file_id, package_type, subdir, name in leaving:
            plan.remove(file_id, package_type, subdir, name)
        return plan

    def land(self, session: Session, revision: ChannelRevision | None) -> None:
        mirror = session.get(Mirror, self.mirror_id)
        if mirror is None:
            raise MirrorNotFoundError(f"mirror {self.mirror_id} was deleted meanwhile")
        current = runs.active_run(session, mirror.id)
        if current is not None and current.state == RunState.running:
            advice = (
                "delete it once the run has ended" if current.stop_requested_by else "stop it first"
            )
            raise MirrorBusyError(
                f"mirror {mirror.mirror_name!r} has a running run (#{current.id}); {advice}"
            )
        session.execute(delete(MirrorSubdirState).where(MirrorSubdirState.mirror_id == mirror.id))
        record(
            session,
            self.actor_,
            "mirror.delete",
            self.target,
            mirror_id=mirror.id,
            revision=revision.number if revision else None,
        )
        session.delete(mirror)
        session.flush()


def list_channel_mirrors(session: Session, channel: ChannelRef) -> list[Mirror]:
    return list(
        session.scalars(select(Mirror).where(Mirror.channel_id == channel.id).order_by(Mirror.id))
    )


# What All Repository Mirrors sorts by, in its words ("state": the latest run's).
MIRROR_SORTS = ("channel", "mirror", "mode", "state", "next-run")


def list_all_mirrors(
    session: Session,
    *,
    offset: int,
    limit: int,
    where: ColumnElement[bool] | None = None,
    state: str | None = None,
    sort: Sort = Sort("channel"),
) -> tuple[list[tuple[Mirror, str]], int]:
    """Mirrors with their channel's name, by channel unless told; `where` narrows the channels,
    `state` the mirrors to those whose latest run is in it ("never": never run)."""
    newest = (
        select(Run.mirror_id, func.max(Run.id).label("run_id"))
        .where(Run.mirror_id.is_not(None))
        .group_by(Run.mirror_id)
        .subquery()
    )
    latest = aliased(Run)
    condition = true() if where is None else where
    if state == "never":
        condition = condition & newest.c.run_id.is_(None)
    elif state is not None:
        condition = condition & (latest.state == state)
    joined = (
        select(Mirror, Channel.name)
        .join(Channel, Channel.id == Mirror.channel_id)
        .outerjoin(newest, newest.c.mirror_id == Mirror.id)
        .outerjoin(latest, latest.id == newest.c.run_id)
        .where(condition)
    )
    total = session.scalar(select(func.count()).select_from(joined.subquery())) or 0
    columns: dict[str, SQLColumnExpression[Any]] = {
        "channel": Channel.name,
        "mirror": Mirror.mirror_name,
        "mode": Mirror.mirror_type,
        "state": func.coalesce(latest.state, "never"),
        "next-run": Mirror.next_run_at,
    }
    order = [*sort.order_by({sort.key: columns[sort.key], "channel": Channel.name}), Mirror.id]
    rows = session.execute(joined.order_by(*order).offset(offset).limit(limit)).all()
    return [(row[0], row[1]) for row in rows], total


def upcoming_runs(mirror: Mirror, count: int = 3) -> list[dt.datetime]:
    return parse_schedule(mirror.cron).next_runs(utcnow(), count)


def preview_request(
    session: Session, channel_ref: ChannelRef, mirror_id: int, cve_names: CondaNames | None = None
) -> PreviewRequest:
    """What to preview for a saved mirror: its upstream, its filters and its channel's."""
    mirror = get_mirror(session, channel_ref, mirror_id)
    channel = load_channel(session, channel_ref)
    return PreviewRequest(
        mirror_type=mirror.mirror_type,
        source_root=mirror.source_root,
        proxy=mirror.proxy,
        mirror_filters=mirror.filters,
        channel_filters=channel.filters,
        mirror_mode=mirror.mirror_mode,
        cve=_cve_oracle(session, mirror.mirror_mode, mirror.filters, channel, cve_names),
    )


def _cve_oracle(
    session: Session,
    mode: str,
    filters: FilterSet,
    channel: Channel,
    names: CondaNames | None,
) -> CveOracle | None:
    """The CVE rules' view for a preview: active mirrors with CVE rules only."""
    if mode != MirrorMode.active or not (filters.has_cve_rules or channel.filters.has_cve_rules):
        return None
    return CveOracle(session, load_matcher(session, names or CondaNames()), channel.id)


def draft_preview_request(
    session: Session,
    channel_ref: ChannelRef,
    fields: dict[str, Any],
    *,
    policy: HttpPolicy,
    channel_filters: dict[str, Any] | None = None,
    cve_names: CondaNames | None = None,
    proxy_allowed: bool = False,
) -> PreviewRequest:
    """What to preview for a mirror not saved yet, validated as creating it would be.

    `channel_filters`, when given, stands in for the channel's own, to try a draft of those.
    """
    channel = load_channel(session, channel_ref)
    mirror_type = _mirror_type(fields.get("mirror_type") or MirrorType.conda)
    source_root = fields.get("source_root") or (
        DEFAULT_PYPI_ROOT if mirror_type == MirrorType.python_simple else None
    )
    if not source_root:
        raise InvalidInputError("a preview needs source_root")
    mode = _enum(MirrorMode, "mirror_mode", fields.get("mirror_mode") or "passive").value
    drafted = mirror_filters(parse_filter_set(fields.get("filters")), mirror_type)
    return PreviewRequest(
        mirror_type=mirror_type.value,
        source_root=_source_root(source_root, policy.allowlist),
        proxy=_proxy(fields.get("proxy"), None, policy, proxy_allowed),
        mirror_mode=mode,
        mirror_filters=drafted,
        channel_filters=(
            parse_filter_set(channel_filters) if channel_filters is not None else channel.filters
        ),
        cve=_cve_oracle(session, mode, drafted, channel, cve_names),
    )
