"""Reading info/index.json from real package archives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headwater.errors import PackageArchiveError
from headwater.formats.conda.package import read_index_json
from tests.support.conda_packages import PackageSpec, build_package


@pytest.mark.parametrize("extension", [".conda", ".tar.bz2"])
def test_built_packages_read_back(tmp_path: Path, extension: str) -> None:
    path = build_package(
        PackageSpec("demo", "2.1", build="py_3", subdir="noarch", extension=extension), tmp_path
    )
    index = read_index_json(path, path.name)
    assert (index["name"], index["version"], index["build"], index["subdir"]) == (
        "demo",
        "2.1",
        "py_3",
        "noarch",
    )


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("relative", "subdir"),
    [
        ("packages/anaconda-main-channel-mini/linux-64/zlib-1.2.11-h7b6447c_3.conda", "linux-64"),
        ("packages/anaconda-main-channel-mini/win-64/zlib-1.2.11-h62dcd97_3.tar.bz2", "win-64"),
        ("packages/conda-forge/linux-64/xtensor-io-0.10.3-hb585cf6_0.tar.bz2", "linux-64"),
        ("packages/mamba/_r-mutex-1.0.1-anacondar_1.tar.bz2", "noarch"),
    ],
)
def test_real_packages(shared_data: Path, relative: str, subdir: str) -> None:
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"{relative} is not in this copy of the shared data")
    index = read_index_json(path, path.name)
    assert index["subdir"] == subdir
    assert path.name.startswith(f"{index['name']}-{index['version']}-{index['build']}")


def test_a_broken_archive_says_so(tmp_path: Path) -> None:
    path = tmp_path / "x-1-0.tar.bz2"
    path.write_bytes(b"BZh91AY&SY" + b"\0" * 50)
    with pytest.raises(PackageArchiveError, match="not a readable"):
        read_index_json(path, path.name)


def test_a_package_under_another_name_is_refused(tmp_path: Path) -> None:
    path = build_package(PackageSpec("real", "1.0"), tmp_path)
    renamed = path.rename(tmp_path / "fake-1.0-0.conda")
    with pytest.raises(
        PackageArchiveError, match=re.escape("does not match its metadata, which says real-1.0-0")
    ):
        read_index_json(renamed, renamed.name)


@pytest.mark.shared_data
def test_components_hidden_in_a_folder_are_refused_clearly(shared_data: Path) -> None:
    """rattler re-zipped this one with its components under Users/...; conda cannot read it."""
    path = shared_data / "packages" / "edge-cases" / "ca-certificates-2024.7.4-hbcca054_0.conda"
    with pytest.raises(
        PackageArchiveError,
        match=re.escape("has no info component (info-*.tar.zst) at its top level"),
    ):
        read_index_json(path, path.name)
