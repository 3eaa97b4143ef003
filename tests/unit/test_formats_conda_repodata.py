"""Reading upstream repodata into records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from headwater.errors import UpstreamFormatError
from headwater.formats.conda import timestamp_ms
from headwater.formats.conda.repodata import parse_repodata

SHA = "a" * 64


def record(**fields: object) -> dict[str, object]:
    return {
        "name": "pkg",
        "version": "1.0",
        "build": "0",
        "build_number": 0,
        "sha256": SHA,
        "size": 10,
        **fields,
    }


def body(**sections: object) -> bytes:
    return json.dumps(sections).encode()


def test_both_sections_become_records_with_their_raw_json() -> None:
    parsed = parse_repodata(
        body(
            packages={"pkg-1.0-0.tar.bz2": record()},
            **{"packages.conda": {"pkg-1.0-0.conda": record(depends=["x"])}},
        ),
        "linux-64",
    )
    assert sorted(r.filename for r in parsed.records) == ["pkg-1.0-0.conda", "pkg-1.0-0.tar.bz2"]
    conda = next(r for r in parsed.records if r.filename.endswith(".conda"))
    assert orjson.loads(conda.raw)["depends"] == ["x"]
    assert (conda.name, conda.version, conda.sha256, conda.size) == ("pkg", "1.0", SHA, 10)


def test_records_that_cannot_be_verified_or_named_are_skipped_with_a_reason() -> None:
    parsed = parse_repodata(
        body(
            packages={
                "nosha-1.0-0.tar.bz2": record(sha256=None),
                "badsha-1.0-0.tar.bz2": record(sha256="xyz"),
                "nosize-1.0-0.tar.bz2": record(size=None),
                "../escape-1.0-0.tar.bz2": record(),
                "readme.txt": record(),
                "ok-1.0-0.tar.bz2": record(),
            }
        ),
        "noarch",
    )
    assert [r.filename for r in parsed.records] == ["ok-1.0-0.tar.bz2"]
    assert len(parsed.skipped) == 5
    assert any("no sha256 or size" in reason for reason in parsed.skipped)
    assert any(
        "'readme.txt' is not a conda package filename" in reason for reason in parsed.skipped
    )


def test_records_no_column_can_hold_are_skipped_and_the_rest_kept() -> None:
    raw = (
        b'{"packages": {'
        b'"huge-1.0-0.tar.bz2": {"name": "huge", "version": "1.0", "build": "0", "sha256": "'
        + SHA.encode()
        + b'", "size": 100000000000000000000},'
        b'"float-1.0-0.tar.bz2": {"name": "float", "version": "1.0", "build": "0", "sha256": "'
        + SHA.encode()
        + b'", "size": 1e20}'
        b"}}"
    )
    assert parse_repodata(raw, "noarch").records == []
    parsed = parse_repodata(
        body(
            packages={
                "future-1.0-0.tar.bz2": record(timestamp=1e300),
                "negative-1.0-0.tar.bz2": record(timestamp=-5),
                "nul\u0000-1.0-0.tar.bz2": record(),
                "long-1.0-0.tar.bz2": record(name="n" * 201),
                "ctl-1.0-0.tar.bz2": record(version="1.0\n"),
                "bn-1.0-0.tar.bz2": record(build_number=2**64),
                "minus-1.0-0.tar.bz2": record(size=-1),
                "ok-1.0-0.tar.bz2": record(timestamp=1700000000),
            }
        ),
        "noarch",
    )
    assert [r.filename for r in parsed.records] == ["ok-1.0-0.tar.bz2"]
    reasons = " | ".join(parsed.skipped)
    assert len(parsed.skipped) == 7, reasons
    for words in ("timestamp 1e+300 is out of range", "name is longer than 200", "size -1"):
        assert words in reasons


def test_origin_keys_added_by_conda_are_dropped() -> None:
    parsed = parse_repodata(
        body(
            packages={
                "pkg-1.0-0.tar.bz2": record(
                    url="https://upstream/x", channel="https://upstream", fn="pkg-1.0-0.tar.bz2"
                )
            }
        ),
        "linux-64",
    )
    published = orjson.loads(parsed.records[0].raw)
    assert "url" not in published and "channel" not in published
    assert published["fn"] == "pkg-1.0-0.tar.bz2"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1668978285195, 1668978285195),
        (1668978285, 1668978285000),
        (1668978285.5, 1668978285500),
        (None, None),
    ],
)
def test_timestamps_in_seconds_and_milliseconds(value: float | None, expected: int | None) -> None:
    assert timestamp_ms(value) == expected


def test_cep15_base_url_is_kept_for_version_2_only() -> None:
    v2 = parse_repodata(
        body(info={"base_url": "https://files/"}, repodata_version=2, packages={}), "noarch"
    )
    assert v2.base_url == "https://files/"
    v1 = parse_repodata(body(info={"base_url": "https://files/"}, packages={}), "noarch")
    assert v1.base_url is None


@pytest.mark.parametrize(
    "broken", [b"", b"{", b"[]", b'{"packages": []}', b'{"packages": {"a-1-0.conda": 3}}']
)
def test_malformed_repodata_is_an_upstream_format_error(broken: bytes) -> None:
    if broken == b'{"packages": {"a-1-0.conda": 3}}':
        parsed = parse_repodata(broken, "noarch")
        assert parsed.records == [] and "unreadable record" in parsed.skipped[0]
        return
    with pytest.raises(
        UpstreamFormatError, match=re.escape("repodata.json for noarch is not valid")
    ):
        parse_repodata(broken, "noarch")


@pytest.mark.shared_data
def test_real_conda_forge_repodata_parses_completely(shared_data: Path) -> None:
    root = shared_data / "repodata" / "conda-forge-subchannel-python3.9"
    for subdir_path in sorted(p for p in root.iterdir() if p.is_dir()):
        raw = (subdir_path / "repodata.json").read_bytes()
        document = json.loads(raw)
        parsed = parse_repodata(raw, subdir_path.name)
        expected = len(document.get("packages", {})) + len(document.get("packages.conda", {}))
        assert len(parsed.records) == expected and parsed.skipped == []
        with_timestamp = sum(
            1
            for r in {**document["packages"], **document["packages.conda"]}.values()
            if r.get("timestamp")
        )
        assert sum(1 for r in parsed.records if r.timestamp) == with_timestamp
        assert all(r.timestamp is None or r.timestamp > 10**12 for r in parsed.records)


@pytest.mark.shared_data
def test_seconds_timestamps_of_real_mamba_repodata_become_milliseconds(shared_data: Path) -> None:
    raw = (shared_data / "repodata" / "mamba" / "conda-forge-numpy-linux-64.json").read_bytes()
    document = json.loads(raw)
    seconds = {
        fn: r["timestamp"]
        for fn, r in {**document["packages"], **document.get("packages.conda", {})}.items()
    }
    parsed = {r.filename: r for r in parse_repodata(raw, "linux-64").records}
    assert all(value < 10**11 for value in seconds.values()), "this file really holds seconds"
    assert all(parsed[fn].timestamp == value * 1000 for fn, value in seconds.items())


def test_null_depends_of_real_mamba_repodata_are_dropped_and_garbage_is_refused(
    shared_data: Path,
) -> None:
    raw = (shared_data / "repodata" / "mamba" / "conda-forge-numpy-linux-64.json").read_bytes()
    parsed = {r.filename: r for r in parse_repodata(raw, "linux-64").records}
    mutex = json.loads(parsed["_libgcc_mutex-0.1-conda_forge.tar.bz2"].raw)
    # conda reads a missing depends as none; rattler refuses the whole subdir over a null
    assert "depends" not in mutex and "constrains" not in mutex
    assert mutex["name"] == "_libgcc_mutex"
    kept = json.loads(parsed["_openmp_mutex-4.5-2_gnu.tar.bz2"].raw)
    assert kept["depends"] == ["_libgcc_mutex 0.1 conda_forge", "libgomp >=7.5.0"]

    record = {"name": "x", "version": "1", "build": "0", "sha256": "a" * 64, "size": 1}
    document = {
        "packages": {
            "a-1-0.tar.bz2": {**record, "depends": "lib"},
            "b-1-0.tar.bz2": {**record, "depends": [1, "lib"]},
            "c-1-0.tar.bz2": {**record, "constrains": {"lib": 1}},
            "d-1-0.tar.bz2": {**record, "version": "1..0!!"},
            "e-1-0.tar.bz2": {**record, "depends": ["lib >=1"]},
        }
    }
    parsed_odd = parse_repodata(json.dumps(document).encode(), "linux-64")
    # a list is taken as it is (its items are not decoded: 1.2 million strings at conda-forge
    # size); readers of depends keep its strings (dependencies/conda.strings)
    assert [r.filename for r in parsed_odd.records] == ["b-1-0.tar.bz2", "e-1-0.tar.bz2"]
    assert len(parsed_odd.skipped) == 3
    assert any("is not a conda version" in problem for problem in parsed_odd.skipped)
