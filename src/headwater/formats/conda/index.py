"""Building a subdir's whole index (repodata.json, .zst, shards) in one pass over its records."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgspec
import orjson
import zstandard

from headwater.formats.conda.shards import (
    Shard,
    read_pack_directory,
    read_shard_index,
    render_pack_directory,
    render_shard,
    render_shard_index,
)

# Level 3 compresses conda-forge's linux-64 repodata about 8:1 in well under a second a 100 MB;
# higher levels buy a few percent for several times the publishing time.
ZSTD_LEVEL = 3
_encoder = msgspec.msgpack.Encoder()


@dataclass
class BuiltIndex:
    """Every artifact of one subdir's index. The shards are concatenated in `shard_pack`, which
    `pack_directory` maps from each shard's sha256 to its (offset, size); `repodata_directory`
    maps each package name to where its entries are in `repodata` (see `Spans`)."""

    subdir: str
    repodata: bytes
    repodata_zst: bytes
    shard_index: bytes
    shard_pack: bytes
    pack_directory: bytes
    repodata_directory: bytes = b""
    shards: dict[str, str] = field(default_factory=dict)  # package name → shard sha256
    record_count: int = 0
    repodata_sha256: str = ""


# A name's entries in repodata.json: [start, end) in "packages", [start, end) in
# "packages.conda" (equal when it has none there), and how many entries it has.
Spans = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class PreviousIndex:
    """What building the next index of a subdir reuses of the one before: the bytes of every
    package name nothing changed, copied instead of rendered again."""

    repodata: bytes
    spans: dict[str, Spans]
    shards: dict[str, str]  # name → shard sha256
    pack: bytes
    pack_directory: dict[str, tuple[int, int]]

    @classmethod
    def read(
        cls, repodata: bytes, directory: bytes, shard_index: bytes, pack: bytes, pack_dir: bytes
    ) -> PreviousIndex:
        spans = {
            name: (place[0], place[1], place[2], place[3], place[4])
            for name, place in msgspec.msgpack.decode(directory).items()
        }
        return cls(
            repodata, spans, read_shard_index(shard_index), pack, read_pack_directory(pack_dir)
        )


class _Section:
    """One of repodata.json's two maps of entries, joined once at the end: entries rendered
    here are gathered in a bytearray (compact: a list of half a million small pieces would
    hold every record's bytes object alive), stretches copied from a previous index are kept
    as views of it (a growing bytearray would copy a conda-forge-sized section again at every
    reallocation)."""

    def __init__(self) -> None:
        self.pieces: list[bytearray | memoryview] = [bytearray()]
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __iadd__(self, piece: bytes | memoryview) -> _Section:
        if isinstance(piece, memoryview):
            self.pieces.append(piece)
            self.pieces.append(bytearray())
        else:
            tail = self.pieces[-1]
            assert isinstance(tail, bytearray)
            tail += piece
        self.size += len(piece)
        return self


class SubdirIndexBuilder:
    """Feed it each package name's records in turn, then ask for the finished index."""

    def __init__(self, subdir: str) -> None:
        self.subdir = subdir
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self._tar_bz2 = _Section()
        self._conda = _Section()
        self._shards: dict[str, str] = {}
        self._pack = bytearray()
        self._offsets: dict[str, tuple[int, int]] = {}
        self._spans: dict[str, list[int]] = {}  # offsets within the sections until finish
        self._count = 0

    def add_package(self, name: str, entries: list[tuple[str, bytes]]) -> Shard:
        tar_bz2, conda = self._start(name)
        for filename, record in entries:
            section = self._conda if filename.endswith(".conda") else self._tar_bz2
            if section:
                section += b","
            section += orjson.dumps(filename)
            section += b":"
            section += record
        self._end(name, tar_bz2, conda, len(entries))
        shard = render_shard(name, entries, self._compressor)
        self._add_shard(name, shard.sha256, shard.content)
        return shard

    def reuse_packages(self, names: list[str], previous: PreviousIndex) -> None:
        """The entries and shards of `names` as they were in `previous`, byte for byte what
        rendering them again from the same records would give. The names follow each other
        in `previous` too: their entries are one stretch of each section there, copied at
        once."""
        view = memoryview(previous.repodata)
        spans = [previous.spans[name] for name in names]
        tar_next, conda_next = self._start("")
        moved = []
        for section, first, last in (
            (self._tar_bz2, 0, 1),
            (self._conda, 2, 3),
        ):
            held = [span for span in spans if span[last] > span[first]]
            if not held:
                moved.append(0)
                continue
            if section:
                section += b","
            start = len(section)
            section += view[held[0][first] : held[-1][last]]
            moved.append(start - held[0][first])
        tar_shift, conda_shift = moved
        for name, (tar_start, tar_end, conda_start, conda_end, count) in zip(
            names, spans, strict=True
        ):
            if tar_end > tar_start:
                tar_start, tar_end = tar_start + tar_shift, tar_end + tar_shift
                tar_next = tar_end + 1
            else:  # none here: an empty span where the next entry would start
                tar_start = tar_end = tar_next
            if conda_end > conda_start:
                conda_start, conda_end = conda_start + conda_shift, conda_end + conda_shift
                conda_next = conda_end + 1
            else:
                conda_start = conda_end = conda_next
            self._spans[name] = [tar_start, tar_end, conda_start, conda_end, count]
            self._count += count
            digest = previous.shards[name]
            offset, size = previous.pack_directory[digest]
            self._add_shard(name, digest, previous.pack[offset : offset + size])

    def _start(self, name: str) -> tuple[int, int]:
        """Where the name's first entry will start in each section (after any comma)."""
        return len(self._tar_bz2) + bool(self._tar_bz2), len(self._conda) + bool(self._conda)

    def _end(self, name: str, tar_start: int, conda_start: int, count: int) -> None:
        tar_end, conda_end = len(self._tar_bz2), len(self._conda)
        self._spans[name] = [
            tar_start,
            max(tar_start, tar_end),
            conda_start,
            max(conda_start, conda_end),
            count,
        ]
        self._count += count

    def _add_shard(self, name: str, digest: str, content: bytes | memoryview) -> None:
        self._shards[name] = digest
        if digest not in self._offsets:
            self._offsets[digest] = (len(self._pack), len(content))
            self._pack += content

    def finish(self) -> BuiltIndex:
        sections, self._tar_bz2, self._conda = (
            (self._tar_bz2, self._conda),
            _Section(),
            _Section(),
        )
        head = b'{"info":' + orjson.dumps({"subdir": self.subdir}) + b',"packages":{'
        middle = b'},"packages.conda":{'
        repodata = b"".join(
            [
                head,
                *sections[0].pieces,
                middle,
                *sections[1].pieces,
                b'},"removed":[],"repodata_version":1}',
            ]
        )
        tar_base, conda_base = len(head), len(head) + len(sections[0]) + len(middle)
        del sections
        directory = _encoder.encode(
            {
                name: [tar_base + s[0], tar_base + s[1], conda_base + s[2], conda_base + s[3], s[4]]
                for name, s in self._spans.items()
            }
        )
        # The digest is taken on another core while this one compresses (both free the GIL).
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(lambda: hashlib.sha256(repodata).hexdigest())
            compressed = self._compressor.compress(repodata)
        return BuiltIndex(
            subdir=self.subdir,
            repodata=repodata,
            repodata_zst=compressed,
            repodata_sha256=digest.result(),
            shard_index=render_shard_index(self.subdir, self._shards, self._compressor),
            shard_pack=bytes(self._pack),
            pack_directory=render_pack_directory(self._offsets),
            repodata_directory=directory,
            shards=dict(self._shards),
            record_count=self._count,
        )
