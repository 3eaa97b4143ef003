"""CVSS scores: base scores from vectors, severity bands, and a file's score from its matches."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cvss import CVSS2, CVSS3
from cvss.exceptions import CVSSError


class MatchStatus(StrEnum):
    reported = "reported"  # matched automatically, not yet reviewed
    active = "active"
    cleared = "cleared"
    disputed = "disputed"
    mitigated = "mitigated"


UNRESOLVED = frozenset({MatchStatus.reported, MatchStatus.active})
# "Unscored" is a CVE no advisory gave a CVSS score: unknown, not safe, so never "None".
BANDS = ("None", "Low", "Medium", "High", "Critical", "Unscored")
UNSCORED = "Unscored"


def vector_score(vector: str | None) -> float | None:
    """The base score of a CVSS v3.x or v2 vector (the `cvss` library), None if unreadable."""
    if not vector:
        return None
    try:
        if vector.startswith("CVSS:3"):
            return float(CVSS3(vector).base_score)
        if vector.startswith("CVSS:4"):
            from cvss import CVSS4

            return float(CVSS4(vector).base_score)
        return float(CVSS2(vector.removeprefix("(").removesuffix(")")).base_score)
    except (CVSSError, ValueError, KeyError, ImportError):
        return None


def severity(score: float | None) -> str:
    """CVSS v3 qualitative bands, and Unscored for a CVE no advisory scored."""
    if score is None:
        return UNSCORED
    if score == 0:
        return "None"
    if score < 4:
        return "Low"
    if score < 7:
        return "Medium"
    if score < 9:
        return "High"
    return "Critical"


def file_score(matches: Iterable[tuple[str, float | None]]) -> float | None:
    """The highest score among the `active` and `reported` matches; where there are none, the
    highest among the `cleared`, `disputed` and `mitigated` ones. Unscored CVEs have no number
    to add; `has_unscored` says whether one is among the unresolved matches."""
    unresolved: list[float] = []
    curated: list[float] = []
    has_unresolved = False
    for status, score in matches:
        if status in UNRESOLVED:
            has_unresolved = True
            if score is not None:
                unresolved.append(score)
        elif score is not None:
            curated.append(score)
    if has_unresolved:
        return max(unresolved, default=None)
    return max(curated, default=None)


def has_unscored(matches: Iterable[tuple[str, float | None]]) -> bool:
    """Whether an `active` or `reported` match is of a CVE without a score: such a file's
    numeric score says nothing about that CVE, so the UI says "unscored" and the threshold
    rule counts it as `cve_unscored_score` (filters/rules.py)."""
    return any(status in UNRESOLVED and score is None for status, score in matches)
