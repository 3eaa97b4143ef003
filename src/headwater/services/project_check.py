"""One project name as a person types it into a PyPI mirror's form: valid, normalized, upstream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import httpx

from headwater.errors import HeadwaterError, InvalidInputError
from headwater.filters import parse_filter_set
from headwater.upstreams.http import (
    HttpPolicy,
    check_allowed,
    normalize_source_root,
    upstream_client,
)
from headwater.upstreams.pypi import PyPIUpstream

MAX_TYPED = 200  # longer than any valid name (100): refused as input, not judged as a name
CHECK_SECONDS = 3.0  # the whole upstream question, a person waits on the answer

Upstream = Literal["found", "missing", "unknown", "unchecked"]


@dataclass(frozen=True)
class ProjectVerdict:
    """What the chip shows: accepted (blue) or not (red, with the reason)."""

    project: str  # as typed
    name: str | None  # PEP 503 normalized, when valid
    accepted: bool
    reason: str | None
    upstream: Upstream  # unchecked: not a PyPI mirror, or no upstream to ask

    def to_json(self) -> dict[str, object]:
        return {
            "project": self.project,
            "name": self.name,
            "accepted": self.accepted,
            "reason": self.reason,
            "upstream": self.upstream,
        }


def normalized_project(typed: str) -> str | None:
    """The PEP 503 name of a valid PEP 508 project name, else None (the same rule as the
    filter set's `projects`, so what is accepted here is accepted when saving)."""
    try:
        projects = parse_filter_set({"projects": [typed]}).projects
    except HeadwaterError:
        return None
    return projects[0] if projects else None


async def check_project(
    typed: str,
    *,
    source_root: str | None,
    proxy: str | None,
    policy: HttpPolicy,
) -> ProjectVerdict:
    """Judge one typed project name; with a `source_root` (a PyPI mirror's index), also ask
    that index, through the allowlisted client, within CHECK_SECONDS. An upstream that cannot
    answer leaves the name accepted: only a 404 from the index makes it "not found"."""
    if len(typed) > MAX_TYPED:
        raise InvalidInputError(f"a project name has at most 100 characters, not {len(typed)}")
    typed = typed.strip()
    if not typed:
        raise InvalidInputError("project must not be empty")
    name = normalized_project(typed)
    if name is None:
        return ProjectVerdict(
            typed,
            None,
            False,
            "not a valid project name: letters, digits, '.', '_' and '-', starting and ending "
            "with a letter or digit (PEP 508)",
            "unchecked",
        )
    if not source_root:
        return ProjectVerdict(typed, name, True, None, "unchecked")
    try:
        root = normalize_source_root(source_root)
        check_allowed(root, policy.allowlist)
    except HeadwaterError as error:
        return ProjectVerdict(typed, name, True, f"upstream not asked: {error.message}", "unknown")
    found = await _ask_upstream(name, root, proxy, policy)
    if found is False:
        return ProjectVerdict(typed, name, False, f"not found on {root}", "missing")
    if found is None:
        return ProjectVerdict(typed, name, True, f"could not ask {root}", "unknown")
    return ProjectVerdict(typed, name, True, None, "found")


async def _ask_upstream(
    name: str,
    root: str,
    proxy: str | None,
    policy: HttpPolicy,
) -> bool | None:
    quick = policy.quick(CHECK_SECONDS)
    try:
        async with (
            asyncio.timeout(CHECK_SECONDS),
            upstream_client(quick, proxy=proxy) as client,
        ):
            return await PyPIUpstream(client, root, quick).has_project(name)
    except (TimeoutError, HeadwaterError, httpx.HTTPError):
        return None
