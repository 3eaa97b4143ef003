"""PyPI filter rules: order, reasons, pre-releases across mirror and channel, keep-latest."""

from __future__ import annotations

from headwater.filters import parse_filter_set
from headwater.filters.python_rules import PythonMirrorRules
from headwater.formats.pypi.filenames import parse_dist_filename
from headwater.formats.pypi.records import PythonRecord


def record(
    filename: str, *, license: str | None = "MIT", yanked: str | None = None
) -> PythonRecord:
    dist = parse_dist_filename(filename)
    assert dist is not None
    return PythonRecord(
        filename=filename,
        project=dist.project,
        version=dist.version,
        kind=dist.kind,
        platforms=dist.platforms,
        sha256="0" * 64,
        size=1,
        url="",
        timestamp=1_700_000_000_000,
        yanked=yanked,
        metadata_known=license is not None,
        license_expression=license,
    )


def judge(mirror: dict, channel: dict, *records: PythonRecord) -> dict[str, str | None]:
    rules = PythonMirrorRules(parse_filter_set(mirror), parse_filter_set(channel))
    return {r.filename: (e.reason if e else None) for r, e in rules.judge_all(list(records))}


RC = record("demo-2.0rc1-py3-none-any.whl")
FINAL = record("demo-1.0-py3-none-any.whl")


def test_prereleases_stay_out_unless_the_mirror_or_the_channel_asks() -> None:
    assert judge({}, {}, RC, FINAL) == {RC.filename: "spec", FINAL.filename: None}
    assert judge({"include_prereleases": True}, {}, RC)[RC.filename] is None
    # The mirror is silent, the channel asks: in.
    assert judge({}, {"include_prereleases": True}, RC)[RC.filename] is None
    # The mirror asks, the channel says no outright: the channel's filter wins.
    assert judge({"include_prereleases": True}, {"include_prereleases": False}, RC) == {
        RC.filename: "channel filter"
    }
    # include_specs let a pre-release in by name.
    assert judge({"include_specs": ["demo>=2.0rc1"]}, {}, RC)[RC.filename] is None


def test_include_specs_pass_exclusions_and_licenses_but_not_platforms() -> None:
    gpl = record("demo-1.5-py3-none-any.whl", license="GPL-3.0-only")
    linux = record("demo-1.5-cp311-cp311-manylinux_2_17_x86_64.whl", license="GPL-3.0-only")
    mirror = {
        "exclude_specs": ["demo<2"],
        "exclude_licenses": ["gpl3"],
        "include_specs": ["demo==1.5"],
        "subdirs": ["noarch"],
    }
    assert judge(mirror, {}, gpl, linux, FINAL) == {
        gpl.filename: None,
        linux.filename: "subdir",
        FINAL.filename: "spec",
    }


def test_unknown_license_is_none() -> None:
    unknown = record("demo-1.0.tar.gz", license=None)
    assert judge({"exclude_licenses": ["none"]}, {}, unknown)[unknown.filename] == "license"
    assert judge({"include_licenses": ["mit"]}, {}, unknown)[unknown.filename] == "license"


def test_keep_latest_counts_versions_not_files_and_skips_yanked() -> None:
    files = [
        record("demo-1.0-py3-none-any.whl"),
        record("demo-1.0.tar.gz"),
        record("demo-1.1-py3-none-any.whl"),
        record("demo-1.1.tar.gz"),
        record("demo-1.2-py3-none-any.whl", yanked="broken"),
        record("other-0.1-py3-none-any.whl"),
    ]
    judged = judge({"keep_latest": 2}, {}, *files)
    assert [name for name, reason in judged.items() if reason is None] == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.tar.gz",
        "demo-1.1-py3-none-any.whl",
        "demo-1.1.tar.gz",
        "other-0.1-py3-none-any.whl",
    ]
    assert judged["demo-1.2-py3-none-any.whl"] == "spec"
    # The channel's keep_latest applies too, under its own reason; the smaller N wins.
    judged = judge({"keep_latest": 2}, {"keep_latest": 1}, *files)
    assert judged["demo-1.0.tar.gz"] == "channel filter"
    assert judged["demo-1.1.tar.gz"] is None


def test_a_channel_spec_applies_where_it_is_valid() -> None:
    from headwater.filters.rules import MirrorRules

    channel = parse_filter_set({"exclude_specs": ["demo===1.0", "demo 1.0 py_0", "demo<0.5"]})
    # PEP 508 only and both: the PyPI rules read `demo===1.0`; the conda-only spec is skipped.
    assert judge({}, channel.to_json(), FINAL)[FINAL.filename] == "channel filter"
    # The conda rules skip `demo===1.0` rather than fail, and read the other two.
    conda = MirrorRules(parse_filter_set({}), channel)
    assert conda.channel.exclude is not None
    assert [spec.text for spec in conda.channel.exclude.specs] == ["demo 1.0 py_0", "demo<0.5"]
