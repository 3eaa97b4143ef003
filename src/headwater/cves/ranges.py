"""Whether a version falls in an advisory's affected versions (OSV's evaluation rules)."""

from __future__ import annotations

from functools import lru_cache

from packaging.version import InvalidVersion, Version

from headwater.cves.advisories import AffectedPackage

_ZERO = Version("0")


@lru_cache(maxsize=65536)
def parse(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def affects(package: AffectedPackage, version: Version) -> bool:
    for listed in package.versions:
        if parse(listed) == version:
            return True
    return any(in_range(events, version) for events in package.ranges)


def in_range(events: tuple[tuple[str, str], ...], version: Version) -> bool:
    """OSV: sort the events by version; walking them, `introduced` at or below the version
    switches affected on, `fixed` (or `limit`) at or below it and `last_affected` below it
    switch it off."""
    ordered = []
    for kind, text in events:
        at = _ZERO if kind == "introduced" and text == "0" else parse(text)
        if at is None:
            continue
        ordered.append((at, kind))
    ordered.sort(key=lambda event: (event[0], event[1] != "introduced"))
    affected = False
    for at, kind in ordered:
        if kind == "introduced":
            if version >= at:
                affected = True
        elif kind in ("fixed", "limit"):
            if version >= at:
                affected = False
        elif kind == "last_affected" and version > at:
            affected = False
    return affected
