"""Blob stores: package bytes kept once by sha256, and published index artifacts by key."""

from headwater.storage.base import (
    BlobInfo,
    BlobStore,
    Chunks,
    LocalFile,
    Redirect,
    Sendable,
    StagedBlob,
    content_key,
    content_sha256,
)
from headwater.storage.local import LocalBlobStore

__all__ = [
    "BlobInfo",
    "BlobStore",
    "Chunks",
    "LocalBlobStore",
    "LocalFile",
    "Redirect",
    "Sendable",
    "StagedBlob",
    "content_key",
    "content_sha256",
]
