"""Files an upstream lists but cannot deliver (404, 410): what a run leaves out of its revision,
and the warnings the run keeps of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from headwater.dependencies.report import Notes
from headwater.formats.pypi.records import PythonRecord
from headwater.services.progress import RunProgress
from headwater.upstreams.http import shown_url, status_text

if TYPE_CHECKING:
    from headwater.formats.conda.repodata import CondaRecord


class SubdirContents(Protocol):
    """What of a subdir's contents (services/mirror_contents.py) leaving files out changes."""

    records: list[Any] | None
    left_out: list[MissingFile]


@dataclass(frozen=True)
class MissingFile:
    """A file an index lists whose upstream answered `status` (404 or 410) for it."""

    filename: str
    url: str
    sha256: str
    status: int

    @property
    def message(self) -> str:
        return (
            f"upstream answered {status_text(self.status)} for {self.filename} "
            f"({shown_url(self.url)}): left out of this revision, tried again next run"
        )

    def to_json(self) -> dict[str, Any]:
        """A run's warning (runs.warnings), as the run's JSON and pages show it."""
        return {
            "kind": "missing_file",
            "filename": self.filename,
            "url": shown_url(self.url),
            "status": self.status,
            "message": self.message,
        }


def leave_out_missing(
    contents: Sequence[SubdirContents],
    missing: Sequence[MissingFile],
    progress: RunProgress,
    notes: Notes,
) -> None:
    """After an active run's downloads: the records upstream could not deliver leave the run's
    revision, said in its log and in its dependency report (what depended on them is missing
    there for this reason)."""
    left = leave_out(contents, missing)
    if left:
        progress.log(
            f"{left} files upstream lists but could not deliver are left out of this revision",
            "warning",
        )
        notes.add(f"{left} files upstream could not deliver were left out; see the run's warnings")


def leave_out(contents: Sequence[SubdirContents], missing: Sequence[MissingFile]) -> int:
    """Take out of the run's contents every record whose bytes, or whose core metadata, the
    upstream could not deliver; each subdir keeps what it left out (its validators are then not
    saved, so the next run reads it again and asks for those files once more). Answers how
    many records were left out."""
    gone = {file.sha256: file for file in missing}
    if not gone:
        return 0
    left = 0
    for content in contents:
        if content.records is None:
            continue
        kept: list[Any] = []
        for record in content.records:
            lacking = [gone[digest] for digest in _digests(record) if digest in gone]
            if lacking:
                content.left_out.extend(f for f in lacking if f not in content.left_out)
                left += 1
            else:
                kept.append(record)
        content.records = kept
    return left


def run_warnings(contents: Sequence[SubdirContents]) -> list[dict[str, Any]]:
    """The run's warnings: each file left out once, in the order the subdirs were read."""
    seen: dict[str, MissingFile] = {}
    for content in contents:
        for file in content.left_out:
            seen.setdefault(file.url, file)
    return [file.to_json() for file in seen.values()]


def _digests(record: CondaRecord | PythonRecord) -> tuple[str, ...]:
    """The blobs a record needs served: its file, and a PyPI file's core metadata."""
    if isinstance(record, PythonRecord) and record.core_metadata:
        return (record.sha256, record.core_metadata)
    return (record.sha256,)
