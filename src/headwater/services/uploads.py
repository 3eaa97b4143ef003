"""Uploading package files into a channel by hand (REST, CLI)."""

from __future__ import annotations

import hashlib
import time
from typing import BinaryIO

from packaging.utils import canonicalize_name
from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.errors import PackageArchiveError, PackageFileExistsError
from headwater.filters.python_specs import parse_version
from headwater.formats.conda import timestamp_ms
from headwater.formats.conda.package import read_index_json
from headwater.formats.conda.repodata import record_from_index_json
from headwater.formats.pypi.filenames import parse_dist_filename
from headwater.formats.pypi.metadata import parse_core_metadata, read_metadata_bytes
from headwater.formats.pypi.records import PythonRecord
from headwater.inputs import (
    MAX_FILENAME_LENGTH,
    MAX_PROJECT_LENGTH,
    MAX_VERSION_LENGTH,
    field_problem,
)
from headwater.models import Channel, PackageFile, PackageType
from headwater.services.channels import get_channel
from headwater.services.mirror_contents import bulk_insert_files, python_row
from headwater.services.publish import bump_simple_revision, lock_channel, publish_subdirs
from headwater.services.pypi_pages import with_metadata
from headwater.storage import BlobStore, StagedBlob, content_key


def stage_upload(store: BlobStore, stream: BinaryIO) -> StagedBlob:
    """Write an upload to the store's staging area, hashing it on the way."""
    staged = store.stage()
    try:
        while chunk := stream.read(1 << 20):
            staged.write(chunk)
        staged.close()
    except BaseException:
        staged.discard()
        raise
    return staged


def _find_file(
    session: Session, channel: Channel, subdir: str, filename: str
) -> PackageFile | None:
    return session.scalar(
        select(PackageFile).where(
            PackageFile.channel_id == channel.id,
            PackageFile.subdir == subdir,
            PackageFile.filename == filename,
        )
    )


def _refuse_duplicate(
    session: Session, channel: Channel, subdir: str, filename: str, *, shown: str
) -> None:
    if _find_file(session, channel, subdir, filename) is not None:
        raise PackageFileExistsError(f"{shown} is already in channel {channel.name!r}")


def _refuse_same_bytes(session: Session, channel: Channel, filename: str, sha256: str) -> None:
    """The same file uploaded again: refused before its archive is read (a different file of
    that name may still be uploaded to another subdir; that is known only from its metadata)."""
    found = session.scalar(
        select(PackageFile.subdir).where(
            PackageFile.channel_id == channel.id,
            PackageFile.filename == filename,
            PackageFile.sha256 == sha256,
        )
    )
    if found is not None:
        raise PackageFileExistsError(f"{found}/{filename} is already in channel {channel.name!r}")


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

    The metadata comes from the archive itself, read within limits with every member checked;
    a broken or unsafe archive raises PackageArchiveError and nothing is stored. A file the
    channel already holds is refused (409) before the archive is opened. The caller commits.
    """
    channel = get_channel(session, channel_name)
    _refuse_same_bytes(session, channel, filename, staged.sha256)
    index = read_index_json(staged.path, filename, inspect=True)
    lock_channel(session, channel.id)
    subdir = index["subdir"]
    _refuse_duplicate(session, channel, subdir, filename, shown=f"{subdir}/{filename}")
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


def add_package(
    session: Session,
    store: BlobStore,
    channel_name: str,
    filename: str,
    staged: StagedBlob,
    *,
    uploaded_by: str,
) -> PackageFile:
    """Add an uploaded file, conda package or Python distribution by its name, to a channel."""
    if parse_dist_filename(filename) is not None and not filename.endswith(".tar.bz2"):
        return add_python_package(
            session, store, channel_name, filename, staged, uploaded_by=uploaded_by
        )
    return add_conda_package(
        session, store, channel_name, filename, staged, uploaded_by=uploaded_by
    )


def add_python_package(
    session: Session,
    store: BlobStore,
    channel_name: str,
    filename: str,
    staged: StagedBlob,
    *,
    uploaded_by: str,
    expected_sha256: str | None = None,
) -> PackageFile:
    """Add an uploaded wheel or sdist; its name and version come from its own core metadata,
    which must agree with its file name. A file the channel already has is refused (409)."""
    dist = parse_dist_filename(filename)
    problem = field_problem(filename, "the file name", MAX_FILENAME_LENGTH)
    if dist is None or problem is not None:
        raise PackageArchiveError(problem or f"{filename!r} is not a wheel or sdist file name")
    if len(dist.project) > MAX_PROJECT_LENGTH or len(dist.version) > MAX_VERSION_LENGTH:
        raise PackageArchiveError(f"{filename}: its project name or version is too long")
    if expected_sha256 and expected_sha256.lower() != staged.sha256:
        raise PackageArchiveError(
            f"{filename}: the upload's sha256 is {staged.sha256}, not {expected_sha256} as sent"
        )
    channel = get_channel(session, channel_name)
    _refuse_duplicate(session, channel, dist.project, filename, shown=filename)
    content = read_metadata_bytes(staged.path, filename, inspect=True)
    metadata = parse_core_metadata(content)
    if metadata.name is None or canonicalize_name(metadata.name) != dist.project:
        raise PackageArchiveError(f"{filename}: its metadata names project {metadata.name!r}")
    if metadata.version is None or parse_version(metadata.version) != parse_version(dist.version):
        raise PackageArchiveError(f"{filename}: its metadata says version {metadata.version!r}")
    lock_channel(session, channel.id)
    _refuse_duplicate(session, channel, dist.project, filename, shown=filename)
    metadata_sha256 = hashlib.sha256(content).hexdigest() if dist.kind == "wheel" else None
    record = with_metadata(
        PythonRecord(
            filename=filename,
            project=dist.project,
            version=dist.version,
            kind=dist.kind,
            platforms=dist.platforms,
            sha256=staged.sha256,
            size=staged.size,
            url="",
            timestamp=int(time.time() * 1000),
        ),
        metadata,
        core_metadata=metadata_sha256,
    )
    bulk_insert_files(session, [python_row(channel.id, None, record)])
    bump_simple_revision(session, channel.id)
    if metadata_sha256 is not None and not store.has_content(metadata_sha256):
        store.put(content_key(metadata_sha256), content)
    store.commit(staged, content_key(staged.sha256))
    added = _find_file(session, channel, dist.project, filename)
    assert added is not None
    added.uploaded_by = uploaded_by
    return added
