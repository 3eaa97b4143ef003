"""Uploading package files into a channel by hand (REST, twine, CLI)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import BinaryIO

from packaging.utils import canonicalize_name
from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.cves.names import CondaNames
from headwater.db import Database
from headwater.errors import (
    BlobStoreUnavailableError,
    PackageArchiveError,
    PackageFileExistsError,
)
from headwater.filters.python_specs import parse_version
from headwater.formats.conda import timestamp_ms
from headwater.formats.conda.package import read_index_json
from headwater.formats.conda.repodata import record_from_index_json
from headwater.formats.pypi.filenames import parse_dist_filename
from headwater.formats.pypi.metadata import parse_core_metadata, read_metadata_bytes
from headwater.formats.pypi.records import PythonRecord, encode_record
from headwater.inputs import (
    MAX_FILENAME_LENGTH,
    MAX_PROJECT_LENGTH,
    MAX_VERSION_LENGTH,
    field_problem,
)
from headwater.models import Channel, ChannelRevision, PackageFile, PackageType, RevisionCause
from headwater.services import blobs
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import ChannelRef
from headwater.services.blobs import Stored
from headwater.services.channels import load_channel
from headwater.services.pypi_pages import with_metadata
from headwater.services.revisions import Change, Plan, apply_change
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


@dataclass(frozen=True)
class Upload:
    """An uploaded file whose archive was read and checked: the row a channel will hold."""

    filename: str
    staged: StagedBlob
    package_type: PackageType
    subdir: str  # a conda file's subdir, a PyPI file's project
    name: str
    version: str
    build: str
    timestamp: int | None
    record: bytes
    core_metadata: bytes | None = None  # a wheel's METADATA, served as its .metadata

    @property
    def metadata_sha256(self) -> str | None:
        if self.core_metadata is None:
            return None
        return hashlib.sha256(self.core_metadata).hexdigest()

    def blobs(self) -> list[Stored]:
        """What the upload puts into the store: its bytes, and a wheel's metadata."""
        stored = [Stored.content(self.staged.sha256, self.staged.size)]
        if self.core_metadata is not None and self.metadata_sha256 is not None:
            stored.append(Stored.content(self.metadata_sha256, len(self.core_metadata)))
        return stored


def upload_package(
    db: Database,
    store: BlobStore,
    channel: ChannelRef,
    filename: str,
    staged: StagedBlob,
    *,
    actor: Actor,
    expected_sha256: str | None = None,
    python_only: bool = False,
    cve_names: CondaNames | None = None,
) -> PackageFile:
    """Add an uploaded package to a channel the caller may upload to, as its next revision
    (matched against the CVE database before it lands, when `cve_names` are given). In the
    order that keeps the database free for everyone else: whether the channel holds the file
    already (a read, before the archive is opened), the archive read and checked within
    limits (no transaction open), then the change service's short writes. A file the channel
    has is refused with 409; a broken or unsafe archive with 422, storing nothing."""
    with staged:
        with db.reading() as session:
            _refuse_known(session, load_channel(session, channel), filename, staged.sha256)
        upload = read_upload(filename, staged, expected_sha256, python_only=python_only)
        _store_bytes(store, upload)
    change = UploadChange(channel, upload, actor, store)
    revision = apply_change(db, store, channel.id, change, cve_names=cve_names)
    assert revision is not None
    with db.reading() as session:
        file = session.scalar(
            select(PackageFile).where(
                PackageFile.channel_id == channel.id,
                PackageFile.subdir == upload.subdir,
                PackageFile.filename == upload.filename,
                PackageFile.added_in == revision.number,
            )
        )
    assert file is not None
    return file


def read_upload(
    filename: str,
    staged: StagedBlob,
    expected_sha256: str | None = None,
    *,
    python_only: bool = False,
) -> Upload:
    """What an uploaded file is, from its own archive: a wheel or sdist by its name, else a
    conda package. Reads the archive; touches no database."""
    if expected_sha256 and expected_sha256.lower() != staged.sha256:
        raise PackageArchiveError(
            f"{filename}: the upload's sha256 is {staged.sha256}, not {expected_sha256} as sent"
        )
    if _is_python(filename):
        return _read_python(filename, staged)
    if python_only:
        raise PackageArchiveError(f"{filename!r} is not a wheel or sdist file name")
    return _read_conda(filename, staged)


def _is_python(filename: str) -> bool:
    return parse_dist_filename(filename) is not None and not filename.endswith(".tar.bz2")


def _read_conda(filename: str, staged: StagedBlob) -> Upload:
    index = read_index_json(staged.path, filename, inspect=True)
    return Upload(
        filename=filename,
        staged=staged,
        package_type=PackageType.conda,
        subdir=index["subdir"],
        name=index["name"],
        version=index["version"],
        build=index["build"],
        timestamp=timestamp_ms(index.get("timestamp")),
        record=record_from_index_json(
            index, sha256=staged.sha256, md5=staged.md5, size=staged.size
        ),
    )


def _read_python(filename: str, staged: StagedBlob) -> Upload:
    """A wheel or sdist; its name and version come from its own core metadata, which must
    agree with its file name."""
    dist = parse_dist_filename(filename)
    problem = field_problem(filename, "the file name", MAX_FILENAME_LENGTH)
    if dist is None or problem is not None:
        raise PackageArchiveError(problem or f"{filename!r} is not a wheel or sdist file name")
    if len(dist.project) > MAX_PROJECT_LENGTH or len(dist.version) > MAX_VERSION_LENGTH:
        raise PackageArchiveError(f"{filename}: its project name or version is too long")
    content = read_metadata_bytes(staged.path, filename, inspect=True)
    metadata = parse_core_metadata(content)
    if metadata.name is None or canonicalize_name(metadata.name) != dist.project:
        raise PackageArchiveError(f"{filename}: its metadata names project {metadata.name!r}")
    if metadata.version is None or parse_version(metadata.version) != parse_version(dist.version):
        raise PackageArchiveError(f"{filename}: its metadata says version {metadata.version!r}")
    wheel = dist.kind == "wheel"
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
        core_metadata=hashlib.sha256(content).hexdigest() if wheel else None,
    )
    return Upload(
        filename=filename,
        staged=staged,
        package_type=PackageType.python,
        subdir=dist.project,
        name=dist.project,
        version=dist.version,
        build="",
        timestamp=record.timestamp,
        record=encode_record(record),
        core_metadata=content if wheel else None,
    )


def _refuse_known(session: Session, channel: Channel, filename: str, sha256: str) -> None:
    """A file the channel holds already: the same bytes under the same name, or a wheel or
    sdist of that name (a different conda file of one name may go into another subdir; that
    is known only from its metadata, after the archive is read)."""
    same = PackageFile.sha256 == sha256
    if _is_python(filename):
        same = same | (PackageFile.subdir == parse_dist_filename(filename).project)  # type: ignore[union-attr]
    found = session.scalar(
        select(PackageFile.subdir).where(
            PackageFile.channel_id == channel.id,
            PackageFile.in_head(),
            PackageFile.filename == filename,
            same,
        )
    )
    if found is not None:
        raise PackageFileExistsError(_already(channel, found, filename))


def _store_bytes(store: BlobStore, upload: Upload) -> None:
    """The upload's bytes (and a wheel's metadata) go into the blob store before the revision
    that names them lands."""
    if upload.core_metadata is not None and upload.metadata_sha256 is not None:
        key = content_key(upload.metadata_sha256)
        if store.stat(key) is None:
            store.put(key, upload.core_metadata)
    store.commit(upload.staged, content_key(upload.staged.sha256))


class UploadChange(Change):
    """Add one uploaded file; a file of that name in the head is refused with 409."""

    cause = RevisionCause.upload

    def __init__(self, channel: ChannelRef, upload: Upload, actor: Actor, store: BlobStore) -> None:
        self.channel = channel
        self.store = store
        self.upload = upload
        self.actor_ = actor
        self.actor = actor.username

    def plan(self, session: Session, channel_id: int, head: int) -> Plan:
        upload = self.upload
        taken = session.scalar(
            select(PackageFile.id).where(
                PackageFile.channel_id == channel_id,
                PackageFile.in_head(),
                PackageFile.subdir == upload.subdir,
                PackageFile.filename == upload.filename,
            )
        )
        if taken is not None:
            raise PackageFileExistsError(_already(self.channel, upload.subdir, upload.filename))
        plan = Plan()
        plan.add(
            (
                channel_id,
                None,
                upload.package_type.value,
                upload.subdir,
                upload.filename,
                upload.name,
                upload.version,
                upload.build,
                upload.staged.sha256,
                upload.staged.size,
                upload.timestamp,
                upload.record,
                self.actor,
                upload.metadata_sha256,
            )
        )
        return plan

    def land(self, session: Session, revision: ChannelRevision | None) -> None:
        if not blobs.confirm_stored(session, self.store, self.upload.blobs()):
            raise BlobStoreUnavailableError(
                f"the bytes of {self.upload.filename} were collected as garbage while the upload "
                "was published (an unreferenced copy of them was past its grace); send it again"
            )
        record(
            session,
            self.actor_,
            "file.upload",
            self.channel.name,
            subdir=self.upload.subdir,
            filename=self.upload.filename,
            sha256=self.upload.staged.sha256,
            revision=revision.number if revision else None,
        )


def _already(channel: ChannelRef | Channel, subdir: str, filename: str) -> str:
    shown = filename if _is_python(filename) else f"{subdir}/{filename}"
    return f"{shown} is already in channel {channel.name!r}"
