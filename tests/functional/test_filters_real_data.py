"""Filters on real conda-forge repodata: what a passive run publishes equals what this test
computes on its own from the raw records (rattler's MatchSpec for specs, plain rules for
licenses and dates)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import rattler

from tests.support.flows import create_channel, create_mirror, filenames, run_mirror
from tests.support.server import Headwater
from tests.support.upstream import Upstream, serve_directory

pytestmark = pytest.mark.shared_data
Record = dict[str, Any]


@pytest.fixture(scope="module")
def forge_root() -> Path:
    root = (
        Path(__file__).resolve().parents[3]
        / "shared"
        / "data"
        / "repodata"
        / "conda-forge-subchannel-python3.9"
    )
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return root


@pytest.fixture
def forge(forge_root: Path) -> Iterator[Upstream]:
    with serve_directory(forge_root) as upstream:
        yield upstream


def raw_records(root: Path) -> dict[str, dict[str, Record]]:
    """subdir → filename → record, straight from the files."""
    found = {}
    for subdir in sorted(path.name for path in root.iterdir() if path.is_dir()):
        document = json.loads((root / subdir / "repodata.json").read_text())
        found[subdir] = {**document.get("packages", {}), **document.get("packages.conda", {})}
    return found


def expected(root: Path, keep: Callable[[str, str, Record], bool]) -> dict[str, set[str]]:
    return {
        subdir: {filename for filename, record in records.items() if keep(subdir, filename, record)}
        for subdir, records in raw_records(root).items()
    }


def published(client, channel: str, subdirs: list[str]) -> dict[str, set[str]]:
    result = {}
    for subdir in subdirs:
        response = client.get(f"/api/repo/{channel}/{subdir}/repodata.json")
        result[subdir] = filenames(response.json()) if response.status_code == 200 else set()
    return result


def mirror_with(
    headwater: Headwater,
    token: str,
    upstream: Upstream,
    name: str,
    filters: dict,
    channel_filters: dict | None = None,
) -> dict:
    with headwater.client(token) as client:
        create_channel(client, name, filters=channel_filters or {})
        mirror = create_mirror(client, name, upstream.url, mirror_mode="passive", filters=filters)
        run = run_mirror(client, name, mirror["id"])
        assert run["state"] == "completed", run["error"]
        return run


def rattler_matches(root: Path, spec: str) -> set[tuple[str, str]]:
    """(subdir, filename) of the records rattler's own MatchSpec.matches accepts."""
    matcher = rattler.MatchSpec(spec, exact_names_only=False)
    found = set()
    for subdir in sorted(path.name for path in root.iterdir() if path.is_dir()):
        repodata = rattler.RepoData.from_path(root / subdir / "repodata.json")
        for record in repodata.into_repo_data(rattler.Channel("conda-forge")):
            if matcher.matches(record):
                found.add((subdir, record.file_name))
    return found


# --- an independent, deliberately plain reading of licenses --------------------------------


def names_gpl(record: Record) -> bool:
    text = record.get("license") or ""
    if re.search(r"(?<![lLaA])GPL|(?<!Lesser )(?<!Library )General Public", text, re.IGNORECASE):
        return True
    # Nothing usable in the string: conda's license_family decides.
    says_nothing = not text or text.lower() in ("none", "unknown")
    return says_nothing and (record.get("license_family") or "").upper().startswith("GPL")


def names_mit_or_bsd(record: Record) -> bool:
    text = record.get("license") or ""
    if re.search(r"\bMIT\b|BSD|\bX11\b|\bexpat\b|[23]-clause", text, re.IGNORECASE):
        return True
    known = re.search(
        r"GPL|Apache|\bASL\b|PSF|Python|Public.?Domain|Unlicense|CC0|Proprietary|Commercial|General Public",
        text,
        re.IGNORECASE,
    )
    return not known and (record.get("license_family") or "").upper() in ("MIT", "BSD")


def ms(record: Record) -> int | None:
    value = record.get("timestamp")
    if value is None:
        return None
    return int(value) if value > 1e11 else int(value * 1000)


def day_ms(year: int, month: int, day: int) -> int:
    return int(dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp() * 1000)


SUBDIRS = [
    "linux-64",
    "linux-aarch64",
    "linux-ppc64le",
    "noarch",
    "osx-64",
    "osx-arm64",
    "win-64",
    "win-arm64",
]


def test_subdirs(headwater: Headwater, token: str, forge: Upstream, forge_root: Path) -> None:
    run = mirror_with(headwater, token, forge, "bysubdir", {"subdirs": ["osx-arm64", "noarch"]})
    want = expected(forge_root, lambda subdir, _f, _r: subdir in ("osx-arm64", "noarch"))
    with headwater.client(token) as client:
        assert published(client, "bysubdir", SUBDIRS) == want
    assert run["counters"]["added"] == 832 + 205


@pytest.mark.parametrize(
    "filters",
    [
        {"only_specs": ["python >=3.9,<3.10", "numpy 1.2*"]},
        {"exclude_specs": ["python", "r-*", "libgcc-ng >=12"]},
        {"exclude_specs": ["python"], "include_specs": ["python 3.9.* *_cpython"]},
    ],
    ids=["only", "exclude", "include-past-exclude"],
)
def test_specs(
    headwater: Headwater, token: str, forge: Upstream, forge_root: Path, filters: dict
) -> None:
    run = mirror_with(headwater, token, forge, "byspec", filters)
    everything = {(s, f) for s, records in raw_records(forge_root).items() for f in records}
    if "only_specs" in filters:
        keep = set().union(*(rattler_matches(forge_root, spec) for spec in filters["only_specs"]))
    else:
        dropped = set().union(
            *(rattler_matches(forge_root, spec) for spec in filters["exclude_specs"])
        )
        back = set().union(
            *(rattler_matches(forge_root, spec) for spec in filters.get("include_specs", []))
        )
        keep = everything - (dropped - back)
    want = {subdir: {f for s, f in keep if s == subdir} for subdir in SUBDIRS}
    with headwater.client(token) as client:
        assert published(client, "byspec", SUBDIRS) == want
    assert run["excluded_reasons"].get("spec", 0) == len(everything) - len(keep)
    assert 0 < len(keep) < len(everything)


def test_exclude_gpl(headwater: Headwater, token: str, forge: Upstream, forge_root: Path) -> None:
    run = mirror_with(headwater, token, forge, "nogpl", {"exclude_licenses": ["gpl2", "gpl3"]})
    want = expected(forge_root, lambda _s, _f, record: not names_gpl(record))
    with headwater.client(token) as client:
        assert published(client, "nogpl", SUBDIRS) == want
    dropped = sum(len(r) for r in raw_records(forge_root).values()) - sum(map(len, want.values()))
    assert run["excluded_reasons"] == {"license": dropped} and dropped > 1000


def test_include_mit_and_bsd(
    headwater: Headwater, token: str, forge: Upstream, forge_root: Path
) -> None:
    run = mirror_with(headwater, token, forge, "permissive", {"include_licenses": ["mit", "bsd"]})
    want = expected(forge_root, lambda _s, _f, record: names_mit_or_bsd(record))
    with headwater.client(token) as client:
        assert published(client, "permissive", SUBDIRS) == want
    assert run["counters"]["added"] > 3000 and run["excluded_reasons"]["license"] > 3000


def test_include_specs_let_a_file_past_a_license_exclusion(
    headwater: Headwater, token: str, forge: Upstream, forge_root: Path
) -> None:
    mirror_with(
        headwater,
        token,
        forge,
        "gccok",
        {"exclude_licenses": ["gpl2", "gpl3"], "include_specs": ["libgcc-ng"]},
    )
    want = expected(
        forge_root, lambda _s, _f, record: not names_gpl(record) or record["name"] == "libgcc-ng"
    )
    with headwater.client(token) as client:
        got = published(client, "gccok", SUBDIRS)
    assert got == want
    assert any(f.startswith("libgcc-ng-") for f in got["linux-64"])


def test_dates_inclusive_in_utc_and_no_timestamp(
    headwater: Headwater, token: str, forge: Upstream, forge_root: Path
) -> None:
    run = mirror_with(
        headwater, token, forge, "recent", {"date_from": "2022-01-01", "date_to": "2023-06-30"}
    )
    low, high = day_ms(2022, 1, 1), day_ms(2023, 7, 1)
    want = expected(forge_root, lambda _s, _f, r: ms(r) is not None and low <= ms(r) < high)  # type: ignore[operator]
    with headwater.client(token) as client:
        assert published(client, "recent", SUBDIRS) == want
    without = sum(
        1 for records in raw_records(forge_root).values() for r in records.values() if ms(r) is None
    )
    assert without > 0, "the sample has records without a timestamp"
    with headwater.client(token) as client:
        log = " ".join(
            line["message"] for line in client.get(f"/api/runs/{run['id']}").json()["log"]
        )
    assert run["excluded_reasons"]["date"] == sum(
        len(r) for r in raw_records(forge_root).values()
    ) - sum(map(len, want.values()))
    assert "excluded" in log


def test_channel_and_mirror_filters_intersect(
    headwater: Headwater, token: str, forge: Upstream, forge_root: Path
) -> None:
    run = mirror_with(
        headwater,
        token,
        forge,
        "both",
        filters={"subdirs": ["linux-64", "noarch"], "date_from": "2022-06-01"},
        channel_filters={"exclude_licenses": ["gpl2", "gpl3"]},
    )
    since = day_ms(2022, 6, 1)
    want = expected(
        forge_root,
        lambda subdir, _f, r: (
            subdir in ("linux-64", "noarch")
            and ms(r) is not None
            and ms(r) >= since  # type: ignore[operator]
            and not names_gpl(r)
        ),
    )
    with headwater.client(token) as client:
        assert published(client, "both", SUBDIRS) == want
    reasons = run["excluded_reasons"]
    assert set(reasons) == {"date", "channel filter"}
    assert (
        sum(map(len, want.values())) + reasons["date"] + reasons["channel filter"]
        == run["counters"]["seen"]
    )
