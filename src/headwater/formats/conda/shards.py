"""CEP-16 sharded repodata: one zstd msgpack shard per package name, and the shard index."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec
import orjson
import zstandard

SHARD_INDEX_NAME = "repodata_shards.msgpack.zst"
_DIGEST_KEYS = ("sha256", "md5")

_encoder = msgspec.msgpack.Encoder(order="sorted")


@dataclass(frozen=True, slots=True)
class Shard:
    name: str
    sha256: str  # hex digest of `content`, which is also the shard's file name
    content: bytes  # zstd-compressed msgpack


def _shard_record(record: bytes) -> dict[str, object]:
    decoded = orjson.loads(record)
    # CEP-16 stores digests as raw bytes, not hex strings.
    for key in _DIGEST_KEYS:
        value = decoded.get(key)
        if isinstance(value, str):
            decoded[key] = bytes.fromhex(value)
    return decoded


def render_shard(
    name: str, entries: Iterable[tuple[str, bytes]], compressor: zstandard.ZstdCompressor
) -> Shard:
    """The shard of one package name from its (filename, record JSON) pairs."""
    tar_bz2: dict[str, object] = {}
    conda: dict[str, object] = {}
    for filename, record in entries:
        target = conda if filename.endswith(".conda") else tar_bz2
        target[filename] = _shard_record(record)
    document = {"packages": tar_bz2, "packages.conda": conda, "removed": []}
    content = compressor.compress(_encoder.encode(document))
    return Shard(name=name, sha256=hashlib.sha256(content).hexdigest(), content=content)


def render_shard_index(
    subdir: str, shards: dict[str, str], compressor: zstandard.ZstdCompressor
) -> bytes:
    """The shard index mapping each package name to the sha256 of its shard."""
    document = {
        "info": {"subdir": subdir, "base_url": "", "shards_base_url": "./shards/"},
        "shards": {name: bytes.fromhex(digest) for name, digest in sorted(shards.items())},
    }
    return compressor.compress(_encoder.encode(document))


def render_pack_directory(offsets: dict[str, tuple[int, int]]) -> bytes:
    """Where each shard sits in its pack: sha256 (hex) → (offset, size)."""
    return _encoder.encode({digest: list(place) for digest, place in offsets.items()})


def read_pack_directory(content: bytes) -> dict[str, tuple[int, int]]:
    return {
        digest: (place[0], place[1]) for digest, place in msgspec.msgpack.decode(content).items()
    }


def read_shard_index(content: bytes) -> dict[str, str]:
    """Package name → shard sha256 (hex) of a compressed shard index."""
    document = msgspec.msgpack.decode(
        zstandard.ZstdDecompressor().decompressobj().decompress(content)
    )
    return {name: bytes(digest).hex() for name, digest in document["shards"].items()}
