"""The JSON shape of a mirror preview, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from headwater.schemas.pages import Page
from headwater.services.preview import Preview, PreviewFile, PreviewRequest


class PreviewCounts(BaseModel):
    seen: int
    taken: int
    dropped: int
    by_reason: dict[str, int]
    dependencies: int = 0  # of those taken, the files taken because kept files depend on them


class SubdirCounts(PreviewCounts):
    subdir: str
    missing: bool


class PreviewFileOut(BaseModel):
    subdir: str
    filename: str
    name: str
    version: str
    build: str
    license: str | None
    license_families: list[str]
    published_at: dt.datetime | None
    taken: bool
    reason: str | None
    detail: str | None
    size: int | None = None  # as the upstream's index says

    @classmethod
    def of(cls, file: PreviewFile) -> PreviewFileOut:
        return cls(**vars(file))


class PreviewOut(BaseModel):
    source_root: str
    filters: dict[str, Any]
    channel_filters: dict[str, Any]
    warnings: list[str]
    counts: PreviewCounts
    subdirs: list[SubdirCounts]
    files: Page[PreviewFileOut]

    @classmethod
    def of(cls, request: PreviewRequest, preview: Preview) -> PreviewOut:
        subdirs = [
            SubdirCounts(
                subdir=s.subdir,
                missing=s.missing,
                seen=s.seen,
                taken=s.taken,
                dropped=s.dropped,
                by_reason=dict(s.by_reason),
                dependencies=s.dependencies,
            )
            for s in preview.subdirs
        ]
        return cls(
            source_root=request.source_root,
            filters=request.mirror_filters.to_json(),
            channel_filters=request.channel_filters.to_json(),
            warnings=preview.warnings,
            counts=PreviewCounts(
                seen=sum(s.seen for s in subdirs),
                taken=sum(s.taken for s in subdirs),
                dropped=sum(s.dropped for s in subdirs),
                by_reason=dict(preview.by_reason),
                dependencies=sum(s.dependencies for s in subdirs),
            ),
            subdirs=subdirs,
            files=Page(
                items=[PreviewFileOut.of(file) for file in preview.files],
                total_count=preview.matching_files,
            ),
        )
