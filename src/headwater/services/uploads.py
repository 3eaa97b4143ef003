"""Uploading package files into a channel by hand (REST, CLI)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.errors import PackageFileExistsError
from headwater.formats.conda import timestamp_ms
from headwater.formats.conda.package import read_index_json
from headwater.formats.conda.repodata import record_from_index_json
from headwater.models import PackageFile, PackageType
from headwater.services.channels import get_channel
from headwater.services.publish import lock_channel, publish_subdirs
from headwater.storage import BlobStore, StagedBlob, content_key


def stage_upload(store: BlobStore, chunks: Iterable[bytes]) -> StagedBlob:
    """Write an upload to the store's staging area, hashing it on the way."""
    staged = store.stage()
    try:
        for chunk in chunks:
            staged.write(chunk)
        staged.close()
    except BaseException:
        staged.discard()
        raise
    return staged


def add_conda_package(
    session: Session,
    store: BlobStore,
    channel_name: str,
    filename: str,
    staged: StagedBlob,
    *,
    uploaded_by: str,
) -> PackageFile:
    """Add an uploaded conda package to a channel and publish its subdir.

    The metadata comes from the archive itself; a broken archive raises PackageArchiveError and
    nothing is stored. The caller commits.
    """
    index = read_index_json(staged.path, filename)
    channel = get_channel(session, channel_name)
    lock_channel(session, channel.id)
    subdir = index["subdir"]
    existing = session.scalar(
        select(PackageFile.id).where(
            PackageFile.channel_id == channel.id,
            PackageFile.subdir == subdir,
            PackageFile.filename == filename,
        )
    )
    if existing is not None:
        raise PackageFileExistsError(f"{subdir}/{filename} is already in channel {channel_name!r}")
    record = record_from_index_json(index, sha256=staged.sha256, md5=staged.md5, size=staged.size)
    file = PackageFile(
        channel_id=channel.id,
        mirror_id=None,
        package_type=PackageType.conda,
        subdir=subdir,
        filename=filename,
        name=index["name"],
        version=index["version"],
        build=index["build"],
        sha256=staged.sha256,
        size=staged.size,
        timestamp=timestamp_ms(index.get("timestamp")),
        record=record,
        uploaded_by=uploaded_by,
    )
    session.add(file)
    session.flush()
    store.commit(staged, content_key(staged.sha256))
    publish_subdirs(session, store, channel.id, [subdir])
    return file
