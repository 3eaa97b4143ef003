"""Blob stores: package bytes kept once by sha256, and published index artifacts by key."""

from headwater.storage.base import BlobStore, StagedBlob, content_key
from headwater.storage.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "StagedBlob", "content_key"]
