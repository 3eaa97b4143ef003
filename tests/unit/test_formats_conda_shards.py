"""The index builder: repodata.json, .zst and CEP-16 shards, compared with rattler-index's."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import orjson
import pytest
import zstandard

from headwater.formats.conda.index import SubdirIndexBuilder
from headwater.formats.conda.shards import read_pack_directory, read_shard_index
from tests.support.conda_packages import CHAIN, build_channel


def build(subdir: str, repodata: dict) -> object:
    records = {**repodata.get("packages", {}), **repodata.get("packages.conda", {})}
    by_name: dict[str, list[tuple[str, bytes]]] = {}
    for filename, record in sorted(records.items()):
        by_name.setdefault(record["name"], []).append(
            (filename, orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        )
    builder = SubdirIndexBuilder(subdir)
    for name in sorted(by_name):
        builder.add_package(name, by_name[name])
    return builder.finish()


def decode_zst_msgpack(content: bytes) -> object:
    return msgspec.msgpack.decode(zstandard.ZstdDecompressor().decompressobj().decompress(content))


def test_repodata_json_round_trips_and_zst_matches() -> None:
    repodata = {
        "packages": {
            "a-1-0.tar.bz2": {
                "name": "a",
                "version": "1",
                "build": "0",
                "sha256": "0" * 64,
                "size": 1,
            }
        },
        "packages.conda": {
            "b-2-0.conda": {
                "name": "b",
                "version": "2",
                "build": "0",
                "sha256": "1" * 64,
                "size": 2,
            }
        },
    }
    built = build("linux-64", repodata)
    document = json.loads(built.repodata)
    assert document["info"] == {"subdir": "linux-64"}
    assert document["packages"] == repodata["packages"]
    assert document["packages.conda"] == repodata["packages.conda"]
    assert document["repodata_version"] == 1
    assert (
        zstandard.ZstdDecompressor().decompressobj().decompress(built.repodata_zst)
        == built.repodata
    )
    assert built.record_count == 2


def test_shards_match_what_rattler_index_writes(tmp_path: Path) -> None:
    channel = build_channel(tmp_path / "channel", CHAIN, shards=True)
    subdir = channel / "linux-64"
    theirs_index = decode_zst_msgpack((subdir / "repodata_shards.msgpack.zst").read_bytes())
    built = build("linux-64", json.loads((subdir / "repodata.json").read_text()))
    ours_index = decode_zst_msgpack(built.shard_index)

    assert set(ours_index["shards"]) == set(theirs_index["shards"])
    assert ours_index["info"]["subdir"] == "linux-64"
    assert ours_index["info"]["shards_base_url"] == theirs_index["info"]["shards_base_url"]
    directory = read_pack_directory(built.pack_directory)
    for name, digest in theirs_index["shards"].items():
        theirs = decode_zst_msgpack(
            (subdir / "shards" / f"{bytes(digest).hex()}.msgpack.zst").read_bytes()
        )
        offset, size = directory[read_shard_index(built.shard_index)[name]]
        ours = decode_zst_msgpack(built.shard_pack[offset : offset + size])
        assert ours == theirs, name


def test_each_shard_is_named_by_the_sha256_of_its_bytes() -> None:
    import hashlib

    built = build(
        "noarch",
        {
            "packages.conda": {
                f"p{i}-1-0.conda": {
                    "name": f"p{i}",
                    "version": "1",
                    "build": "0",
                    "sha256": "2" * 64,
                    "md5": "3" * 32,
                    "size": 1,
                }
                for i in range(5)
            }
        },
    )
    directory = read_pack_directory(built.pack_directory)
    assert len(directory) == 5
    for digest, (offset, size) in directory.items():
        shard = built.shard_pack[offset : offset + size]
        assert hashlib.sha256(shard).hexdigest() == digest
        record = next(iter(decode_zst_msgpack(shard)["packages.conda"].values()))
        assert record["sha256"] == bytes.fromhex("2" * 64) and record["md5"] == bytes.fromhex(
            "3" * 32
        )


@pytest.mark.shared_data
def test_real_sharded_channel_decodes_like_ours(shared_data: Path) -> None:
    """mojo-channel-sharded was made by rattler-index: rendering its repodata gives its shards."""
    subdir = shared_data / "packages" / "mojo-channel-sharded" / "linux-64"
    theirs = read_shard_index((subdir / "repodata_shards.msgpack.zst").read_bytes())
    built = build("linux-64", json.loads((subdir / "repodata.json").read_text()))
    directory = read_pack_directory(built.pack_directory)
    ours = read_shard_index(built.shard_index)
    assert set(ours) == set(theirs)
    for name, digest in theirs.items():
        offset, size = directory[ours[name]]
        expected = decode_zst_msgpack((subdir / "shards" / f"{digest}.msgpack.zst").read_bytes())
        assert decode_zst_msgpack(built.shard_pack[offset : offset + size]) == expected
