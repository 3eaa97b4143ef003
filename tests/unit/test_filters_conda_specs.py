"""Conda MatchSpecs as filter rules: what is refused, and matching that agrees with rattler."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import rattler

from headwater.filters.conda_specs import CondaSpec, SpecError, parse_conda_spec

SUBCHANNEL = Path("repodata") / "conda-forge-subchannel-python3.9"


def _matches(spec: CondaSpec, name: str = "numpy", **fields: object) -> bool:
    record: dict[str, object] = {
        "version": "1.2.0",
        "build": "py39h0_0",
        "build_number": 0,
        "subdir": "linux-64",
    }
    record.update(fields)
    return spec.matches(name, **record)  # type: ignore[arg-type]


# -- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "numpy >=>1",
        "numpy[",
        "numpy[version=",
        "@@@",
        "",
        'numpy[build_number=">=x"]',
    ],
)
def test_bad_syntax_is_refused_naming_the_spec(text: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_conda_spec(text)
    assert str(raised.value).startswith(f"{text!r} is not a valid conda MatchSpec: ")


@pytest.mark.parametrize(
    "text", ["conda-forge::numpy", "conda-forge/linux-64::numpy", "numpy[channel=conda-forge]"]
)
def test_a_channel_is_refused(text: str) -> None:
    with pytest.raises(SpecError, match=r"not channel$") as raised:
        parse_conda_spec(text)
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("numpy[license=MIT]", "license"),
        ("numpy[url=https://example.org/numpy.conda]", "url"),
        ("numpy[license_family=MIT, fn=numpy.conda]", "fn, license_family"),
    ],
)
def test_other_bracket_keys_are_refused_by_name(text: str, refused: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_conda_spec(text)
    message = str(raised.value)
    assert message.startswith(repr(text))
    assert message.endswith(f"not {refused}")


def test_spec_error_is_a_value_error() -> None:
    assert issubclass(SpecError, ValueError)


def test_a_url_spec_is_refused() -> None:
    with pytest.raises(SpecError):
        parse_conda_spec(
            "https://conda.anaconda.org/conda-forge/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2"
        )


# -- matching, field by field ---------------------------------------------------------------


def test_a_plain_name_matches_that_package_exactly() -> None:
    spec = parse_conda_spec("numpy")
    assert not spec.name_is_glob
    assert spec.matches_name("numpy")
    assert not spec.matches_name("numpy-base")
    assert not spec.matches_name("py-numpy")


def test_names_are_compared_lowercase() -> None:
    spec = parse_conda_spec("NumPy >=1")
    assert spec.name == "numpy"
    assert _matches(spec, "numpy")


@pytest.mark.parametrize(
    ("text", "matching", "not_matching"),
    [
        ("r-*", ["r-base", "r-ggplot2", "r-"], ["r", "python", "rpy2", "ar-x"]),
        ("*mutex*", ["_libgcc_mutex", "_openmp_mutex", "mutex"], ["mutual"]),
        ("lib[cg]*", ["libcurl", "libgcc-ng"], ["libzlib", "lib"]),
        ("R-*", ["r-base"], ["python"]),
        ("*", ["anything", "r-base"], []),
    ],
)
def test_glob_names_match_by_pattern(
    text: str, matching: list[str], not_matching: list[str]
) -> None:
    spec = parse_conda_spec(text)
    assert spec.name_is_glob
    for name in matching:
        assert spec.matches_name(name), name
        assert _matches(spec, name), name
    for name in not_matching:
        assert not spec.matches_name(name), name
        assert not _matches(spec, name), name


@pytest.mark.parametrize(
    ("text", "matching", "not_matching"),
    [
        ("numpy 1.2.*", ["1.2", "1.2.0", "1.2.10"], ["1.20.0", "1.3.0", "1.1.9"]),
        # Pre-releases sort before their release, as in conda: <3.10 admits 3.10.0rc1.
        ("numpy >=3.9,<3.10", ["3.9", "3.9.18", "3.10.0rc1"], ["3.8.10", "3.9.0rc1", "3.10.0"]),
        ("numpy >=3.9,<3.10.0a0", ["3.9.18"], ["3.10.0rc1"]),
        ("numpy 1.21.*|1.22.*", ["1.21.5", "1.22.0"], ["1.23.0", "1.20.3"]),
        ("numpy !=1.21.0", ["1.21.1", "1.20"], ["1.21.0"]),
        ("numpy ==1.21.0", ["1.21.0"], ["1.21.1", "1.21.0.1"]),
    ],
)
def test_versions_match_by_version_spec(
    text: str, matching: list[str], not_matching: list[str]
) -> None:
    spec = parse_conda_spec(text)
    for version in matching:
        assert _matches(spec, version=version), version
    for version in not_matching:
        assert not _matches(spec, version=version), version


def test_a_version_rattler_cannot_parse_matches_only_specs_without_a_version() -> None:
    assert not _matches(parse_conda_spec("numpy >=1"), version="not a version!")
    assert _matches(parse_conda_spec("numpy"), version="not a version!")


def test_builds_match_by_glob() -> None:
    spec = parse_conda_spec("python * *_cpython")
    assert _matches(spec, "python", build="h12debd9_0_cpython")
    assert not _matches(spec, "python", build="h12debd9_0_pypy39_pp73")
    exact = parse_conda_spec("python=3.9.0=h_0")
    assert _matches(exact, "python", version="3.9.0", build="h_0")
    assert not _matches(exact, "python", version="3.9.0", build="h_01")


@pytest.mark.parametrize(
    ("condition", "matching"),
    [
        ("3", [3]),
        ('"==3"', [3]),
        ('">3"', [4, 5]),
        ('">=3"', [3, 4, 5]),
        ('"<3"', [0, 1, 2]),
        ('"<=3"', [0, 1, 2, 3]),
        ('"!=3"', [0, 1, 2, 4, 5]),
    ],
)
def test_build_numbers_match_by_comparison(condition: str, matching: list[int]) -> None:
    spec = parse_conda_spec(f"numpy[build_number={condition}]")
    assert [n for n in range(6) if _matches(spec, build_number=n)] == matching


def test_a_subdir_restricts_the_match_to_that_subdir() -> None:
    spec = parse_conda_spec("numpy[subdir=linux-64]")
    assert spec.subdir == "linux-64"
    assert _matches(spec, subdir="linux-64")
    assert not _matches(spec, subdir="osx-arm64")
    assert not _matches(spec, subdir="noarch")


def test_every_part_must_match() -> None:
    spec = parse_conda_spec(
        'numpy[version=">=1.20", build="py39*", build_number=">0", subdir=linux-64]'
    )
    good = {"version": "1.21.0", "build": "py39h0_1", "build_number": 1, "subdir": "linux-64"}
    assert _matches(spec, **good)
    assert not _matches(spec, "scipy", **good)
    for field, wrong in [
        ("version", "1.19.0"),
        ("build", "py38h0_1"),
        ("build_number", 0),
        ("subdir", "win-64"),
    ]:
        assert not _matches(spec, **{**good, field: wrong}), field


# -- cross-check against rattler on real repodata -------------------------------------------

CROSS_CHECKED_SPECS = [
    "python",
    "Python >=3.9",
    "ca-certificates",
    "python >=3.9,<3.10",
    "python >=3.9.7,<3.9.10",
    "python ~=3.9.7",
    "libzlib 1.2.*",
    "openssl 1.1.1.*|3.0.*",
    "openssl !=3.0.0",
    "tzdata 2023c",
    "python * *_cpython",
    "pip >=23.0.1 py*",
    "zlib=1.2.13=*_5",
    'python[build_number=">=1"]',
    'python[build_number="<1"]',
    'openssl[build_number="!=0"]',
    'python[version=">=3.9.10", build="*_cpython", build_number=">0"]',
    "python[subdir=linux-64]",
    "certifi[subdir=noarch]",
    "*[subdir=win-arm64]",
    "lib*",
    "*mutex*",
    "xorg-lib*",
]


@functools.cache
def _load_records(root: Path) -> tuple[rattler.RepoDataRecord, ...]:
    records: list[rattler.RepoDataRecord] = []
    for path in sorted(root.glob("*/repodata.json")):
        repodata = rattler.RepoData.from_path(path)
        records.extend(repodata.into_repo_data(rattler.Channel("conda-forge")))
    return tuple(records)


@pytest.fixture
def upstream_records(shared_data: Path) -> tuple[rattler.RepoDataRecord, ...]:
    root = shared_data / SUBCHANNEL
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    records = _load_records(root)
    assert len({record.subdir for record in records}) > 1
    return records


def _rattler_matches(spec: rattler.MatchSpec, record: rattler.RepoDataRecord) -> bool:
    # rattler's MatchSpec.matches ignores the subdir key (rattler uses it to choose which
    # repodata to read), so the reference adds it; a filter must honour it.
    return spec.matches(record) and (spec.subdir is None or record.subdir == spec.subdir)


@pytest.mark.shared_data
@pytest.mark.parametrize("text", CROSS_CHECKED_SPECS)
def test_matching_agrees_with_rattler_on_real_repodata(
    text: str, upstream_records: tuple[rattler.RepoDataRecord, ...]
) -> None:
    ours = parse_conda_spec(text)
    reference = rattler.MatchSpec(text, exact_names_only=False)
    disagreements = []
    matched = 0
    for record in upstream_records:
        expected = _rattler_matches(reference, record)
        got = ours.matches(
            record.name.normalized,
            str(record.version),
            str(record.build),
            record.build_number,
            record.subdir,
        )
        matched += expected
        if got != expected:
            disagreements.append(
                f"{record.subdir}/{record.name.normalized}-{record.version}-{record.build}"
                f" (build_number {record.build_number}): ours {got}, rattler {expected}"
            )
    assert disagreements == []
    assert 0 < matched < len(upstream_records)
