"""A run's dependency report: files taken as dependencies, kept files whose dependencies the new
revision lacks (grouped by the filter that removed what would have satisfied them), and the
channel's must_install solves. Stored as JSON on the run (`runs.report`), bounded in size."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from headwater.filters.rules import Exclusion

# A report is kept with every run (and carried by runs that find nothing changed): these keep
# it to tens of kilobytes, the counts covering everything.
MAX_TAKEN_LISTED = 200  # files taken as dependencies listed by name
MAX_GROUPS = 50  # (filter, dependency) groups of broken packages
MAX_PACKAGES_PER_GROUP = 10
MAX_NOTES = 50
MAX_MESSAGE = 4000  # characters of a solver's answer
MAX_TEXT = 300  # characters of an upstream's spec or name kept in a finding


def shortened(text: str) -> str:
    """Upstream text as a report keeps it: a spec of 100 KB is not shown whole."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class Notes:
    """What the check could not do, each said once, at most MAX_NOTES."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.left_out = 0

    def add(self, text: str) -> None:
        text = shortened(text)
        if text in self.lines:
            return
        if len(self.lines) < MAX_NOTES:
            self.lines.append(text)
        else:
            self.left_out += 1

    def clear(self) -> None:
        self.lines.clear()
        self.left_out = 0

    def to_json(self) -> list[str]:
        more = [f"{self.left_out} more notes left out"] if self.left_out else []
        return [*self.lines, *more]

    def __len__(self) -> int:
        return len(self.lines) + self.left_out


@dataclass(frozen=True, order=True)
class Cause:
    """The filter that removed what would have satisfied a dependency: `level` mirror or
    channel, its `key` and the `value` that matched. None in a finding: upstream has nothing
    that satisfies it at all."""

    level: str
    key: str
    value: str

    @classmethod
    def of(cls, exclusion: Exclusion) -> Cause:
        return cls(exclusion.level, exclusion.key, exclusion.value)

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "key": self.key, "value": self.value}

    def __str__(self) -> str:
        shown = f" {self.value}" if self.value else ""
        return f"the {self.level}'s {self.key}{shown}"


@dataclass(frozen=True)
class Finding:
    """A kept file with a dependency nothing in the new revision (or the channels available
    beside it) satisfies."""

    subdir: str
    filename: str
    spec: str  # the dependency as the file states it
    dependency: str  # the name it depends on
    causes: tuple[Cause, ...]  # empty: nothing upstream satisfies it
    # (`spec` and `dependency` come from upstreams: they are given `shortened`)


@dataclass(frozen=True)
class MustInstall:
    """One environment of the channel's must_install specs, solved for one platform."""

    platform: str
    specs: tuple[str, ...]
    solved: bool
    message: str
    causes: tuple[Cause, ...] = ()

    def __post_init__(self) -> None:
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE - 1] + "…")

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "specs": list(self.specs),
            "solved": self.solved,
            "message": self.message,
            "causes": [cause.to_json() for cause in self.causes],
        }


@dataclass
class DependencyReport:
    taken: Counter[str] = field(default_factory=Counter)  # subdir → files taken
    taken_files: list[dict[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    must_install: list[MustInstall] = field(default_factory=list)
    checked: bool = False  # whether the solvability check ran
    revision: int | None = None  # the revision checked
    _groups: tuple[int, list[dict[str, Any]]] | None = field(default=None, repr=False)
    notes: Notes = field(default_factory=Notes)

    def take(self, subdir: str, filename: str, dependent: str) -> None:
        self.taken[subdir] += 1
        if len(self.taken_files) < MAX_TAKEN_LISTED:
            self.taken_files.append(
                {"subdir": subdir, "filename": filename, "reason": f"dependency of {dependent}"}
            )

    def release(self) -> list[str]:
        """Once the report is saved: its summary lines, and the findings let go (hundreds of
        thousands of objects a channel-sized check may make, which the landing transaction
        would otherwise carry through the garbage collector)."""
        lines = self.summary_lines()
        self.findings = []
        self._groups = None
        return lines

    def reset(self) -> None:
        """Before the revision is checked (again, when another change landed first)."""
        self.findings = []
        self.must_install = []
        self.checked = False
        self._groups = None

    @property
    def unsolvable(self) -> list[MustInstall]:
        return [solve for solve in self.must_install if not solve.solved]

    def groups(self) -> list[dict[str, Any]]:
        """The findings by (cause, dependency), the largest first (made once per set of
        findings: the log and the stored report both show them)."""
        if self._groups is None or self._groups[0] != len(self.findings):
            self._groups = (len(self.findings), self._group())
        return self._groups[1]

    def _group(self) -> list[dict[str, Any]]:
        grouped: dict[tuple[tuple[Cause, ...], str], list[Finding]] = {}
        for finding in self.findings:
            grouped.setdefault((finding.causes, finding.dependency), []).append(finding)
        ordered = sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0][1]))
        return [
            {
                "causes": [cause.to_json() for cause in causes],
                "dependency": dependency,
                "count": len(findings),
                "packages": [
                    {"subdir": f.subdir, "filename": f.filename, "spec": f.spec}
                    for f in findings[:MAX_PACKAGES_PER_GROUP]
                ],
            }
            for (causes, dependency), findings in ordered[:MAX_GROUPS]
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "dependencies": {
                "taken": sum(self.taken.values()),
                "by_subdir": dict(sorted(self.taken.items())),
                "files": self.taken_files,
            },
            "checked": self.checked,
            "revision": self.revision,
            "broken": {
                "total": len(self.findings),
                "packages": len({(f.subdir, f.filename) for f in self.findings}),
                "groups": self.groups(),
            },
            "must_install": [solve.to_json() for solve in self.must_install],
            "notes": self.notes.to_json(),
        }

    def summary_lines(self) -> list[str]:
        """The report as log lines: what a reader of the run's log must not miss."""
        lines = []
        if self.taken:
            lines.append(f"took {sum(self.taken.values())} files as dependencies of kept files")
        for group in self.groups()[:20]:
            causes = [Cause(**cause) for cause in group["causes"]]
            why = " and ".join(map(str, causes)) or "nothing upstream provides it"
            example = group["packages"][0]
            lines.append(
                f"{group['count']} kept files need {group['dependency']} "
                f"(e.g. {example['filename']} needs {example['spec']!r}), removed by {why}"
                if causes
                else f"{group['count']} kept files need {group['dependency']} "
                f"(e.g. {example['filename']} needs {example['spec']!r}): {why}"
            )
        for solve in self.must_install:
            state = "solves" if solve.solved else "cannot be solved"
            lines.append(f"must_install on {solve.platform} {state}: {solve.message}")
        return lines
