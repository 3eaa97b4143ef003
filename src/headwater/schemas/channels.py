"""The JSON shape of channels, packages and files, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from headwater.models import Channel, PackageFile
from headwater.services.channels import ChannelStats
from headwater.services.cves import FileCves
from headwater.upstreams.http import shown_url


class ChannelOut(BaseModel):
    name: str
    description: str
    privacy: str
    owner: str  # a username, or an organization's name
    owner_kind: str  # "user" or "organization"
    filters: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    file_count: int
    mirror_count: int
    url: str
    head: int  # the revision clients get; 0 before the first change
    revisions_kept: int | None  # None: the deployment's REVISIONS_KEPT
    must_install: list[dict[str, Any]]  # [{"spec", "platform"}]; platform null: every one
    also_available: list[str]
    on_unsolvable: str  # fail or warn

    @classmethod
    def of(cls, channel: Channel, stats: ChannelStats) -> ChannelOut:
        return cls(
            name=channel.name,
            description=channel.description,
            privacy=channel.privacy,
            owner=stats.owner,
            owner_kind=stats.owner_kind,
            filters=channel.filters.to_json(),
            created_at=channel.created_at,
            updated_at=channel.updated_at,
            file_count=stats.file_count,
            mirror_count=stats.mirror_count,
            url=f"/api/repo/{channel.name}",
            head=channel.head,
            revisions_kept=channel.revisions_kept,
            must_install=channel.must_install or [],
            also_available=[shown_url(url) or url for url in channel.also_available or ()],
            on_unsolvable=channel.on_unsolvable,
        )


class FileOut(BaseModel):
    filename: str
    subdir: str
    name: str
    version: str
    build: str
    package_type: str
    sha256: str
    md5: str | None
    size: int | None
    platforms: list[str]
    published_at: dt.datetime | None
    license: str | None
    mirror_id: int | None
    uploaded_by: str | None
    url: str
    cve_score: float | None = None
    cve_count: int = 0
    # An `active` or `reported` match is of a CVE without a score: `cve_score` is not the
    # whole story (it is null when no match has one).
    cve_unscored: bool = False

    @classmethod
    def of(cls, channel_name: str, file: PackageFile, cves: FileCves | None = None) -> FileOut:
        record = file.index_record()
        return cls(
            filename=file.filename,
            subdir=file.subdir,
            name=file.name,
            version=file.version,
            build=file.build,
            package_type=file.package_type,
            sha256=file.sha256,
            md5=record.get("md5"),
            size=file.size,
            platforms=file.platforms,
            published_at=file.published_at,
            license=file.license_text(),
            mirror_id=file.mirror_id,
            uploaded_by=file.uploaded_by,
            url=f"/api/repo/{channel_name}/{file.repo_path}",
            cve_score=cves.score if cves else None,
            cve_count=cves.count if cves else 0,
            cve_unscored=cves.unscored if cves else False,
        )


class PackageOut(BaseModel):
    name: str
    package_types: list[str]  # conda, python, or both when the names coincide
    latest_version: str
    file_count: int
    subdirs: list[str]  # conda subdirs; for PyPI files, the platforms of their wheels
